"""What the application's own processes and sockets add to `diagnose` (evidence, no verdict)."""

from __future__ import annotations

from toolkit.model import Finding, Severity
from toolkit.triage.evidence import DEAD, Evidence
from toolkit.sysinfo.procs import Libc


def app_findings(e: Evidence) -> list[Finding]:
    """What the application's sockets and resolver library add (evidence, no verdict)."""
    return [x for x in (_syn_sent(e), _musl(e)) if x is not None]


def _syn_sent(e: Evidence) -> Finding | None:
    stuck = [s for s in e.app_sockets if s.status == "SYN_SENT"]
    if not stuck:
        return None
    dead = {r.address for r in e.probes if r.state in DEAD}
    on_dead = [s for s in stuck if s.remote.rsplit(":", 1)[0] in dead]
    return Finding(
        code="app-syn-sent", severity=Severity.WARNING,
        summary=f"the application has {len(stuck)} connection(s) stuck in SYN_SENT"
        + (f", {len(on_dead)} of them to a dead address of {e.name}" if on_dead else ""),
        evidence=tuple(f"pid {s.pid} {s.process}: {s.local} -> {s.remote} {s.status}" for s in stuck[:10]),
        remedy="this ties the application's failure to the addresses above", verdict=None,
        data={"sockets": [s.remote for s in stuck]})


def _musl(e: Evidence) -> Finding | None:
    musl = [p for p in e.processes if p.libc is Libc.MUSL]
    if not musl:
        return None
    return Finding(
        code="app-uses-musl", severity=Severity.INFO,
        summary=f"{', '.join(sorted({p.name for p in musl}))} resolve(s) names with musl libc",
        evidence=tuple(f"pid {p.pid} {p.name}: {p.cmdline}" for p in musl[:5]),
        remedy="musl ignores resolv.conf options single-request, single-request-reopen and use-vc, "
        "queries all nameservers in parallel, and never searches names with ndots or more dots",
        verdict=None, data={"pids": [p.pid for p in musl]})
