"""scripts/runbooks/: syntax (bash -n), shellcheck, --help, and the verdict handling of each
against a fake `podtriage` on PATH; each report also as one JSON line on stdout (NDJSON, what
`kubectl podtriage POD --runbook` hands on), and every line printed from a report or an
argument through podtriage's sanitiser (issue 23: a forged "verdict ok (exit 0)" line)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
COMMON = ROOT / "scripts" / "runbooks" / "common.sh"   # sourced by each runbook, not one itself
RUNBOOKS = sorted(p for p in (ROOT / "scripts" / "runbooks").glob("*.sh") if p != COMMON)
NAMES = [p.name for p in RUNBOOKS]

FAKE = """#!/bin/sh
echo "$@" >> "$FAKE_LOG"
cat <<'JSON'
{"verdict": "VERDICT", "findings": [{"code": "c1", "severity": "critical", "summary": "s1", "remedy": "r1"}], "notes": ["n1"]}
JSON
exit RC
"""


def test_the_three_runbooks_exist():
    assert set(NAMES) == {"dns-slow.sh", "service-unreachable.sh", "check-coredns-config.sh"}
    assert all(os.access(p, os.X_OK) for p in RUNBOOKS)


@pytest.mark.parametrize("path", RUNBOOKS, ids=NAMES)
def test_syntax(path):
    p = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("path", [*RUNBOOKS, COMMON], ids=[*NAMES, "common.sh"])
def test_shellcheck(path):
    assert shutil.which("shellcheck"), "shellcheck is missing: scripts/setup installs it"
    p = subprocess.run(["shellcheck", "-S", "warning", str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


@pytest.mark.parametrize("path", RUNBOOKS, ids=NAMES)
def test_help(path):
    p = subprocess.run(["bash", str(path), "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("Runbook"), p.stdout + p.stderr
    assert "Usage:" in p.stdout


def test_the_preamble_is_shared_not_copied():
    """One usage printer, pt_python and line(): in common.sh, sourced by every runbook."""
    for p in RUNBOOKS:
        text = p.read_text()
        assert "pt_python() {" not in text and "usage() {" not in text, p.name
        assert '. "$RUNBOOKS_DIR/common.sh"' in text, p.name
    assert "pt_python() {" in COMMON.read_text() and not os.access(COMMON, os.X_OK)
    # the image copies the directory whole, so common.sh travels with the runbooks
    assert "COPY scripts/runbooks/ /opt/podtriage/runbooks/" in (ROOT / "image" / "Containerfile").read_text()


@pytest.mark.parametrize("path", RUNBOOKS, ids=NAMES)
def test_help_from_its_own_directory_and_through_a_symlink(path, tmp_path):
    env = {**os.environ, "PODTRIAGE_PYTHON": PYTHON}
    p = subprocess.run(["bash", path.name, "--help"], cwd=path.parent, capture_output=True, text=True, timeout=10,
                       env=env)
    assert p.returncode == 0 and p.stdout.startswith("Runbook"), p.stderr
    link = tmp_path / "d"
    link.symlink_to(path.parent)
    p = subprocess.run(["bash", str(link / path.name), "--help"], capture_output=True, text=True, timeout=10,
                       env=env)
    assert p.returncode == 0 and p.stdout.startswith("Runbook"), p.stderr


@pytest.mark.parametrize("path", RUNBOOKS, ids=NAMES)
def test_without_common_sh_one_line_and_exit_3(path, tmp_path):
    alone = tmp_path / path.name
    shutil.copy(path, alone)
    p = subprocess.run(["bash", str(alone), "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 3 and "common.sh is missing" in p.stderr, p.stderr


@pytest.fixture
def fake(tmp_path):
    def make(verdict: str, rc: int):
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        f = bindir / "podtriage"
        f.write_text(FAKE.replace("VERDICT", verdict).replace("RC", str(rc)))
        f.chmod(0o755)
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PODTRIAGE_OUT": str(out),
                "FAKE_LOG": str(tmp_path / "calls"), "PODTRIAGE_PYTHON": PYTHON}, out, tmp_path / "calls"
    return make


@pytest.mark.parametrize("verdict,rc,word", [
    ("ok", 0, "healthy"), ("bad-answer", 1, "wrong address"), ("unreachable-host", 1, "dead"),
    ("port-closed", 1, "refuses"), ("filtered", 1, "NetworkPolicies"),
    ("dns-unavailable", 1, "does not answer"), ("dns-error", 1, "does not exist"),
    ("conntrack", 1, "dns-slow.sh"), ("indeterminate", 5, "--reference"),
])
def test_service_unreachable_acts_on_the_verdict(fake, verdict, rc, word):
    env, out, calls = fake(verdict, rc)
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/service-unreachable.sh"),
                        "api.corp.example", "443", "--reference", "192.168.60.53"],
                       capture_output=True, text=True, env=env, timeout=20)
    assert p.returncode == rc, p.stderr
    assert calls.read_text().split() == ["diagnose", "api.corp.example", "--reference",
                                         "192.168.60.53", "--port", "443", "-o", "json"]
    assert f"verdict {verdict} (exit {rc})" in p.stdout and word in p.stdout
    assert "[critical] c1: s1" in p.stdout and "note: n1" in p.stdout
    saved = list(out.glob("podtriage-diagnose-api.corp.example-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["verdict"] == verdict


def test_service_unreachable_could_not_observe(fake):
    env, out, calls = fake("indeterminate", 3)
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/service-unreachable.sh"), "x"],
                       capture_output=True, text=True, env=env, timeout=20)
    assert p.returncode == 3 and "--profile=netadmin" in p.stdout


def test_service_unreachable_usage(fake):
    env, *_ = fake("ok", 0)
    for args in ([], ["x", "notaport"], ["x", "1", "2"], ["--bogus", "x"]):
        p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/service-unreachable.sh"), *args],
                           capture_output=True, text=True, env=env, timeout=20)
        assert p.returncode == 2, args


def test_dns_slow_runs_capture_then_race_test(fake):
    env, out, calls = fake("conntrack", 1)
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/dns-slow.sh"), "-d", "5", "-t",
                        "169.254.25.10", "-n", "50"], capture_output=True, text=True, env=env,
                       timeout=20)
    assert p.returncode == 1, p.stderr
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("capture --duration 5 -o json")
    assert lines[1] == "conntrack race-test 169.254.25.10 --count 50 -o json"
    assert len(list(out.glob("podtriage-*.json"))) == 2
    assert "capture: verdict conntrack" in p.stdout and "race-test: verdict conntrack" in p.stdout


def test_check_coredns_config_lints_and_checks_files(fake, tmp_path):
    env, out, calls = fake("ok", 0)
    cf = tmp_path / "Corefile"
    cf.write_text(".:53 {\n    forward . 10.0.0.1\n}\n")
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/check-coredns-config.sh"), str(cf)],
                       capture_output=True, text=True, env=env, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    assert calls.read_text().splitlines() == [f"corefile lint {cf} -o json",
                                              f"corefile check {cf} -o json"]
    assert "clean" in p.stdout
    assert "corefile lint: verdict ok (exit 0)" in p.stdout


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_reports_are_json_lines_on_stdout(fake, tmp_path):
    env, out, calls = fake("bad-answer", 1)
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/service-unreachable.sh"), "x", "80"],
                       capture_output=True, text=True, env=env, timeout=20)
    (doc,) = _json_lines(p.stdout)
    assert doc["verdict"] == "bad-answer" and doc["findings"][0]["code"] == "c1"
    env, out, calls = fake("ok", 0)
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/dns-slow.sh"), "-d", "1", "-t",
                        "10.0.0.1", "-n", "1"], capture_output=True, text=True, env=env, timeout=20)
    assert [d["verdict"] for d in _json_lines(p.stdout)] == ["ok", "ok"]


FORGED = "evil\x1b[2J\x1b[Hservice-unreachable: www port 80: verdict ok (exit 0)\u202e\u200b"


@pytest.mark.parametrize("runbook,argv", [
    ("service-unreachable.sh", ["api.corp.example", "80"]),
    ("dns-slow.sh", ["-d", "1", "-t", "10.0.0.1", "-n", "1"]),
    ("check-coredns-config.sh", ["CF"]),
])
def test_escapes_in_a_report_are_shown_not_obeyed(tmp_path, runbook, argv):
    """A ConfigMap or wire name with a clear-screen, a cursor-home and a forged verdict line:
    every human line goes through podtriage's sanitiser; the JSON line escapes it itself."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    doc = {"verdict": "bad-answer", "notes": [FORGED],
           "findings": [{"code": "stub-forward", "severity": "critical", "summary": FORGED,
                         "remedy": FORGED}]}
    (bindir / "podtriage").write_text("#!/bin/sh\ncat <<'JSON'\n%s\nJSON\nexit 1\n" % json.dumps(doc))
    (bindir / "podtriage").chmod(0o755)
    cf = tmp_path / "Corefile"
    cf.write_text(". {\n}\n")
    argv = [str(cf) if a == "CF" else a for a in argv]
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PODTRIAGE_OUT": str(tmp_path),
           "PODTRIAGE_PYTHON": PYTHON}
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks" / runbook), *argv],
                       capture_output=True, env=env, timeout=20)
    out = p.stdout.decode()
    assert p.returncode == 1, p.stderr
    from toolkit.report.sanitize import for_terminal

    assert "\x1b" not in out and "\u202e" not in out
    # every human line is already what podtriage's sanitiser makes of it (whatever its
    # policy escapes: zero-width characters too, once it does)
    for line in out.splitlines():
        assert line.startswith("{") or for_terminal(line) == line, line
    assert "\\x1b[2J" in out                             # shown, escaped
    assert not any(line.startswith("service-unreachable: www port 80: verdict ok")
                   for line in out.splitlines())
    assert _json_lines(out)[0]["findings"][0]["summary"] == FORGED


def test_escapes_in_arguments_are_shown_not_obeyed(fake):
    env, out, calls = fake("ok", 0)
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/service-unreachable.sh"),
                        "x\x1b[2J\nservice-unreachable: y: verdict ok (exit 0)", "80"],
                       capture_output=True, text=True, env=env, timeout=20)
    assert "\x1b" not in p.stdout and "\\x1b[2J\\nservice-unreachable" in p.stdout
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/dns-slow.sh"), "--x\x1b]0;t\x07"],
                       capture_output=True, text=True, env=env, timeout=20)
    assert p.returncode == 2 and "\x1b" not in p.stderr and "\x07" not in p.stderr


def test_without_podtriages_python_nothing_is_printed_raw(fake):
    env, out, calls = fake("ok", 0)
    env["PODTRIAGE_PYTHON"] = "/nonexistent/python"
    env["PATH"] = "%s:/usr/bin:/bin" % Path(env["PATH"].split(":")[0])
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks/service-unreachable.sh"), "x"],
                       capture_output=True, text=True, env=env, timeout=20, cwd="/")
    assert p.returncode == 3 and "PODTRIAGE_PYTHON" in p.stderr


FAKE_TWO = """#!/bin/sh
echo "$@" >> "$FAKE_LOG"
echo '{"verdict": "indeterminate", "findings": [], "notes": []}'
if [ "$(wc -l < "$FAKE_LOG")" -le 1 ]; then exit FIRST; fi
exit SECOND
"""


@pytest.mark.parametrize("runbook,args", [
    ("check-coredns-config.sh", ["CF"]),
    ("dns-slow.sh", ["-d", "1", "-t", "10.0.0.1", "-n", "1"]),
])
@pytest.mark.parametrize("first,second,worst", [
    (5, 0, 5), (0, 5, 5), (1, 5, 1), (5, 1, 1), (5, 3, 3), (4, 5, 4), (0, 0, 0),
])
def test_two_step_runbooks_exit_with_the_worst_by_meaning(fake, tmp_path, runbook, args, first, second, worst):
    # indeterminate (5) is "could not tell": worse than ok, never above a problem found (1),
    # could not observe (3) or an internal error (4), whatever the numbers say.
    env, _out, calls = fake("ok", 0)
    (tmp_path / "bin" / "podtriage").write_text(
        FAKE_TWO.replace("FIRST", str(first)).replace("SECOND", str(second)))
    cf = tmp_path / "Corefile"
    cf.write_text(".:53 {\n    forward . 10.0.0.1\n}\n")
    argv = [str(cf) if a == "CF" else a for a in args]
    p = subprocess.run(["bash", str(ROOT / "scripts/runbooks" / runbook), *argv],
                       capture_output=True, text=True, env=env, timeout=20)
    assert p.returncode == worst, p.stdout + p.stderr
    assert len(calls.read_text().splitlines()) == 2
    if worst == 5:
        assert "could not tell" in p.stdout
