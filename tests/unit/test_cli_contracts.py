"""Output contracts (issue 25 items 5 and 7): with -o json/ndjson every failure still prints
one JSON document on stdout (verdict, error, the exit code unchanged); each verdict's exit
code (0 ok, 1 problem, 5 indeterminate); rendering bounded by --deadline and the stop signals.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import typer
from typer.testing import CliRunner

from tests import hostile as H
from toolkit.cli import app
from toolkit.cli.common import run
from toolkit.cli.root import output_in_argv
from toolkit.errors import EXIT_INDETERMINATE, CannotObserve, UsageError
from toolkit.model import Finding, Report, Severity, Verdict, verdict_exit_code
from toolkit.report import OutputFormat
from toolkit.report.budget import KEEP, render_bounded

runner = CliRunner()


def _doc(stdout: bytes | str, fmt: str) -> dict:
    text = stdout.decode() if isinstance(stdout, bytes) else stdout
    if fmt == "ndjson":
        lines = text.splitlines()
        last = json.loads(lines[-1])
        assert last.pop("event") == "summary"
        return last
    return json.loads(text)


def _assert_error_document(doc: dict, code: int, kind: str, command: str | None) -> None:
    assert doc["tool"] == "podtriage" and doc["schema_version"] == 1
    assert doc["verdict"] == "indeterminate", doc
    assert doc["command"] == command
    assert doc["error"]["kind"] == kind and doc["error"]["exit_code"] == code and doc["error"]["message"]
    assert doc["findings"] and doc["findings"][0]["severity"] == "critical"


# ------------------------------------------------------------------- every failure, end to end

USAGE = [
    (["capture", "--bogus"], "capture"),
    (["resolve"], "resolve"),
    (["resolve", "a..b"], "resolve"),
    (["diagnose", "x.example", "--port", "0"], "diagnose"),
    (["reach", "x.example", "--deadline", "nan"], "reach"),
    (["conntrack", "race-test", "not-an-ip"], "conntrack race-test"),
    (["corefile", "trace"], "corefile trace"),
    (["corefile", "lint", "--role", "x"], "corefile lint"),
    (["resolvconf", "--name", ""], "resolvconf"),
    (["merge"], "merge"),
    (["capture", "--read", "x.pcap", "--count", "3"], "capture"),
    (["bogus"], None),
]


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
@pytest.mark.parametrize("argv,command", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_error_prints_one_document(argv, command, fmt):
    out = H.run_cli([*argv, "-o", fmt])
    H.check(out, codes={2}, deadline=10.0)
    _assert_error_document(_doc(out.stdout, fmt), 2, "usage", command)
    if fmt == "ndjson":
        assert len(out.text.splitlines()) == 1


@pytest.mark.parametrize("spelling", [["-o", "json"], ["-ojson"], ["--output", "JSON"], ["--output=json"]])
def test_usage_error_document_for_every_spelling_of_the_format(spelling):
    out = H.run_cli(["resolve", *spelling])
    H.check(out, codes={2})
    _assert_error_document(json.loads(out.stdout), 2, "usage", "resolve")


def test_usage_error_with_table_output_keeps_stdout_empty():
    for argv in (["resolve"], ["resolve", "-o", "table"], ["resolve", "-o", "yaml"], ["resolve", "--", "-o", "json"]):
        out = H.run_cli(argv)
        H.check(out, codes={2})
        assert out.stdout == b"", argv


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
@pytest.mark.parametrize("argv,command", [
    (["capture", "-R", "{tmp}/missing.pcap"], "capture"),
    (["corefile", "lint", "{tmp}/missing"], "corefile lint"),
    (["corefile", "lint", "{tmp}"], "corefile lint"),
    (["resolvconf", "--file", "{tmp}/missing"], "resolvconf"),
    (["merge", "{tmp}/empty"], "merge"),
    (["capture", "-r", "{tmp}/empty"], "capture"),
])
def test_cannot_observe_prints_one_document(tmp_path, argv, command, fmt):
    (tmp_path / "empty").write_bytes(b"")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = H.run_cli([*argv, "-o", fmt])
    H.check(out, codes={3})
    _assert_error_document(_doc(out.stdout, fmt), 3, "cannot-observe", command)


def test_the_issue_example_jq_verdict(tmp_path):
    # podtriage capture -r missing.pcap -o json | jq -r .verdict  printed an empty line
    p = subprocess.run(["sh", "-c", f'{" ".join(H.PODTRIAGE)} capture -r {tmp_path}/missing.pcap -o json; echo "rc=$?"'],
                       capture_output=True, text=True, timeout=60)
    body, rc = p.stdout.rsplit("rc=", 1)
    assert json.loads(body)["verdict"] == "indeterminate" and rc.strip() == "3"


# ------------------------------------------------------------------- in process: run() itself

def _run(build, fmt=OutputFormat.json, deadline=None) -> int:
    try:
        run(build, fmt, deadline=deadline)
    except typer.Exit as e:
        return e.exit_code
    raise AssertionError("run() must always exit")


@pytest.mark.parametrize("fmt", [OutputFormat.json, OutputFormat.ndjson])
def test_internal_error_prints_one_document(capsys, fmt):
    def boom():
        raise ZeroDivisionError("bug")

    assert _run(boom, fmt) == 4
    cap = capsys.readouterr()
    _assert_error_document(_doc(cap.out, fmt.value), 4, "internal", None)
    assert "internal error" in cap.err and "Traceback" not in cap.err


@pytest.mark.parametrize("exc,code,kind", [(CannotObserve("no"), 3, "cannot-observe"),
                                           (UsageError("bad"), 2, "usage")])
def test_our_errors_print_one_document(capsys, exc, code, kind):
    def fails():
        raise exc

    assert _run(fails) == code
    _assert_error_document(json.loads(capsys.readouterr().out), code, kind, None)


def test_second_signal_prints_one_document(capsys):
    from toolkit import signals

    def insist():
        signals.request_stop(signal.SIGTERM)
        raise KeyboardInterrupt

    try:
        assert _run(insist) == 143
    finally:
        signals.reset()
    _assert_error_document(json.loads(capsys.readouterr().out), 143, "interrupted", None)


def test_table_output_of_a_failure_writes_nothing_to_stdout(capsys):
    def fails():
        raise CannotObserve("no")

    assert _run(fails, OutputFormat.table) == 3
    assert capsys.readouterr().out == ""


def test_completed_documents_say_error_null(capsys):
    assert _run(lambda: Report(command="t", verdict=Verdict.OK)) == 0
    assert json.loads(capsys.readouterr().out)["error"] is None


@pytest.mark.parametrize("verdict,code", [(Verdict.OK, 0), (Verdict.INDETERMINATE, 5), (Verdict.BAD_ANSWER, 1),
                                          (Verdict.UNREACHABLE_HOST, 1), (Verdict.PORT_CLOSED, 1),
                                          (Verdict.FILTERED, 1), (Verdict.DNS_UNAVAILABLE, 1),
                                          (Verdict.DNS_ERROR, 1), (Verdict.CONNTRACK, 1)])
def test_each_verdict_has_its_exit_code(capsys, verdict, code):
    assert verdict_exit_code(verdict) == code
    assert _run(lambda: Report(command="t", verdict=verdict)) == code
    capsys.readouterr()


def test_indeterminate_exits_5_end_to_end(tmp_path):
    pcap = H.hostile_pcap(tmp_path / "x.pcap", n=0)          # a pcap with no DNS: indeterminate
    out = H.run_cli(["capture", "--read", str(pcap), "-o", "json"])
    assert json.loads(out.stdout)["verdict"] == "indeterminate" and out.code == EXIT_INDETERMINATE


@pytest.mark.parametrize("argv,fmt", [(["resolve", "-o", "json"], OutputFormat.json),
                                      (["x", "-ondjson"], OutputFormat.ndjson),
                                      (["x", "--output=markdown"], OutputFormat.markdown),
                                      (["x", "-o", "json", "-o", "table"], OutputFormat.table),
                                      (["x", "--", "-o", "json"], None), (["x", "-o"], None),
                                      (["x", "-o", "yaml"], None), (["x"], None)])
def test_output_in_argv(argv, fmt):
    assert output_in_argv(argv) == fmt


# ------------------------------------------------------------------- rendering under the deadline

def _huge(n: int) -> Report:
    return Report(command="merge", verdict=Verdict.BAD_ANSWER,
                  findings=tuple(Finding(code="x", severity=Severity.WARNING, summary=f"f{i}") for i in range(n)),
                  data={"groups": [{"i": i, "pods": ["a"] * 20} for i in range(n)], "reports": n,
                        "nested": {"lots": list(range(n))}})


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_rendering_is_cut_at_the_deadline_and_stays_valid(fmt):
    report = _huge(200_000)
    buf = io.StringIO()
    t0 = time.monotonic()
    rendered = render_bounded(report, fmt, buf, None, until=time.monotonic() + 0.5)
    took = time.monotonic() - t0
    assert took < 2.0, took
    cut = rendered.data.get("output_cut")
    if fmt in (OutputFormat.json, OutputFormat.ndjson):
        assert cut is not None and cut["lengths"]["groups"] == 200_000, cut
        doc = _doc(buf.getvalue(), fmt.value)
        assert len(doc["groups"]) == KEEP and len(doc["nested"]["lots"]) == KEEP
        assert doc["output_cut"]["reason"] == "deadline" and doc["verdict"] == "bad-answer"
        assert any("output cut by the deadline" in n for n in doc["notes"])
    if cut is not None:
        assert "output cut" in buf.getvalue()


def test_rendering_stops_on_a_signal_with_a_partial_report():
    from toolkit import signals

    report = _huge(300_000)
    buf = io.StringIO()
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with signals.cooperative():
        timer.start()
        t0 = time.monotonic()
        try:
            rendered = render_bounded(report, OutputFormat.json, buf, None, until=None)
        finally:
            timer.cancel()
        took = time.monotonic() - t0
        stopped = signals.stopped()
    signals.reset()
    assert stopped and took < 1.5, took
    doc = json.loads(buf.getvalue())
    assert doc["interrupted"] == "SIGTERM" and doc["output_cut"]["reason"] == "signal"
    assert rendered.verdict is Verdict.BAD_ANSWER and doc["findings"][0]["code"] == "interrupted"


def test_readme_exit_code_table_matches_verdict_exit_code():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Exit codes", 1)[1].split("\n\n", 2)[1]
    rows = {line.split("|")[1].strip(): line.split("|")[2] for line in table.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()}
    assert verdict_exit_code(Verdict.OK) == 0 and "`ok`" in rows["0"]
    assert verdict_exit_code(Verdict.INDETERMINATE) == 5 and "`indeterminate`" in rows["5"]
    problems = [v for v in Verdict if v not in (Verdict.OK, Verdict.INDETERMINATE)]
    assert all(verdict_exit_code(v) == 1 and f"`{v.value}`" in rows["1"] for v in problems)
    assert "indeterminate" not in rows["1"] and "other than `ok`" not in rows["1"]
