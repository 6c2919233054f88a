"""The CLI frame: help, version, one output switch for every command, the exit-code map."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.cli.common import run
from toolkit.errors import CannotObserve, MissingCapability, translate
from toolkit.model import Finding, Report, Severity, Verdict
from toolkit.report import OutputFormat

runner = CliRunner()


def test_no_arguments_shows_help():
    r = runner.invoke(app, [])
    assert "Usage" in r.output and "resolve" in r.output and "diagnose" in r.output


def test_version():
    from toolkit import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_python_dash_m():
    p = subprocess.run([sys.executable, "-m", "toolkit", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "podtriage" in p.stdout


@pytest.mark.parametrize("command", [["resolve", "x"], ["resolvconf"], ["diagnose", "x"], ["reach", "x"],
                                     ["capture"], ["conntrack"], ["conntrack", "race-test", "x"],
                                     ["corefile", "lint", "x"], ["corefile", "trace", "x"]])
def test_every_command_takes_output_and_deadline_after_its_name(command):
    r = runner.invoke(app, [*command, "--help"])
    assert r.exit_code == 0, r.output
    assert "--output" in r.output and "--deadline" in r.output


def test_bad_option_value_is_usage_error():
    r = runner.invoke(app, ["resolve", "x", "-o", "yaml"])
    assert r.exit_code == 2


def _exit_of(build) -> int:
    try:
        run(build, OutputFormat.json)
    except typer.Exit as e:
        return e.exit_code
    raise AssertionError("run() must always exit")


def test_exit_codes_map_in_one_place(capsys):
    ok = Report(command="t", verdict=Verdict.OK)
    bad = Report(command="t", verdict=Verdict.BAD_ANSWER, findings=(Finding(code="x", severity=Severity.CRITICAL, summary="s"),))
    assert _exit_of(lambda: ok) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "ok"
    assert _exit_of(lambda: bad) == 1
    capsys.readouterr()

    def missing():
        raise MissingCapability("NET_RAW", "live capture")

    assert _exit_of(missing) == 3
    err = capsys.readouterr().err
    assert "NET_RAW" in err and "--profile=netadmin" in err and "Traceback" not in err

    def boom():
        raise ZeroDivisionError("bug")

    assert _exit_of(boom) == 4
    assert "internal error" in capsys.readouterr().err

    def nofile():
        open("/nonexistent/resolv.conf")

    assert _exit_of(nofile) == 3


def test_translate_foreign_exceptions():
    assert isinstance(translate(FileNotFoundError(2, "x", "/a")), CannotObserve)
    assert isinstance(translate(PermissionError(13, "x", "/a")), CannotObserve)
    assert translate(ValueError("x")) is None


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from toolkit.cli import app\n"
            "try:\n    app(['resolve', '--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'scapy', 'dns', 'pyroute2', 'psutil', 'yaml'})\n"
            "print(heavy)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip().splitlines()[-1] == "[]", p.stdout


def test_termination_log_gets_the_verdict_line(tmp_path, monkeypatch, capsys):
    import toolkit.cli.common as common

    log = tmp_path / "termination-log"
    log.write_text("")
    monkeypatch.setattr(common, "TERMINATION_LOG", str(log))
    rep = Report(command="diagnose", verdict=Verdict.BAD_ANSWER, findings=(Finding(code="stale-answer", severity=Severity.CRITICAL, summary="x is stale"),),
                 subject="api.corp.example")
    try:
        run(lambda: rep, OutputFormat.json, termination_log=True)
    except typer.Exit as e:
        assert e.exit_code == 1
    assert log.read_text() == "podtriage diagnose api.corp.example: bad-answer - x is stale\n"


@pytest.mark.parametrize("command", [["resolvconf", "--file"], ["resolve", "x", "--file"],
                                     ["diagnose", "x", "--file"], ["capture", "--read"],
                                     ["corefile", "lint"]])
def test_a_named_file_that_is_missing_is_exit_3(command):
    r = runner.invoke(app, [*command, "/nonexistent/file"])
    assert r.exit_code == 3, r.output
    assert "no such file" in r.output and "Traceback" not in r.output
