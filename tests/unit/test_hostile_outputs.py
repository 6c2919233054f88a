"""Hostile outputs (issue 10): a reader that goes away, a full disk, a closed or read-only
stdout, a closed stderr, a terminal that cannot encode the names. Each is the environment's
doing, so never a traceback nor exit 4: 141 (SIGPIPE convention) for a closed pipe, 3 with
one line for a write error. No packet is sent: the commands read files only.
`-w /dev/full` of a live capture needs a namespace: tests/integration/test_hostile_io_lab.py.
"""

from __future__ import annotations

import json

import pytest

from tests import hostile as H

FORMATS = ("table", "json", "ndjson", "markdown")


@pytest.fixture(scope="module")
def big_pcap(tmp_path_factory):
    return H.answered_pcap(tmp_path_factory.mktemp("out") / "big.pcap", 20_000)


@pytest.fixture(scope="module")
def corefile(tmp_path_factory):
    p = tmp_path_factory.mktemp("cf") / "Corefile"
    p.write_text(H.huge_corefile(300))
    return p


@pytest.mark.parametrize("fmt", FORMATS)
def test_capture_read_into_head_ends_quietly(big_pcap, fmt):
    # How fast (20k packets, then the pipe closed) is scripts/benchmarks/hostile_outputs.py's
    # business; that it ends at all is run_cli_head's (it fails a run that hangs).
    code, lines, err, _ = H.run_cli_head(["capture", "--read", str(big_pcap), "-o", fmt])
    assert lines[0], "no first line"
    assert code in (0, 141), (code, err)
    assert err == "", err


@pytest.mark.parametrize("fmt", FORMATS)
def test_corefile_lint_into_head_ends_quietly(corefile, fmt):
    code, lines, err, _ = H.run_cli_head(["corefile", "lint", str(corefile), "-o", fmt])
    # The huge Corefile holds warnings only: lint exits 0 (warnings are advice), or 141 when
    # head closed the pipe before the end.
    assert code in (0, 141), (code, err)
    assert err == "", err


def test_help_into_head_ends_quietly():
    code, lines, err, _ = H.run_cli_head(["corefile", "lint", "--help"])
    assert code in (0, 141, 1) and "Traceback" not in err, (code, err)


@pytest.mark.parametrize("fmt", FORMATS)
def test_capture_read_to_dev_full(big_pcap, fmt):
    out = H.run_cli(["capture", "--read", str(big_pcap), "-o", fmt], stdout_path="/dev/full")
    H.check(out, codes={3}, deadline=10.0, error_has="No space left on device")


@pytest.mark.parametrize("argv", [
    ("corefile", "lint", "{cf}"), ("corefile", "lint", "{cf}", "-o", "markdown"),
    ("corefile", "trace", "z1.example.", "-c", "{cf}", "-o", "json"),
    ("resolvconf", "--file", "/dev/null", "--name", "a.b"),
])
def test_report_to_dev_full(corefile, argv):
    argv = [a.replace("{cf}", str(corefile)) for a in argv]
    out = H.run_cli(argv, stdout_path="/dev/full")
    H.check(out, codes={3}, deadline=10.0, error_has="cannot write stdout")


@pytest.mark.parametrize("redirect,codes", [
    (">&-", {3}),                 # stdout closed: Python sets sys.stdout to None
    ("1</dev/null", {3}),         # stdout open read-only: EBADF
    ("2>&-", {0}),                # stderr closed: the result still goes to stdout (lint: warnings only, exit 0)
    ("2>/dev/full", {0}),         # stderr full: the result still goes to stdout
])
def test_closed_or_broken_descriptors(corefile, redirect, codes):
    out = H.run_cli_fds(["corefile", "lint", str(corefile)], shell_redirect=redirect)
    H.check(out, codes=codes, deadline=10.0)


def test_stdout_and_stderr_closed(corefile):
    out = H.run_cli_fds(["corefile", "lint", str(corefile)], shell_redirect=">&- 2>&-")
    assert out.code == 3 and not out.killed, out


@pytest.mark.parametrize("redirect", [">&-", "1</dev/null"])
def test_streaming_capture_with_broken_stdout(big_pcap, redirect):
    out = H.run_cli_fds(["capture", "--read", str(big_pcap), "-o", "ndjson"], shell_redirect=redirect)
    H.check(out, codes={3}, deadline=10.0)


def test_error_with_stderr_closed_keeps_its_exit_code():
    out = H.run_cli_fds(["corefile", "lint", "/nonexistent"], shell_redirect="2>&-")
    assert out.code == 3 and out.stdout == b""


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_narrow_terminal_encoding_with_idn(tmp_path, fmt, encoding):
    cf = tmp_path / "Corefile"
    cf.write_text("bücher.example:53 {\n    forward . 10.0.0.1\n}\n. {\n    forward . 10.0.0.2\n}\n",
                  encoding="utf-8")
    for argv in (["corefile", "trace", "bücher.example.", "-c", str(cf), "-o", fmt],
                 ["corefile", "lint", str(cf), "-o", fmt],
                 ["resolvconf", "--file", "/dev/null", "--name", "bücher.example", "-o", fmt]):
        out = H.run_cli(argv, env={"PYTHONIOENCODING": encoding})
        H.check(out, codes={0, 1})
        out.stdout.decode(encoding)  # what was written is valid in the terminal's encoding
        if fmt == "json":
            json.loads(out.stdout)


@pytest.mark.parametrize("fmt", FORMATS)
def test_narrow_terminal_encoding_with_wire_names(tmp_path, fmt):
    pcap = H.hostile_pcap(tmp_path / "h.pcap", label="bücher-\u00e9".encode("utf-8"))
    out = H.run_cli(["capture", "--read", str(pcap), "-o", fmt], env={"PYTHONIOENCODING": "ascii"})
    H.check(out, codes={0, 1})
    out.stdout.decode("ascii")


def test_argv_not_utf8_with_ascii_terminal(tmp_path):
    out = H.run_cli(["corefile", "lint", str(tmp_path) + "/\udcff\udcfe"], env={"PYTHONIOENCODING": "ascii"})
    H.check(out, codes={3})
    out2 = H.run_cli(["resolvconf", "--name", "\udcff.example"], env={"PYTHONIOENCODING": "ascii"})
    H.check(out2, codes={2})


def test_c_locale():
    out = H.run_cli(["resolvconf", "--file", "/dev/null", "--name", "bücher.example"],
                    env={"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"})
    H.check(out, codes={0, 1})
