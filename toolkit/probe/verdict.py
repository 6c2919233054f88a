"""`reach` verdict: a pure function of a ReachResult -> Report (unit-tested).

- every address up and every asked port open       -> ok
- a port refused (RST / ICMP port-unreachable)      -> port-closed
- ICMP admin-prohibited, or the host answers ping/ARP while the port is silent -> filtered
- host-unreachable (the last router's ARP failed), or silence with a healthy control
                                                    -> unreachable-host
- routing (net-unreachable, TTL exceeded, no route, control failing too)
                                                    -> unreachable-host, finding `routing`
- silence with no control to compare, nothing probed -> indeterminate
- the name does not resolve                         -> dns-error / dns-unavailable
The worst address decides (model.VERDICT_PRIORITY); each address gives one finding.
"""

from __future__ import annotations

from toolkit.model import Confidence, Finding, Report, Severity, Table, Verdict, derive_verdict
from toolkit.probe.model import AddressReport, AddressState, ProbeResult, ReachResult

REMEDY_UNREACHABLE = ("nobody answers for this address on its link: the host is down or gone, or DNS "
                      "hands out a stale address (check with `podtriage diagnose NAME --reference IP`)")


def address_finding(rep: AddressReport, ports: tuple[int, ...]) -> Finding:
    """The one finding of one address: its state, the probes as evidence, what to do."""
    state = rep.state
    evidence = tuple(p.describe() + (f" [{p.detail}]" if p.detail else "") for p in rep.probes + rep.control)
    if rep.route is not None:
        evidence = (f"route: {rep.route.describe()}",) + evidence
    data = {"address": rep.address, "state": state}
    crit = Severity.CRITICAL
    if state is AddressState.UP:
        closed = tuple(p for p in ports if p in rep.closed_ports)
        if closed:
            return Finding(code="port-closed", severity=crit, summary=rep.summary, evidence=evidence,
                           remedy=f"nothing listens on port {', '.join(map(str, closed))} of {rep.address}: "
                           "check the service's port and that the application is running",
                           verdict=Verdict.PORT_CLOSED, data=data)
        missing = tuple(p for p in ports if p not in rep.open_ports)
        if missing:
            return Finding(code="port-not-open", severity=Severity.WARNING,
                           summary=f"{rep.summary}; port {', '.join(map(str, missing))} did not answer",
                           evidence=evidence, remedy="look at a firewall on that port", verdict=Verdict.FILTERED,
                           data=data)
        return Finding(code="reachable", severity=Severity.INFO, summary=rep.summary, evidence=evidence, remedy="",
                       verdict=None, data=data)
    if state is AddressState.PORT_CLOSED:
        return Finding(code="port-closed", severity=crit, summary=rep.summary, evidence=evidence,
                       remedy=f"the host answers but refuses the port: check that the application listens on "
                       f"{', '.join(map(str, rep.closed_ports))}", verdict=Verdict.PORT_CLOSED, data=data)
    if state is AddressState.FILTERED:
        return Finding(code="filtered", severity=crit, summary=rep.summary, evidence=evidence,
                       remedy="a firewall or NetworkPolicy on the path rejects or drops the traffic: find the "
                       "rule (the router named above sent the rejection)", verdict=Verdict.FILTERED, data=data)
    if state is AddressState.HOST_UNREACHABLE:
        who = rep.host_unreachable_from
        return Finding(code="host-unreachable", severity=crit, summary=rep.summary, evidence=evidence,
                       remedy=REMEDY_UNREACHABLE, verdict=Verdict.UNREACHABLE_HOST, data=dict(data, icmp_from=who))
    if state is AddressState.ROUTING:
        return Finding(code="routing", severity=crit, summary=rep.summary, evidence=evidence,
                       remedy="the path to the address is broken: check the routes of the pod and the node "
                       "(`ip route get ADDRESS`) and whether the gateway is up", verdict=Verdict.UNREACHABLE_HOST,
                       data=data)
    if state is AddressState.SILENT:
        if rep.control_ok:
            return Finding(code="silent", severity=crit, summary=rep.summary, evidence=evidence,
                           remedy="the path works (the control answers) but the address does not: a silent drop "
                           "(firewall, NetworkPolicy) or a dead host; look at the policy, then at the host",
                           verdict=Verdict.UNREACHABLE_HOST, data=data)
        return Finding(code="silent-no-control", severity=Severity.WARNING, summary=rep.summary, evidence=evidence,
                       remedy="nothing answered and no control probe could be compared: run from the node, or "
                       "with NET_RAW (`kubectl debug --profile=netadmin`), or raise --deadline",
                       verdict=Verdict.INDETERMINATE, data=data)
    return Finding(code="not-probed", severity=Severity.WARNING, summary=rep.summary, evidence=evidence,
                   remedy="raise --deadline, or attach with `kubectl debug --profile=netadmin`",
                   verdict=Verdict.INDETERMINATE, data=data)


def reach_report(res: ReachResult) -> Report:
    """The Report of `podtriage reach`: one finding per address (and for a name that does
    not resolve, or probes that lost NET_RAW), the worst deciding the verdict."""
    findings: list[Finding] = []
    ports = tuple(res.ports)
    if res.resolve_error is not None or not res.addresses:
        err = res.resolve_error or "no addresses"
        timeout = "did not return" in err or "EAI -3" in err
        findings.append(Finding(
            code="name-unresolved", severity=Severity.CRITICAL, summary=f"{res.target} does not resolve: {err}",
            evidence=(err,),
            remedy=f"run `podtriage resolve {res.target}` or `podtriage diagnose {res.target}` to see which "
            "nameserver says what", verdict=Verdict.DNS_UNAVAILABLE if timeout else Verdict.DNS_ERROR,
            data={"target": res.target}))
    for rep in res.addresses:
        findings.append(address_finding(rep, ports))
    if res.lost:
        findings.append(Finding(
            code="missing-net-raw", severity=Severity.INFO,
            summary="without NET_RAW some probes fell back to unprivileged ones", evidence=tuple(res.lost),
            remedy="attach with `kubectl debug --profile=netadmin` (adds NET_RAW and NET_ADMIN) or run "
            "the container with --cap-add NET_RAW", verdict=None, data={"capability": "NET_RAW"}))
    verdict = derive_verdict(findings, default=Verdict.OK)
    if not res.addresses and verdict is Verdict.OK:
        verdict = Verdict.INDETERMINATE
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: (f.verdict is not verdict, order[f.severity]))
    rows: list[tuple[str, ...]] = []
    for rep in res.addresses:
        for p in rep.probes + rep.control:
            rows.append((rep.address, p.address if p.address != rep.address else "", p.kind,
                         "" if p.port is None else str(p.port), p.result, p.reply_from or "",
                         "" if p.icmp_type is None else f"{p.icmp_type}/{p.icmp_code}",
                         "" if p.rtt_ms is None else f"{p.rtt_ms:.0f}", p.detail))
    tables = (
        Table(title="Addresses", columns=("address", "route", "state", "summary"),
              rows=tuple((r.address, r.route.describe() if r.route else "?", r.state, r.summary)
                         for r in res.addresses)),
        Table(title="Probes", columns=("target", "probed", "kind", "port", "result", "from", "icmp", "ms", "detail"),
              rows=tuple(rows)),
    )
    addresses = [{"address": r.address, "route": r.route, "state": r.state, "alive": r.alive,
                  "control_ok": r.control_ok, "summary": r.summary,
                  "open_ports": list(r.open_ports), "closed_ports": list(r.closed_ports),
                  "probes": [_probe_dict(p) for p in r.probes],
                  "control": [_probe_dict(p) for p in r.control]} for r in res.addresses]
    data = {"target": res.target, "resolved_from": res.resolved_from, "resolve_error": res.resolve_error,
            "resolve_ms": res.resolve_ms, "ports": list(ports), "addresses": addresses,
            "capabilities": list(res.capabilities), "lost": list(res.lost)}
    events = tuple({"event": "probe", "target": r.address, **_probe_dict(p)}
                   for r in res.addresses for p in r.probes + r.control)
    notes = tuple(f"lost without NET_RAW: {line}" for line in res.lost)
    confidence = Confidence.HIGH if verdict is not Verdict.INDETERMINATE else Confidence.LOW
    return Report(command="reach", verdict=verdict, findings=tuple(findings), data=data, tables=tables,
                  subject=res.target, confidence=confidence, notes=notes, events=events)


def _probe_dict(p: ProbeResult) -> dict[str, object]:
    return {"address": p.address, "kind": p.kind, "port": p.port, "result": p.result,
            "from": p.reply_from, "reply_from": p.reply_from, "icmp_type": p.icmp_type,
            "icmp_code": p.icmp_code, "rtt_ms": p.rtt_ms, "detail": p.detail, "privileged": p.privileged}
