"""Best-effort blocks keep failed observations as notes, but a bug in our own code reaches
exit 4 when PODTRIAGE_STRICT=1 (set for every test by tests/conftest.py)."""

from __future__ import annotations

import pytest

from toolkit.errors import failure_text, is_bug, reraise_bug
from toolkit.triage import diagnose


def test_strict_is_on_in_tests():
    assert is_bug(KeyError("x")) and is_bug(AttributeError("x"))
    assert not is_bug(OSError(13, "Permission denied"))
    reraise_bug(PermissionError(13, "Permission denied"))  # an observation failure: no raise


def test_a_bug_in_a_best_effort_block_is_raised(monkeypatch):
    import toolkit.sysinfo.procs as procs

    def broken(_addresses):
        raise AttributeError("'NoneType' object has no attribute 'laddr'")

    monkeypatch.setattr(procs, "sockets_to", broken)
    with pytest.raises(AttributeError):
        diagnose._app_sockets(["10.0.0.1"], [])


def test_without_strict_the_same_failure_is_a_note_saying_what_and_why(monkeypatch):
    import toolkit.sysinfo.procs as procs

    monkeypatch.delenv("PODTRIAGE_STRICT")
    monkeypatch.setattr(procs, "sockets_to", lambda _a: {}["laddr"])
    notes: list[str] = []
    assert diagnose._app_sockets(["10.0.0.1"], notes) == ()
    assert notes == ["could not read the application's sockets: KeyError: 'laddr'"]


def test_a_bug_in_a_side_thread_reaches_the_main_thread(monkeypatch):
    from toolkit.deadline import Deadline

    monkeypatch.setattr(diagnose, "_conntrack_before", lambda box: box.update(bug=TypeError("boom")))
    monkeypatch.setattr(diagnose, "_processes", lambda box: box.update(processes=()))
    side = diagnose._SideEvidence(Deadline(2.0), 0.0)
    with pytest.raises(TypeError):
        side.finish([])


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
