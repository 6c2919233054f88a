"""The rendering's repeating SIGALRM tick (toolkit.report.budget, toolkit.signals.ticking)
raises RenderCut only where render_bounded catches it: never inside a garbage collection
(a weakref callback or finaliser would swallow it: PytestUnraisableExceptionWarning,
"Exception ignored in ... RenderCut('signal')"), never after the region ended."""

from __future__ import annotations

import gc
import io
import signal
import sys
import threading
import time
import weakref

from toolkit import signals
from toolkit.model import Finding, Report, Severity, Verdict
from toolkit.report import OutputFormat
from toolkit.report.budget import TICK_S, render_bounded


class _Node:
    """Cyclic garbage whose collection runs Python code (a weakref callback that spins):
    a tick is likely to land inside the collection."""

    def __init__(self) -> None:
        self.me = self


def _spin(_ref: object) -> None:
    end = time.perf_counter() + 0.0005
    while time.perf_counter() < end:
        pass


def _report(n: int) -> Report:
    return Report(command="merge", verdict=Verdict.BAD_ANSWER,
                  findings=tuple(Finding(code="x", severity=Severity.WARNING, summary=f"f{i}")
                                 for i in range(n)),
                  data={"groups": [{"i": i, "pods": ["a"] * 10} for i in range(n)], "reports": n})


def _churn(keep: list[object], n: int = 300) -> None:
    for _ in range(n):
        node = _Node()
        keep.append(weakref.ref(node, _spin))


def _caught_unraisable(fn) -> list[object]:  # noqa: ANN001 - a test helper
    seen: list[object] = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_value)
    try:
        fn()
    finally:
        sys.unraisablehook = old
    return seen


def test_no_unraisable_cut_while_garbage_is_collected_during_a_deadline_cut():
    refs: list[object] = []

    def go() -> None:
        for _ in range(5):
            report = _report(40_000)
            gc.collect()
            _churn(refs)             # left for a collection during the rendering
            buf = io.StringIO()
            old_thr = gc.get_threshold()
            gc.set_threshold(50, 1, 1)   # collections all through the rendering
            try:
                out = render_bounded(report, OutputFormat.json, buf, None,
                                     until=time.monotonic() + 0.02)
            finally:
                gc.set_threshold(*old_thr)
            assert out.data["output_cut"]["reason"] == "deadline"
            _churn(refs)
            gc.collect()             # the cyclic garbage's callbacks run here, after the region
            time.sleep(3 * TICK_S)   # a tick still armed would fire now, outside the region

    seen = _caught_unraisable(go)
    assert not seen, seen


def test_no_unraisable_cut_on_a_signal_and_no_tick_after_the_region():
    refs: list[object] = []

    def go() -> None:
        with signals.cooperative():
            report = _report(20_000)
            gc.collect()
            _churn(refs)
            threading.Timer(0.02, signals.request_stop, (signal.SIGTERM,)).start()
            gc.set_threshold(50, 1, 1)
            try:
                out = render_bounded(report, OutputFormat.table, io.StringIO(), None, until=None)
            finally:
                gc.set_threshold(700, 10, 10)
            assert out.data["output_cut"]["reason"] == "signal"
            time.sleep(3 * TICK_S)
            _churn(refs)
            gc.collect()
        signals.reset()

    seen = _caught_unraisable(go)
    assert not seen, seen
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_tick_pending_when_the_region_ends_does_nothing():
    """The flag is cleared before the timer is disarmed: a tick that fires in between (or
    is pending when the block ends) raises nothing outside the block."""
    def boom() -> BaseException | None:
        return RuntimeError("tick outside its region")

    with signals.ticking(0.001, lambda: None):
        time.sleep(0.01)
    time.sleep(0.01)
    try:
        with signals.ticking(0.001, boom):
            time.sleep(0.05)
    except RuntimeError:
        pass
    time.sleep(0.05)   # nothing may fire here
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_tick_during_a_collection_waits_for_its_end():
    """Deterministic: a collection whose weakref callback outlasts several ticks, inside the
    region after its deadline. The cut rises after the collection, in the region, and
    nothing is swallowed as unraisable."""
    import pytest

    from toolkit.report.budget import RenderCut, _bounded

    def slow(_ref: object) -> None:
        end = time.perf_counter() + 6 * TICK_S
        while time.perf_counter() < end:
            pass

    def go() -> None:
        refs = []
        with pytest.raises(RenderCut):
            with _bounded(time.monotonic() + 0.01):
                gc.collect()
                node = _Node()
                refs.append(weakref.ref(node, slow))
                del node
                gc.collect()          # the callback runs here, ticks fire inside it
                time.sleep(1.0)       # the cut rises here at the latest

    seen = _caught_unraisable(go)
    assert not seen, seen
