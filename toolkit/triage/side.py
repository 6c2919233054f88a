"""The side evidence of `diagnose`: conntrack before and after, the visible processes and
(optionally) a live capture of the pod's DNS traffic, each in a daemon thread beside the
DNS walk and the probes.

Each observation is best effort (toolkit.errors.best_effort): what could not be observed
becomes a note. A bug in a side thread is not lost in it: the thread hands its exception to
the main thread (a Future), which re-raises it when it collects the result, so it reaches
the CLI's boundary and exit 4 as a bug in the main thread would. Daemon threads, not an
executor's: a /proc read that hangs must not keep the process from exiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from toolkit.deadline import Deadline
from toolkit.errors import PodtriageError, best_effort, failure_text
from toolkit.model import Finding, Report, Severity

if TYPE_CHECKING:
    from toolkit.conntrack.snapshot import ConntrackSnapshot
    from toolkit.sysinfo.procs import ProcInfo

T = TypeVar("T")
# What one side observation yields: its result (None: not observed) and its notes.
Observed = tuple[T | None, list[str]]


def in_daemon_thread(work: Callable[[], T], name: str) -> Future[T]:
    """Run ``work`` in a daemon thread; its result, or its exception, comes back through
    the Future (``result()`` re-raises it in the caller's thread)."""
    fut: Future[T] = Future()

    def run() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(work())
        except BaseException as exc:  # noqa: BLE001 - not swallowed: handed to the main thread, which re-raises it
            fut.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut


def _collect(fut: Future[T], timeout: float) -> T | None:
    """The thread's result if it ends within ``timeout`` (None if not); its exception is
    raised here."""
    done, _ = wait_futures([fut], timeout=max(0.0, timeout))
    return fut.result() if done else None


class SideEvidence:
    """conntrack before/after, the visible processes and (optionally) a live capture, in
    threads beside the DNS walk and the probes."""

    def __init__(self, deadline: Deadline, capture_s: float, dns_endpoints: Sequence[str] = ()) -> None:
        self.deadline, self.capture_s, self.dns_endpoints = deadline, capture_s, tuple(dns_endpoints)
        self.cap_stop = threading.Event()
        self.ct = in_daemon_thread(conntrack_before, "conntrack-before")
        # Reading other processes' memory maps (glibc or musl) can take a while.
        self.proc = in_daemon_thread(processes, "processes")
        self.cap: Future[Observed[Report]] | None = None
        if capture_s > 0:  # the pod's own DNS traffic while we work (needs NET_RAW)
            self.cap = in_daemon_thread(lambda: capture(capture_s, deadline, self.cap_stop), "capture")

    def finish(self, notes: list[str]) -> tuple[list[Finding], tuple[ProcInfo, ...]]:
        """Wait for the side threads (within the deadline), add their notes, and return the
        findings (conntrack, capture) and the visible processes. A bug in a side thread is
        raised here."""
        cap: Observed[Report] | None = None
        if self.cap is not None:
            cap = _collect(self.cap, self.deadline.timeout(self.capture_s))
            self.cap_stop.set()
            cap = cap or _collect(self.cap, 1.0)
        before = _collect(self.ct, self.deadline.timeout(1.0))
        found = conntrack_after(before, notes, self.dns_endpoints, self.deadline) + capture_findings(cap, notes)
        got, why = _collect(self.proc, self.deadline.timeout(1.0)) or (None, [])
        notes += why
        if not got and not why:
            notes.append("no other process is visible: attach with `kubectl debug --target=CONTAINER` "
                         "to see the application's sockets and resolver library")
        return found, got or ()


def conntrack_before() -> Observed[ConntrackSnapshot]:
    """The conntrack snapshot before the probes."""
    from toolkit.conntrack.snapshot import read_snapshot

    notes: list[str] = []
    snapshot = None
    with best_effort(notes, "conntrack not read"):
        snapshot = read_snapshot()
    return snapshot, notes


def conntrack_after(before: Observed[ConntrackSnapshot] | None, notes: list[str],
                    dns_endpoints: Sequence[str] = (), deadline: Deadline | None = None) -> list[Finding]:
    """The conntrack findings between ``before`` and now. In diagnose only what argues for
    something is a finding; the rest (e.g. "this is the pod's table, not the node's") is one
    line among the notes. DNATed DNS flows are judged against the DNS Service's live
    endpoints (``dns_endpoints``, else kube-proxy's rules where readable: issue 26)."""
    if before is None:
        return []  # still reading when the deadline came: nothing either way
    snapshot, why = before
    if snapshot is None:
        notes += why
        return []
    from toolkit.conntrack.findings import conntrack_findings
    from toolkit.conntrack.snapshot import read_snapshot

    found: list[Finding] = []
    with best_effort(notes, "conntrack not read"):
        after = read_snapshot()
        stale = None
        if any(e.dnat_target for e in after.entries or ()):
            from toolkit.conntrack.stale import stale_check

            stale = stale_check(dns_endpoints, timeout=deadline.timeout(5.0) if deadline else 5.0)
            if stale.live is not None:
                notes.append(stale.how)
        found = list(conntrack_findings(snapshot, after, stale=stale))
    for f in found:
        if f.severity is Severity.INFO:
            notes.append(f"conntrack: {f.summary}")
    return [f for f in found if f.severity is not Severity.INFO]


def processes() -> Observed[tuple[ProcInfo, ...]]:
    """The other processes visible from here (the application, with --target)."""
    from toolkit.sysinfo.procs import other_processes

    notes: list[str] = []
    found = None
    with best_effort(notes, "could not read the application's processes"):
        found = tuple(other_processes())
    return found, notes


def capture(seconds: float, deadline: Deadline, stop: threading.Event) -> Observed[Report]:
    """The capture report of the pod's DNS traffic for ``seconds`` (optional evidence;
    MissingCapability says why it could not run)."""
    from toolkit.capture.live import capture_live
    from toolkit.capture.report import capture_report

    report = None
    with best_effort(None, "capture") as attempt:
        report = capture_report(capture_live(duration=seconds, deadline=deadline, stop=stop))
    if attempt.error is None:
        return report, []
    # Our own errors (MissingCapability...) say it all: no exception class name in front.
    error = attempt.error
    why = error.message if isinstance(error, PodtriageError) else failure_text(error)
    return None, [f"capture: {why}"]


def capture_findings(cap: Observed[Report] | None, notes: list[str]) -> list[Finding]:
    """The capture's findings that concern the application's traffic. The 5-second signature
    keeps its verdict (conntrack); the rest are evidence only: podtriage's own queries are on
    the wire too, and resolve already judged those."""
    if cap is None:
        return []
    rep, why = cap
    if rep is None:
        notes += why
        return []
    d = rep.data
    notes.append(f"capture: {d.get('packets', 0)} packets, {d.get('queries', 0)} queries, "
                 f"{d.get('unanswered', 0)} unanswered, {d.get('retransmissions', 0)} retransmissions")
    return [f if f.code == "capture-5s-signature" else replace(f, verdict=None)
            for f in rep.findings if f.severity is not Severity.INFO]
