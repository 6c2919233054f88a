"""Hostile inputs and broken outputs for kubectl-podtriage (issue 23 items 6-7): its own
arguments never come back raw in a message (escapes, line breaks, bidi controls: shown
escaped, one line), and a full, closed or vanished stdout gives one clear line and the
documented exit code (3; 141 for a reader that went away), never a traceback, and never an
ephemeral container whose output would be lost. The runbooks' side: tests/unit/test_runbooks.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_kube_cli import FAKE, PLUGIN, Fake, pod, verb

ROOT = Path(__file__).resolve().parents[2]
# what must never reach a terminal raw: C0 (but the line's own newline), DEL, C1, bidi and
# line/paragraph separators
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
EVIL = "web\x1b[2J\x1b[H\nkubectl podtriage: verdict ok (exit 0)\u202e\x9b31m"


@pytest.fixture
def fake(tmp_path):
    return Fake(tmp_path)


def _clean(text: str) -> None:
    assert not RAW.search(text), repr(text)
    assert "verdict ok (exit 0)" not in [line.split(": ", 1)[-1] for line in text.splitlines()]


@pytest.mark.parametrize("argv", [
    [EVIL, "--bogus"],
    ["--" + EVIL],
    ["-" + EVIL],
    [EVIL, "web-2", "--", "diagnose", "x"],
    ["web", "--profile", EVIL, "--", "diagnose", "x"],
    ["web", "-o", EVIL, "--", "diagnose", "x"],
    ["pods", "-l", "a=b", "-o", EVIL, "--", "diagnose", "x"],
    ["web", "--image", EVIL, "--", "diagnose", "x"],
    ["web", "--runbook", EVIL],
    ["pods", "-l", "a=b", "--max", EVIL, "--", "diagnose", "x"],
    ["web", "--timeout", EVIL, "--", "diagnose", "x"],
    ["web", "--insecure-skip-tls-verify=" + EVIL],
    ["web", "--", EVIL],
    ["web", "--", "diagnose", EVIL],
    ["web", "--", "diagnose", "x", "--server", EVIL],
    ["web", "--", "diagnose", "x", EVIL],
    ["web", "--runbook", "service-unreachable", "--", "x", EVIL],
    ["web", "--runbook", "dns-slow", "--", EVIL],
    ["web", "--corefiles", "--", EVIL, "x"],
])
def test_usage_errors_never_echo_raw_arguments(fake, argv):
    p = fake.run(*argv)
    assert p.returncode == 2, (argv, p.stderr)
    _clean(p.stderr)
    assert len(p.stderr.splitlines()) <= 3 and "Traceback" not in p.stderr
    assert fake.calls() == []


def test_missing_custom_file_name_is_escaped(fake):
    p = fake.run("web", "--custom", "/nonexistent/" + EVIL, "--", "diagnose", "x")
    assert p.returncode == 3
    _clean(p.stderr)


def test_names_from_the_cluster_are_escaped(fake):
    """A pod and container named by whoever created them, and kubectl's own messages."""
    fake.set(pod=pod(containers=("app",), annotations={
        "kubectl.kubernetes.io/default-container": EVIL}), message=EVIL, log="{}\n")
    p = fake.run("web-1", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    _clean(p.stderr)


def _sh(cmd: str, fake: Fake, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", cmd], capture_output=True, env=fake.env(), timeout=timeout)


@pytest.mark.parametrize("args", ["--help", "--version", "nodes --all --dry-run",
                                  "web --dry-run -- diagnose x", "node/n1 --dry-run"])
@pytest.mark.parametrize("redirect", [">/dev/full", ">&-"])
def test_broken_stdout_is_one_line_and_exit_3(fake, args, redirect):
    p = _sh('"%s" %s %s' % (PLUGIN, args, redirect), fake)
    err = p.stderr.decode()
    assert p.returncode == 3, (args, redirect, p.returncode, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "stdout" in err


@pytest.mark.parametrize("args", ["--help", "nodes --node a --node b --dry-run"])
def test_reader_that_goes_away(fake, args):
    p = _sh('"%s" %s | head -c 10 >/dev/null; echo "rc=${PIPESTATUS:-?}"' % (PLUGIN, args), fake)
    assert b"Traceback" not in p.stderr, p.stderr
    q = subprocess.Popen([str(PLUGIN), *args.split()], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=fake.env())
    q.stdout.read(5)
    q.stdout.close()
    err = q.stderr.read().decode()
    q.wait(timeout=30)
    assert q.returncode in (0, 141) and "Traceback" not in err, (q.returncode, err)


def test_closed_stdout_starts_nothing_in_the_cluster(fake):
    p = _sh('"%s" web-1 -n shop -- diagnose x >&-' % PLUGIN, fake)
    assert p.returncode == 3 and b"nothing was started" in p.stderr, p.stderr
    assert fake.calls() == []


def test_full_stdout_after_the_run_says_where_the_output_is(fake):
    fake.set(pod=pod(), log='{"verdict": "ok"}\n' * 2000)
    p = _sh('"%s" web-1 -n shop -- diagnose x >/dev/full' % PLUGIN, fake)
    err = p.stderr.decode()
    assert p.returncode == 3 and "Traceback" not in err, err
    assert "kubectl logs web-1 -n shop -c podtriage-" in err
    assert [verb(c) for c in fake.calls()].count("debug") == 1


def test_stderr_closed_keeps_the_exit_code(fake):
    p = _sh('"%s" --bogus 2>&-' % PLUGIN, fake)
    assert p.returncode == 2
    fake.set(pod=pod(), log="{}\n", exit_code=1)
    p = _sh('"%s" web-1 -n shop -- diagnose x 2>&-' % PLUGIN, fake)
    assert p.returncode == 1 and json.loads(p.stdout) == {}


def test_completion_with_broken_stdout(fake):
    p = _sh('"%s" "" >/dev/full' % (ROOT / ".venv" / "bin" / "kubectl_complete-podtriage"), fake)
    assert b"Traceback" not in p.stderr
    assert FAKE.exists()
