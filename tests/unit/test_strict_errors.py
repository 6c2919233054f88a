"""Best effort at one boundary (issue 20): an observation that fails (OSError, psutil and
netlink errors, CannotObserve...) becomes a note saying what and why; a bug in our own code
(AttributeError, TypeError, KeyError...) reaches exit 4, in production as in the tests
(there is no "strict" switch any more)."""

from __future__ import annotations

import pytest

from toolkit.errors import best_effort, failure_text
from toolkit.triage import diagnose, side


def test_an_observation_error_is_a_note_saying_what_and_why():
    notes: list[str] = []
    with best_effort(notes, "reading the ARP table") as attempt:
        raise PermissionError(13, "Permission denied")
    assert attempt.failed and notes == ["reading the ARP table: [Errno 13] Permission denied"]


def test_a_bug_in_a_best_effort_block_is_raised(monkeypatch):
    import toolkit.sysinfo.procs as procs

    def broken(_addresses):
        raise AttributeError("'NoneType' object has no attribute 'laddr'")

    monkeypatch.setattr(procs, "sockets_to", broken)
    with pytest.raises(AttributeError):
        diagnose._app_sockets(["10.0.0.1"], [])


def test_a_key_error_is_a_bug_too(monkeypatch):
    import toolkit.sysinfo.procs as procs

    monkeypatch.setattr(procs, "sockets_to", lambda _a: {}["laddr"])
    with pytest.raises(KeyError):
        diagnose._app_sockets(["10.0.0.1"], [])


def test_a_failed_observation_is_a_note(monkeypatch):
    import toolkit.sysinfo.procs as procs

    def denied(_addresses):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(procs, "sockets_to", denied)
    notes: list[str] = []
    assert diagnose._app_sockets(["10.0.0.1"], notes) == ()
    assert notes == ["could not read the application's sockets: [Errno 13] Permission denied"]


def test_a_bug_in_a_side_thread_reaches_the_main_thread(monkeypatch):
    from toolkit.deadline import Deadline

    def broken():
        raise TypeError("boom")

    monkeypatch.setattr(side, "conntrack_before", broken)
    monkeypatch.setattr(side, "processes", lambda: ((), []))
    evidence = side.SideEvidence(Deadline(2.0), 0.0)
    with pytest.raises(TypeError):
        evidence.finish([])


def test_internal_error_is_exit_4():
    import typer

    from toolkit.cli.common import run
    from toolkit.report import OutputFormat

    def build():
        raise KeyError("a renamed field")

    with pytest.raises(typer.Exit) as info:
        run(build, OutputFormat.json)
    assert info.value.exit_code == 4


def test_failure_text():
    assert failure_text(KeyError("x")) == "KeyError: 'x'"
    assert failure_text(PermissionError(13, "Permission denied")) == "[Errno 13] Permission denied"
