"""`diagnose`: the one-shot triage. Gather every kind of evidence under one deadline
(``gather``), then classify it with the rule table (toolkit.triage.rules, decided in
toolkit.triage.classify; the table is documented in toolkit/triage/DECISIONS.md) and
report (``diagnose_report``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from toolkit.deadline import Deadline
from toolkit.dns.walk import Server
from toolkit.errors import failure_text, is_bug, reraise_bug
from toolkit.model import Finding, Report, Severity, Table
from toolkit.probe.model import AddressState
from toolkit.triage.classify import Classification, classify
from toolkit.triage.evidence import Evidence
from toolkit.triage.resolve import ResolveResult, fmt_addresses

__all__ = ["Classification", "Evidence", "classify", "diagnose_report", "gather", "probe_order"]

DEFAULT_PORTS = (443, 80)


# ----------------------------------------------------------------------------- gathering

MAX_PROBED_ADDRESSES = 8


def gather(name: str, *, resolv_conf: str = "/etc/resolv.conf", servers: Sequence[Server] = (),
           references: Sequence[Server] = (), ports: Sequence[int] = (), corefiles: Sequence[str] = (),
           corefile_roles: Sequence[str] = (),
           deadline: Deadline, query_timeout: float | None = None, capture_s: float = 0.0,
           race_count: int = 0, on_progress: Callable[[str], None] | None = None) -> Evidence:
    """Collect every kind of evidence, concurrently where it can be, under one deadline."""
    from toolkit.triage.resolve import resolve_name

    say = on_progress or (lambda _m: None)
    notes: list[str] = []
    # DNS answers come first: probes need the addresses. Keep the per-query timeout well
    # inside the budget so a silent server leaves time for the probes (which need ~3.5 s
    # to see an ARP failure's ICMP host-unreachable).
    qt = query_timeout if query_timeout is not None else max(0.5, min(2.0, deadline.remaining() / 4))
    side = _SideEvidence(deadline, capture_s)

    cf_findings, cf_hops, extra_refs, behind_servers = _corefile_evidence(name, corefiles, notes,
                                                                          corefile_roles)
    refs = list(references) + [s for s in extra_refs if s.address not in {r.address for r in references}]

    say(f"resolving {name}")
    res = resolve_name(name, resolv_conf=resolv_conf, servers=servers, references=refs,
                       deadline=deadline, query_timeout=qt, on_progress=on_progress)
    addresses, unprobed = probe_order(res)
    if unprobed:
        notes.append(f"{len(addresses) + len(unprobed)} addresses answered; probed {MAX_PROBED_ADDRESSES} "
                     f"of them: {fmt_addresses(list(unprobed))} not probed (no evidence either way)")
    behind = _ask_behind(res, behind_servers, deadline, qt, say)
    app_sockets = _app_sockets(addresses, notes)
    probes = _probe(addresses, tuple(ports) or DEFAULT_PORTS, deadline, notes, on_progress)
    race = _race(res, race_count, deadline, notes, say) if race_count > 0 else []
    ct_findings, processes = side.finish(notes)
    return Evidence(name=name, resolve=res, probes=probes, ports=tuple(ports) or DEFAULT_PORTS,
                    ports_given=bool(ports), unprobed=unprobed, behind=behind,
                    conntrack_findings=tuple(ct_findings + race), corefile_findings=tuple(cf_findings),
                    corefile_hops=tuple(cf_hops), processes=processes,
                    app_sockets=app_sockets, notes=tuple(notes))


class _SideEvidence:
    """conntrack before/after, the visible processes and (optionally) a live capture, in
    threads beside the DNS walk and the probes."""

    def __init__(self, deadline: Deadline, capture_s: float) -> None:
        import threading

        self.deadline, self.capture_s = deadline, capture_s
        self.ct: dict[str, Any] = {}
        self.proc: dict[str, Any] = {}
        self.cap: dict[str, Any] = {}
        self.cap_stop = threading.Event()
        self.threads = {"ct": threading.Thread(target=_conntrack_before, args=(self.ct,), daemon=True),
                        # Reading other processes' memory maps (glibc or musl) can take a while.
                        "proc": threading.Thread(target=_processes, args=(self.proc,), daemon=True)}
        if capture_s > 0:  # the pod's own DNS traffic while we work (needs NET_RAW)
            self.threads["cap"] = threading.Thread(
                target=_capture, args=(self.cap, capture_s, deadline, self.cap_stop), daemon=True)
        for t in self.threads.values():
            t.start()

    def finish(self, notes: list[str]) -> tuple[list[Finding], tuple]:
        try:
            return self._finish(notes)
        finally:
            for box in (self.ct, self.proc, self.cap):
                if "bug" in box:  # PODTRIAGE_STRICT: a bug in a side thread reaches exit 4
                    raise box["bug"]

    def _finish(self, notes: list[str]) -> tuple[list[Finding], tuple]:
        cap = self.threads.get("cap")
        if cap is not None:
            cap.join(max(0.0, self.deadline.timeout(self.capture_s)))
            self.cap_stop.set()
            cap.join(1.0)
        self.threads["ct"].join(max(0.0, self.deadline.timeout(1.0)))
        found = _conntrack_after(self.ct, notes) + _capture_findings(self.cap, notes)
        self.threads["proc"].join(max(0.0, self.deadline.timeout(1.0)))
        processes = tuple(self.proc.get("processes", ()))
        if "error" in self.proc:
            notes.append(f"could not read the application's processes: {self.proc['error']}")
        elif not processes:
            notes.append("no other process is visible: attach with `kubectl debug --target=CONTAINER` "
                         "to see the application's sockets and resolver library")
        return found, processes


def _ask_behind(res: ResolveResult, behind_servers: Sequence[Server], deadline: Deadline, qt: float,
                say: Callable[[str], None]) -> tuple:
    """When every pod nameserver fails, ask the servers behind them (Corefile, kube-dns env)."""
    pod_paths = [p for p in res.paths if p.role == "resolv.conf"]
    if not pod_paths or not all(p.failed for p in pod_paths):
        return ()
    cands = [s for s in behind_servers if s.address not in {p.server for p in res.paths}]
    env_ip = _kube_dns_env()
    if env_ip and env_ip not in {s.address for s in cands} | {p.server for p in res.paths}:
        cands.append(Server(env_ip, "server"))
    if not cands:
        return ()
    from toolkit.dns.walk import walk_all

    say(f"the pod's nameservers do not answer; asking the server(s) behind them: "
        f"{', '.join(s.address for s in cands)}")
    return walk_all(cands, ("udp", "tcp"), res.candidates, ("A",), deadline, qt)


def _app_sockets(addresses: Sequence[str], notes: list[str]) -> tuple:
    """The application's own sockets, read before the probes: a connect() stuck in SYN_SENT
    towards a dead address lasts only until the router's ICMP error (~3 s)."""
    from toolkit.sysinfo.procs import sockets_to

    try:
        return tuple(sockets_to(addresses))
    except Exception as exc:  # noqa: BLE001 - psutil trouble must not cost the verdict
        reraise_bug(exc)
        notes.append(f"could not read the application's sockets: {failure_text(exc)}")
        return ()


def _probe(addresses: Sequence[str], ports: tuple[int, ...], deadline: Deadline, notes: list[str],
           on_progress: Callable[[str], None] | None) -> tuple:
    if not addresses:
        return ()
    from toolkit.probe import probe_addresses

    if on_progress:
        on_progress(f"probing {', '.join(addresses)} (ports {', '.join(map(str, ports))})")
    probes = tuple(probe_addresses(addresses, ports, deadline, on_progress=on_progress))
    for rep in probes:
        for lost in rep.lost:
            if lost not in notes:
                notes.append(lost)
    return probes


def probe_order(res: ResolveResult) -> tuple[list[str], tuple[str, ...]]:
    """(addresses to probe, addresses left unprobed). The addresses that decide a verdict
    come first: those only some servers give or that the references do not give, then the
    references' own; then address order (numeric, not text: .20 before .101)."""
    import ipaddress

    path_sets = [set(p.addresses) for p in res.paths if p.role != "reference" and p.answered]
    ref = {a for p in res.paths if p.role == "reference" and p.answered for a in p.addresses}
    every = {a for p in res.paths for a in p.addresses}

    def key(a: str):
        contested = any(a not in s for s in path_sets) or bool(ref and a not in ref)
        ip = ipaddress.ip_address(a.split("%")[0])
        return (not contested, a not in ref, ip.version, int(ip))
    ordered = sorted(every, key=key)
    return ordered[:MAX_PROBED_ADDRESSES], tuple(ordered[MAX_PROBED_ADDRESSES:])


def _capture(box: dict, seconds: float, deadline: Deadline, stop) -> None:
    try:
        from toolkit.capture.live import capture_live
        from toolkit.capture.report import capture_report

        box["report"] = capture_report(capture_live(duration=seconds, deadline=deadline, stop=stop))
    except Exception as exc:  # noqa: BLE001 - optional evidence; MissingCapability says why
        if is_bug(exc):
            box["bug"] = exc  # re-raised by the main thread
        box["error"] = getattr(exc, "message", None) or failure_text(exc)


def _capture_findings(box: dict, notes: list[str]) -> list[Finding]:
    """The capture's findings that concern the application's traffic. The 5-second signature
    keeps its verdict (conntrack); the rest are evidence only: podtriage's own queries are on
    the wire too, and resolve already judged those."""
    if "error" in box:
        notes.append(f"capture: {box['error']}")
        return []
    rep = box.get("report")
    if rep is None:
        return []
    d = rep.data
    notes.append(f"capture: {d.get('packets', 0)} packets, {d.get('queries', 0)} queries, "
                 f"{d.get('unanswered', 0)} unanswered, {d.get('retransmissions', 0)} retransmissions")
    out = []
    for f in rep.findings:
        if f.severity is Severity.INFO:
            continue
        out.append(f if f.code == "capture-5s-signature" else replace(f, verdict=None))
    return out


def _race(res: ResolveResult, count: int, deadline: Deadline, notes: list[str], say) -> list[Finding]:
    target = next((s.address for s in res.servers if s.role == "resolv.conf"), None)
    if target is None:
        notes.append("race test: no resolv.conf nameserver to test")
        return []
    try:
        from toolkit.conntrack import race_findings
        from toolkit.conntrack.race import race_test

        say(f"conntrack race test against {target} ({count} lookups per mode)")
        result = race_test(target, count=count, deadline=deadline.child(deadline.remaining() * 0.6))
        return [f for f in race_findings(result) if f.severity is not Severity.INFO]
    except Exception as exc:  # noqa: BLE001 - optional evidence
        reraise_bug(exc)
        notes.append(f"race test not run: {failure_text(exc)}")
        return []


def _processes(box: dict) -> None:
    try:
        from toolkit.sysinfo.procs import other_processes

        box["processes"] = other_processes()
    except Exception as exc:  # noqa: BLE001 - optional evidence
        if is_bug(exc):
            box["bug"] = exc  # re-raised by the main thread
        box["error"] = failure_text(exc)


def _kube_dns_env() -> str | None:
    import os

    # Kubernetes injects *_SERVICE_HOST for Services of the pod's own namespace only, so
    # this is set for pods in kube-system; elsewhere --server or --corefile tell it.
    return os.environ.get("KUBE_DNS_SERVICE_HOST") or None


def _conntrack_before(box: dict) -> None:
    try:
        from toolkit.conntrack import read_snapshot

        box["before"] = read_snapshot()
    except Exception as exc:  # noqa: BLE001 - optional evidence
        if is_bug(exc):
            box["bug"] = exc  # re-raised by the main thread
        box["error"] = f"conntrack not read: {failure_text(exc)}"


def _conntrack_after(box: dict, notes: list[str]) -> list[Finding]:
    if "before" not in box:
        if box.get("error"):
            notes.append(box["error"])
        return []
    try:
        from toolkit.conntrack import conntrack_findings, read_snapshot

        found = list(conntrack_findings(box["before"], read_snapshot()))
    except Exception as exc:  # noqa: BLE001 - optional evidence
        reraise_bug(exc)
        notes.append(f"conntrack not read: {failure_text(exc)}")
        return []
    # In diagnose only what argues for something is a finding; the rest (e.g. "this is the
    # pod's table, not the node's") is one line among the notes.
    for f in found:
        if f.severity is Severity.INFO:
            notes.append(f"conntrack: {f.summary}")
    return [f for f in found if f.severity is not Severity.INFO]


def _corefile_evidence(name: str, corefiles: Sequence[str], notes: list[str],
                       roles: Sequence[str] = ()):
    """(findings, hops, extra references, servers behind the pod's cache) from Corefiles."""
    if not corefiles:
        return [], [], [], []
    from toolkit.corefile.bridge import corefile_evidence

    return corefile_evidence(name, corefiles, notes, roles)


# ----------------------------------------------------------------------------- report

def diagnose_report(e: Evidence) -> Report:
    c = classify(e)
    res = e.resolve
    answers = [{"server": p.server, "role": p.role, "transport": p.transport, "outcome": p.outcome,
                "answered_as": p.hit, "addresses": list(p.addresses)} for p in res.paths]
    answers += [{"server": p.server, "role": "behind-cache", "transport": p.transport, "outcome": p.outcome,
                 "answered_as": p.hit, "addresses": list(p.addresses)} for p in e.behind]
    probes = [{"address": pr.address, "target": rep.address, "kind": pr.kind, "port": pr.port,
               "result": pr.result, "from": pr.reply_from, "rtt_ms": pr.rtt_ms,
               "detail": pr.detail, "privileged": pr.privileged}
              for rep in e.probes for pr in rep.probes + rep.control]
    data = {
        "name": e.name,
        "candidates": list(res.candidates),
        "answers": answers,
        "probes": probes,
        "addresses": _address_rows(e),
        "ports": list(e.ports),
        "settle": c.settle,
        "support": list(c.support),
        "results": [dict(_row(q), role=p.role) for p in res.paths for q in p.queries],
        "processes": list(e.processes),
        "app_sockets": list(e.app_sockets),
    }
    tables = (
        Table("Answers (server x transport)", ("server", "role", "transport", "outcome", "addresses"),
              tuple((a["server"], a["role"], a["transport"], a["outcome"], fmt_addresses(a["addresses"])) for a in answers)),
        Table("Probes", ("target", "kind", "port", "result", "from", "ms", "detail"),
              tuple((p["target"], p["kind"], "" if p["port"] is None else str(p["port"]), p["result"],
                     p["from"] or "", "" if p["rtt_ms"] is None else f"{p['rtt_ms']:.0f}", p["detail"] or "")
                    for p in probes)),
    )
    events = tuple([{"event": "answer", **a} for a in answers] + [{"event": "probe", **p} for p in probes])
    notes = tuple(e.notes) + c.notes + ((f"to be sure: {c.settle}",) if c.settle else ())
    return Report("diagnose", c.verdict, c.findings, data, tables, subject=e.name,
                  confidence=c.confidence, notes=notes, events=events)


def _address_rows(e: Evidence) -> list[dict[str, Any]]:
    """One row per answered address; those beyond the probe limit are 'not-probed'."""
    givers: dict[str, set[str]] = {}
    for p in e.resolve.paths:
        for a in p.addresses:
            givers.setdefault(a, set()).add(p.server)
    rows: list[dict[str, Any]] = [
        {"address": r.address, "state": r.state, "summary": r.summary,
         "answered_by": sorted(givers.get(r.address, ())), "route": r.route} for r in e.probes]
    probed = {r.address for r in e.probes}
    rows += [{"address": a, "state": AddressState.NOT_PROBED,
              "summary": f"{a}: not probed (only {MAX_PROBED_ADDRESSES} addresses are probed)",
              "answered_by": sorted(givers[a]), "route": None}
             for a in sorted(givers) if a not in probed]
    return rows


def _row(q) -> dict:
    from toolkit.model import to_jsonable

    return to_jsonable(q)
