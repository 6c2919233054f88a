"""`diagnose`: the one-shot triage. Gather every kind of evidence under one deadline, then
classify with a pure function of that evidence (``classify``) into one verdict.

The rules (DESIGN.md "Verdicts", issue 4):
- no answer from the nameservers of the path -> dns-unavailable (and which hop is broken);
- only errors (NXDOMAIN/SERVFAIL/REFUSED) -> dns-error, flagging when only some servers say it;
- dead addresses that come only from some servers/paths, or a path answer that differs from
  every reference while its address is dead -> bad-answer, naming the servers;
- every path agrees and the address is dead -> unreachable-host, confidently only when an
  independent resolver (a --reference, a Corefile upstream) agrees; with a single path the
  evidence fits a stale answer as well as a dead host, so the verdict is indeterminate and
  the finding says what would settle it;
- RST / ICMP port-unreachable -> port-closed; ICMP admin-prohibited, or the host answering
  while the port stays silent -> filtered;
- conntrack evidence -> conntrack, when DNS and the target otherwise work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from toolkit.deadline import Deadline
from toolkit.dns.ranges import reserved_reason
from toolkit.dns.walk import Server
from toolkit.model import Finding, Report, Severity, Table, Verdict, derive_verdict
from toolkit.triage.resolve import NEGATIVE, ResolveResult, fmt_addresses, resolve_findings

DEAD = frozenset({"host-unreachable", "silent", "routing"})
ALIVE = frozenset({"up", "port-closed", "filtered"})
DEFAULT_PORTS = (443, 80)
_DISAGREEMENT_CODES = frozenset({"answers-disagree", "answer-differs-from-reference", "transport-answers-differ"})


@dataclass(frozen=True)
class Evidence:
    name: str
    resolve: ResolveResult
    probes: tuple[Any, ...]  # toolkit.probe AddressReport: .address .state .summary .probes
    ports: tuple[int, ...]
    ports_given: bool
    behind: tuple[Any, ...] = ()  # PathResults of servers behind a failing cache
    conntrack_findings: tuple[Finding, ...] = ()
    corefile_findings: tuple[Finding, ...] = ()
    corefile_hops: tuple[Any, ...] = ()
    processes: tuple[Any, ...] = ()  # toolkit.sysinfo.procs.ProcInfo of the visible applications
    app_sockets: tuple[Any, ...] = ()  # toolkit.sysinfo.procs.SockInfo towards the name's addresses
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    confidence: str
    findings: tuple[Finding, ...]
    settle: str | None = None  # what would make a low-confidence verdict certain


def _who(paths) -> str:
    return ", ".join(sorted({f"{p.server}/{p.transport}" for p in paths}))


def _address_sources(res: ResolveResult) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for p in res.paths:
        for a in p.addresses:
            out[a].add((p.server, p.role))
    return out


def _probe_lines(rep) -> tuple[str, ...]:
    lines = []
    for pr in tuple(getattr(rep, "probes", ())) + tuple(getattr(rep, "control", ())):
        port = f":{pr.port}" if getattr(pr, "port", None) else ""
        frm = f" from {pr.reply_from}" if getattr(pr, "reply_from", None) else ""
        rtt = f" after {pr.rtt_ms:.0f} ms" if getattr(pr, "rtt_ms", None) else ""
        lines.append(f"{pr.kind} {pr.address}{port}: {pr.result}{frm}{rtt}")
    return tuple(lines)


def classify(e: Evidence) -> Classification:
    """Pure: the verdict, its confidence and the findings, from the evidence alone."""
    res = e.resolve
    findings: list[Finding] = list(resolve_findings(res))
    findings += list(e.corefile_findings) + list(e.conntrack_findings) + _app_findings(e)
    path_paths = [p for p in res.paths if p.role != "reference"]
    ref_paths = [p for p in res.paths if p.role == "reference"]
    answering = [p for p in path_paths if p.answered]
    settle = None

    # 1. The pod's own nameservers give no DNS answer at all.
    pod_paths = [p for p in path_paths if p.role == "resolv.conf"] or path_paths
    if pod_paths and all(p.failed for p in pod_paths):
        failing = sorted({p.server for p in pod_paths})
        behind = [p for p in path_paths if p.role != "resolv.conf"] + list(e.behind)
        behind_ok = [p for p in behind if p.answered]
        if behind_ok:
            findings.insert(0, Finding(
                "cache-broken-hop", Severity.CRITICAL,
                f"{', '.join(failing)} gives no answer, but the server behind it "
                f"({_who(behind_ok)}) answers {e.name}: the cache is the broken hop",
                tuple(f"{p.server}/{p.transport}: {p.outcome} {fmt_addresses(p.addresses)}" for p in behind),
                "restart the NodeLocal DNSCache pod on this node (kubectl -n kube-system delete pod "
                "-l k8s-app=node-local-dns --field-selector spec.nodeName=NODE); for resilience add "
                "a second nameserver or kubespray's secondary nodelocaldns",
                Verdict.DNS_UNAVAILABLE, {"failing": failing, "behind": sorted({p.server for p in behind_ok})}))
        elif not behind:
            settle = "add --server IP for the DNS service behind the cache (e.g. the kube-dns ClusterIP) or --corefile"
        return _done(Verdict.DNS_UNAVAILABLE, "high", findings, settle)
    # 2. No answer on the path: DNS errors (rcodes), or servers that went silent part-way.
    if not answering:
        outcomes = sorted({p.outcome for p in path_paths if not p.failed})
        if not any(o in NEGATIVE for o in outcomes):
            return _done(Verdict.DNS_UNAVAILABLE, "high", findings, None)
        refs_answer = [p for p in ref_paths if p.answered]
        if refs_answer:
            findings.insert(0, Finding(
                "error-only-on-path", Severity.CRITICAL,
                f"the path answers {'/'.join(o.upper() for o in outcomes)} for {e.name} while the "
                f"reference {_who(refs_answer)} resolves it to {fmt_addresses(sorted({a for p in refs_answer for a in p.addresses}))}",
                tuple(f"{p.server}/{p.transport}: {p.outcome}" for p in path_paths),
                "a server block or upstream on the path has its own (wrong) view of this zone: "
                "check stub forwards, `rewrite` and `template` in the Corefiles (podtriage corefile trace)",
                Verdict.DNS_ERROR, {"outcomes": outcomes}))
        return _done(Verdict.DNS_ERROR, "high", findings, None)

    # 3. Addresses: which are dead, which alive, who gave them.
    by_addr = {r.address: r for r in e.probes}
    sources = _address_sources(res)
    path_addrs = sorted({a for p in answering for a in p.addresses})
    ref_addrs = sorted({a for p in ref_paths if p.answered for a in p.addresses})
    state = {a: getattr(by_addr.get(a), "state", "unknown") for a in set(path_addrs) | set(ref_addrs)}
    dead = [a for a in path_addrs if state[a] in DEAD]
    alive = [a for a in path_addrs if state[a] in ALIVE]
    probe_ev = tuple(line for a in path_addrs + [x for x in ref_addrs if x not in path_addrs]
                     if a in by_addr for line in _probe_lines(by_addr[a]))

    def givers(addr):
        return sorted(f"{s} [{r}]" if r == "reference" else s for s, r in sources.get(addr, ()))

    # 3a. A path answer that differs from every reference, with a dead address.
    if ref_addrs:
        ref_alive = [a for a in ref_addrs if state.get(a) in ALIVE]
        ref_serving = [a for a in ref_addrs if state.get(a) == "up"]
        # The wrong address's symptom (dead, refusing, filtered, silent) does not matter: a
        # recycled address held by a live host is no alibi for the answer.
        differing = [a for a in path_addrs if a not in ref_addrs
                     and (state[a] in DEAD or (ref_serving and state[a] in ALIVE - {"up"}))]
        if differing:
            zone_hint = _zone_hint(e)
            findings.insert(0, Finding(
                "stale-answer", Severity.CRITICAL,
                f"{e.name} resolves to {fmt_addresses(differing)} through {', '.join(sorted({s for a in differing for s in givers(a)}))}, "
                f"but the reference says {fmt_addresses(ref_addrs)}; {fmt_addresses(differing)} does not serve "
                f"({', '.join(by_addr[a].summary for a in differing if a in by_addr)})"
                + (f" while {fmt_addresses(ref_alive)} answers" if ref_alive else ""),
                probe_ev + zone_hint,
                _stale_remedy(e),
                Verdict.BAD_ANSWER,
                {"addresses": differing, "servers": sorted({s for a in differing for s in givers(a)}),
                 "reference_addresses": ref_addrs}))
            return _done(Verdict.BAD_ANSWER, "high", findings, None)

    # 3b. Some addresses alive, the dead ones only from some servers.
    if dead and alive:
        dead_src = {s for a in dead for s in givers(a)}
        alive_src = {s for a in alive for s in givers(a)}
        if dead_src != alive_src:
            findings.insert(0, Finding(
                "dead-answer-from-some-servers", Severity.CRITICAL,
                f"{fmt_addresses(dead)} (dead) come only from {', '.join(sorted(dead_src - alive_src) or sorted(dead_src))}; "
                f"{fmt_addresses(alive)} (alive) from {', '.join(sorted(alive_src))}",
                probe_ev, "the servers named first serve stale data for this zone: find their upstream "
                          "(podtriage corefile trace) and fix or remove it, then flush the caches",
                Verdict.BAD_ANSWER, {"dead": dead, "alive": alive, "dead_from": sorted(dead_src)}))
            return _done(Verdict.BAD_ANSWER, "high", findings, None)

    # 3c. A reserved/unroutable answer that is dead.
    reserved_dead = [a for a in dead if reserved_reason(a, name=e.name)]
    if reserved_dead:
        return _done(Verdict.BAD_ANSWER, "high", findings, None)

    # 3d. Every path agrees (or only one path) and the address is dead.
    if dead and not alive:
        independent = bool(ref_addrs) and set(dead) <= set(ref_addrs)
        servers = sorted({p.server for p in answering})
        hosts_unreach = [by_addr[a] for a in dead if a in by_addr and by_addr[a].state == "host-unreachable"]
        what = "; ".join(by_addr[a].summary for a in dead if a in by_addr)
        if independent:
            findings.insert(0, Finding(
                "host-down", Severity.CRITICAL,
                f"{e.name} resolves to {fmt_addresses(dead)} on every path and the reference agrees, but "
                f"nothing answers there: {what}",
                probe_ev, "the DNS data is right; the host or its service is gone: restore it, or "
                          "remove the record",
                Verdict.UNREACHABLE_HOST, {"addresses": dead}))
            return _done(Verdict.UNREACHABLE_HOST, "high", findings, None)
        settle = "rerun with --reference IP (an independent resolver for this zone) or --corefile FILE"
        findings.insert(0, Finding(
            "dead-answer-unconfirmed", Severity.CRITICAL,
            f"{e.name} resolves to {fmt_addresses(dead)} (from {', '.join(servers)}) and nothing answers there: "
            f"{what}. With one resolver path and no reference this fits a stale DNS answer as well as "
            f"a host that is down",
            probe_ev + ((f"host-unreachable came from {hosts_unreach[0].probes[0].reply_from}",)
                        if hosts_unreach and hosts_unreach[0].probes and hosts_unreach[0].probes[0].reply_from else ()),
            f"to tell them apart, {settle}; meanwhile check the zone's forwarders in the Corefiles",
            Verdict.INDETERMINATE, {"addresses": dead, "servers": servers}))
        return _done(Verdict.INDETERMINATE, "low", findings, settle)

    # 4. The host is there. Answers that differ but all answer are not a *bad* answer
    # (DESIGN: bad-answer needs the answered address to be dead): keep them as warnings.
    findings = [replace(f, severity=Severity.WARNING, verdict=None)
                if f.code in _DISAGREEMENT_CODES and f.verdict is Verdict.BAD_ANSWER else f
                for f in findings]
    states = {state[a] for a in path_addrs}
    if "filtered" in states:
        return _done(Verdict.FILTERED, "high", findings + [_probe_finding(
            "port-filtered", e, [by_addr[a] for a in path_addrs if state[a] == "filtered"], Verdict.FILTERED,
            "a policy on the way drops or rejects the traffic (ICMP admin-prohibited, or the host "
            "answers while the port stays silent): check NetworkPolicies, security groups and "
            "host firewalls")], None)
    if "port-closed" in states and e.ports_given:
        return _done(Verdict.PORT_CLOSED, "high", findings + [_probe_finding(
            "port-closed", e, [by_addr[a] for a in path_addrs if state[a] == "port-closed"], Verdict.PORT_CLOSED,
            "the host is up but nothing listens on the port: check the service's targetPort, "
            "the process and its listen address")], None)
    unknown = [a for a in path_addrs if a in by_addr and state[a] not in ALIVE]
    verdict = derive_verdict(findings)
    if verdict is Verdict.OK and unknown:
        settle = "give --port N for the application's port (a TCP answer proves the host is there)"
        findings.append(Finding(
            "address-unverified", Severity.WARNING,
            f"could not verify {fmt_addresses(unknown)}: {'; '.join(getattr(by_addr.get(a), 'summary', 'not probed') for a in unknown)}",
            probe_ev, settle, Verdict.INDETERMINATE, {"addresses": unknown}))
        return _done(Verdict.INDETERMINATE, "low", findings, settle)
    return _done(verdict, "high" if verdict is Verdict.OK else "medium", findings, settle)


def _app_findings(e: Evidence) -> list[Finding]:
    out = []
    dead_states = {r.address for r in e.probes if getattr(r, "state", None) in DEAD}
    stuck = [s for s in e.app_sockets if s.status == "SYN_SENT"]
    if stuck:
        on_dead = [s for s in stuck if s.remote.rsplit(":", 1)[0] in dead_states]
        out.append(Finding(
            "app-syn-sent", Severity.WARNING,
            f"the application has {len(stuck)} connection(s) stuck in SYN_SENT"
            + (f", {len(on_dead)} of them to a dead address of {e.name}" if on_dead else ""),
            tuple(f"pid {s.pid} {s.process}: {s.local} -> {s.remote} {s.status}" for s in stuck[:10]),
            "this ties the application's failure to the addresses above", None,
            {"sockets": [s.remote for s in stuck]}))
    musl = [p for p in e.processes if p.libc == "musl"]
    if musl:
        out.append(Finding(
            "app-uses-musl", Severity.INFO,
            f"{', '.join(sorted({p.name for p in musl}))} resolve(s) names with musl libc",
            tuple(f"pid {p.pid} {p.name}: {p.cmdline}" for p in musl[:5]),
            "musl ignores resolv.conf options single-request, single-request-reopen and use-vc, "
            "queries all nameservers in parallel, and never searches names with ndots or more dots",
            None, {"pids": [p.pid for p in musl]}))
    return out


def _stale_remedy(e: Evidence) -> str:
    stub = next((f for f in e.corefile_findings if f.code == "corefile-stub-forward"), None)
    if stub is not None:
        d = stub.data
        return (f"{e.name} is answered through {d['corefile']} block {d['block']} (line "
                f"{d.get('file_line') or d['line']}), which forwards it to {', '.join(d['upstreams'])}, a "
                "server whose answers differ from the reference: re-point or delete that block, then "
                "flush the caches (restart CoreDNS and NodeLocal DNSCache)")
    return (f"the zone of {e.name} is answered by a server whose answers differ from the reference: "
            "check CoreDNS/NodeLocal server blocks that forward this zone (a stub `forward` to a "
            "retired server; `podtriage corefile trace NAME --corefile ...` names it), re-point or "
            "delete it, then flush the caches (restart CoreDNS and NodeLocal DNSCache)")


def _zone_hint(e: Evidence) -> tuple[str, ...]:
    """The Corefile hops (already described as text) that lead to the answer."""
    return tuple(f"corefile: {hop}" for hop in e.corefile_hops)


def _probe_finding(code, e: Evidence, reps, verdict, remedy) -> Finding:
    return Finding(code, Severity.CRITICAL,
                   f"{e.name}: " + "; ".join(r.summary for r in reps),
                   tuple(line for r in reps for line in _probe_lines(r)), remedy, verdict,
                   {"addresses": [r.address for r in reps]})


def _done(verdict, confidence, findings, settle) -> Classification:
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    # The findings that argue for the verdict come first, then the rest by severity.
    ranked = sorted(findings, key=lambda f: (f.verdict is not verdict, order[f.severity]))
    return Classification(verdict, confidence, tuple(ranked), settle)


# ----------------------------------------------------------------------------- gathering

MAX_PROBED_ADDRESSES = 8


def gather(name: str, *, resolv_conf: str = "/etc/resolv.conf", servers: Sequence[Server] = (),
           references: Sequence[Server] = (), ports: Sequence[int] = (), corefiles: Sequence[str] = (),
           deadline: Deadline, query_timeout: float | None = None, capture_s: float = 0.0,
           race_count: int = 0, on_progress: Callable[[str], None] | None = None) -> Evidence:
    """Collect every kind of evidence, concurrently where it can be, under one deadline."""
    import threading

    from toolkit.probe import probe_addresses
    from toolkit.sysinfo.procs import sockets_to
    from toolkit.triage.resolve import resolve_name

    say = on_progress or (lambda _m: None)
    notes: list[str] = []
    # DNS answers come first: probes need the addresses. Keep the per-query timeout well
    # inside the budget so a silent server leaves time for the probes (which need ~3.5 s
    # to see an ARP failure's ICMP host-unreachable).
    qt = query_timeout if query_timeout is not None else max(0.5, min(2.0, deadline.remaining() / 4))

    ct_box: dict[str, Any] = {}
    ct_thread = threading.Thread(target=_conntrack_before, args=(ct_box,), daemon=True)
    ct_thread.start()
    # Reading other processes' memory maps (glibc or musl) can take a while: beside the rest.
    proc_box: dict[str, Any] = {}
    proc_thread = threading.Thread(target=_processes, args=(proc_box,), daemon=True)
    proc_thread.start()
    # Optional wire evidence: the pod's own DNS traffic while we work (needs NET_RAW).
    cap_box: dict[str, Any] = {}
    cap_stop = threading.Event()
    cap_thread = None
    if capture_s > 0:
        cap_thread = threading.Thread(target=_capture, args=(cap_box, capture_s, deadline, cap_stop),
                                      daemon=True)
        cap_thread.start()

    cf_findings, cf_hops, extra_refs, behind_servers = _corefile_evidence(name, corefiles, notes)
    refs = list(references) + [s for s in extra_refs if s.address not in {r.address for r in references}]

    say(f"resolving {name}")
    res = resolve_name(name, resolv_conf=resolv_conf, servers=servers, references=refs,
                       deadline=deadline, query_timeout=qt, on_progress=on_progress)
    addresses, unprobed = probe_order(res)
    if unprobed:
        notes.append(f"{len(addresses) + len(unprobed)} addresses answered; probed {MAX_PROBED_ADDRESSES} "
                     f"of them: {fmt_addresses(list(unprobed))} not probed (no evidence either way)")

    behind: tuple = ()
    pod_paths = [p for p in res.paths if p.role == "resolv.conf"]
    if pod_paths and all(p.failed for p in pod_paths):
        cands = [s for s in behind_servers if s.address not in {p.server for p in res.paths}]
        env_ip = _kube_dns_env()
        if env_ip and env_ip not in {s.address for s in cands} | {p.server for p in res.paths}:
            cands.append(Server(env_ip, "server"))
        if cands:
            from toolkit.dns.walk import walk_all

            say(f"the pod's nameservers do not answer; asking the server(s) behind them: "
                f"{', '.join(s.address for s in cands)}")
            behind = walk_all(cands, ("udp", "tcp"), res.candidates, ("A",), deadline, qt)

    # The application's own sockets, read before the probes: a connect() stuck in SYN_SENT
    # towards a dead address lasts only until the router's ICMP error (~3 s).
    app_sockets: tuple = ()
    try:
        app_sockets = sockets_to(addresses)
    except Exception as exc:  # noqa: BLE001 - psutil trouble must not cost the verdict
        notes.append(f"could not read the application's sockets: {exc}")

    probes: tuple = ()
    if addresses:
        port_list = tuple(ports) or DEFAULT_PORTS
        say(f"probing {', '.join(addresses)} (ports {', '.join(map(str, port_list))})")
        probes = probe_addresses(addresses, port_list, deadline, on_progress=on_progress)
        for rep in probes:
            for lost in getattr(rep, "lost", ()) or ():
                if lost not in notes:
                    notes.append(lost)

    race: list[Finding] = []
    if race_count > 0:
        race = _race(res, race_count, deadline, notes, say)

    if cap_thread is not None:
        cap_thread.join(max(0.0, deadline.timeout(capture_s)))
        cap_stop.set()
        cap_thread.join(1.0)
    ct_thread.join(max(0.0, deadline.timeout(1.0)))
    ct_findings = _conntrack_after(ct_box, notes) + race + _capture_findings(cap_box, notes)
    proc_thread.join(max(0.0, deadline.timeout(1.0)))
    processes = tuple(proc_box.get("processes", ()))
    if "error" in proc_box:
        notes.append(f"could not read the application's processes: {proc_box['error']}")
    elif not processes:
        notes.append("no other process is visible: attach with `kubectl debug --target=CONTAINER` "
                      "to see the application's sockets and resolver library")

    return Evidence(name, res, tuple(probes), tuple(ports) or DEFAULT_PORTS, bool(ports), tuple(behind),
                    tuple(ct_findings), tuple(cf_findings), tuple(cf_hops), tuple(processes),
                    tuple(app_sockets), tuple(notes))


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
        box["error"] = getattr(exc, "message", None) or str(exc)


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
        notes.append(f"race test not run: {exc}")
        return []


def _processes(box: dict) -> None:
    try:
        from toolkit.sysinfo.procs import other_processes

        box["processes"] = other_processes()
    except Exception as exc:  # noqa: BLE001 - optional evidence
        box["error"] = str(exc)


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
        box["error"] = f"conntrack not read: {exc}"


def _conntrack_after(box: dict, notes: list[str]) -> list[Finding]:
    if "before" not in box:
        if box.get("error"):
            notes.append(box["error"])
        return []
    try:
        from toolkit.conntrack import conntrack_findings, read_snapshot

        found = list(conntrack_findings(box["before"], read_snapshot()))
    except Exception as exc:  # noqa: BLE001 - optional evidence
        notes.append(f"conntrack not read: {exc}")
        return []
    # In diagnose only what argues for something is a finding; the rest (e.g. "this is the
    # pod's table, not the node's") is one line among the notes.
    for f in found:
        if f.severity is Severity.INFO:
            notes.append(f"conntrack: {f.summary}")
    return [f for f in found if f.severity is not Severity.INFO]


def _corefile_evidence(name: str, corefiles: Sequence[str], notes: list[str]):
    """(findings, hops, extra references, servers behind the pod's cache) from Corefiles."""
    if not corefiles:
        return [], [], [], []
    from toolkit.corefile.bridge import corefile_evidence

    return corefile_evidence(name, corefiles, notes)


# ----------------------------------------------------------------------------- report

def diagnose_report(e: Evidence) -> Report:
    c = classify(e)
    res = e.resolve
    sources = _address_sources(res)
    answers = [{"server": p.server, "role": p.role, "transport": p.transport, "outcome": p.outcome,
                "answered_as": p.hit, "addresses": list(p.addresses)} for p in res.paths]
    answers += [{"server": p.server, "role": "behind-cache", "transport": p.transport, "outcome": p.outcome,
                 "answered_as": p.hit, "addresses": list(p.addresses)} for p in e.behind]
    probes = []
    for rep in e.probes:
        for pr in tuple(getattr(rep, "probes", ())) + tuple(getattr(rep, "control", ())):
            probes.append({"address": pr.address, "target": rep.address, "kind": pr.kind, "port": pr.port,
                           "result": pr.result, "from": pr.reply_from, "rtt_ms": pr.rtt_ms,
                           "detail": pr.detail, "privileged": getattr(pr, "privileged", None)})
    addresses = [{"address": r.address, "state": r.state, "summary": r.summary,
                  "answered_by": sorted(f"{s}" for s, _r in sources.get(r.address, ())),
                  "route": getattr(r, "route", None)} for r in e.probes]
    probed = {r.address for r in e.probes}
    addresses += [{"address": a, "state": "not-probed",
                   "summary": f"{a}: not probed (only {MAX_PROBED_ADDRESSES} addresses are probed)",
                   "answered_by": sorted(f"{s}" for s, _r in sources.get(a, ())), "route": None}
                  for a in sorted(sources) if a not in probed]
    data = {
        "name": e.name,
        "candidates": list(res.candidates),
        "answers": answers,
        "probes": probes,
        "addresses": addresses,
        "ports": list(e.ports),
        "settle": c.settle,
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
    notes = tuple(e.notes) + ((f"to be sure: {c.settle}",) if c.settle else ())
    return Report("diagnose", c.verdict, c.findings, data, tables, subject=e.name,
                  confidence=c.confidence, notes=notes, events=events)


def _row(q) -> dict:
    from toolkit.model import to_jsonable

    return to_jsonable(q)
