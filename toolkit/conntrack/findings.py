"""Pure rules: conntrack snapshots (and a race test) -> Findings. No I/O here.

Each rule is a small typed function ``Facts -> Finding | None`` with its texts, collected in
a table of ``RuleRow`` with a priority, as toolkit.triage.rules does for `diagnose`:
``SNAPSHOT_RULES`` (every rule that fires, highest priority first: the order a reader sees
them) and ``RACE_PATTERNS`` (the highest-priority loss pattern that matches is the one).

A counter that moves between two snapshots is evidence; a large total since boot is not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from toolkit.conntrack.entries import FlowProto
from toolkit.conntrack.race import RaceMode
from toolkit.conntrack.stats import delta
from toolkit.model import Finding, Severity, Verdict
from toolkit.sysinfo.procs import Libc

if TYPE_CHECKING:
    from toolkit.conntrack.race import ModeResult, RaceResult
    from toolkit.conntrack.snapshot import ConntrackSnapshot
    from toolkit.conntrack.stale import StaleCheck, StaleGroup

WARN_PCT = 75.0
CRIT_PCT = 90.0
UNREPLIED_MIN = 3  # unreplied DNS entries worth a finding
BACKEND_SHARE = 0.8  # one backend holding this share of the unreplied entries "collects" them

NODE_VIEW = ("kubectl debug node/NODE --profile=sysadmin -it --image=<podtriage image> "
             "-- podtriage conntrack")
NODE_METRICS = ("node-exporter: node_nf_conntrack_entries, node_nf_conntrack_entries_limit, "
                "node_nf_conntrack_stat_insert_failed, node_nf_conntrack_stat_drop, "
                "node_nf_conntrack_stat_early_drop")

REMEDY_RACE = ("Avoid the parallel A/AAAA race: NodeLocal DNSCache (pod->cache is NOTRACKed, "
               "cache->CoreDNS uses TCP); or pod dnsConfig.options `single-request-reopen` "
               "(glibc; new socket for the second query) or `use-vc` (TCP). musl ignores both "
               "options. Kernels >= 5.x resolve most clashes (see the kernel fixes).")
REMEDY_TABLE = ("Raise nf_conntrack_max (and the hash size): kube-proxy "
                "`conntrack.maxPerCore`/`conntrack.min`; shorten nf_conntrack_udp_timeout; keep DNS "
                "out of conntrack with NodeLocal DNSCache (NOTRACK); fix connection leaks.")


FactsT = TypeVar("FactsT")


@dataclass(frozen=True, kw_only=True)
class RuleRow(Generic[FactsT]):
    """One row of a rule table: the rule and its priority (higher runs first)."""

    priority: int
    rule: Callable[[FactsT], Finding | None]


def fired(rows: Sequence[RuleRow[FactsT]], facts: FactsT) -> list[Finding]:
    """The findings of every rule that fires, highest priority first."""
    return [f for row in sorted(rows, key=lambda r: -r.priority) if (f := row.rule(facts)) is not None]


def first_fired(rows: Sequence[RuleRow[FactsT]], facts: FactsT) -> Finding | None:
    """The finding of the highest-priority rule that fires (rules that exclude one another)."""
    return next((f for row in sorted(rows, key=lambda r: -r.priority) if (f := row.rule(facts)) is not None), None)


def _fmt_delta(d: dict[str, int], names: Sequence[str]) -> str:
    return ", ".join(f"{n} +{d[n]}" for n in names if d.get(n))


@dataclass(frozen=True, kw_only=True)
class SnapshotFacts:
    """Two snapshots of one netns, as the snapshot rules see them."""

    before: ConntrackSnapshot
    after: ConntrackSnapshot

    @property
    def where(self) -> str:
        """The netns the numbers belong to, in words."""
        return self.after.netns.label

    @property
    def elapsed(self) -> float:
        """Seconds between the two reads."""
        return max(0.0, self.after._monotonic - self.before._monotonic)

    @property
    def moving(self) -> bool:
        """Two distinct reads with counters: deltas can be judged."""
        return self.before.counters is not None and self.after.counters is not None and \
            self.before is not self.after

    @property
    def delta(self) -> dict[str, int]:
        """Counter increases between the reads (only when ``moving``)."""
        assert self.before.counters is not None and self.after.counters is not None
        return delta(self.before.counters, self.after.counters)

    @property
    def window(self) -> str:
        """"during N s", for the summaries."""
        return f"during {self.elapsed:.1f} s" if self.elapsed else "between the two reads"


def conntrack_findings(before: ConntrackSnapshot, after: ConntrackSnapshot, *,
                       race: RaceResult | None = None, stale: StaleCheck | None = None) -> list[Finding]:
    """Findings of two snapshots of one netns taken some seconds apart (``before`` may be
    ``after`` itself: then nothing can be said about moving counters): every rule of
    SNAPSHOT_RULES that fires, then (with ``stale``) one stale-dns-conntrack finding per
    dead DNAT target; nothing more when no source was readable."""
    pair = SnapshotFacts(before=before, after=after)
    unobservable = _unobservable(pair)
    if unobservable is not None:
        return [unobservable]
    out = stale_findings(after, stale) if stale is not None else []
    out += fired(SNAPSHOT_RULES, pair)
    if race is not None:
        out.extend(race_findings(race))
    return out


def _unobservable(x: SnapshotFacts) -> Finding | None:
    after = x.after
    if after.readable:
        return None
    caps = after.missing_capabilities
    return Finding(
        code="conntrack-unobservable", severity=Severity.INFO,
        summary=f"No conntrack source was readable in {x.where}",
        evidence=tuple(f"{s.name}: {s.detail}" for s in after.failed),
        remedy=("attach with `kubectl debug --profile=netadmin` (adds NET_ADMIN)" if "NET_ADMIN" in caps
                else "the kernel may lack nf_conntrack here (nothing is tracked in this netns)"),
        data={"missing_capabilities": list(caps)})


def _scope(x: SnapshotFacts) -> Finding | None:
    """Where am I: the scope of every number below."""
    ns = x.after.netns
    if ns.is_init is True:
        return None
    empty = x.after.count == 0
    summary = (f"These numbers belong to {x.where}" +
               (": its table is empty, which clears nothing" if empty else "") +
               ": kube-proxy's ClusterIP DNAT happens in the node's network namespace")
    return Finding(
        code="conntrack-scope-not-node", severity=Severity.INFO, summary=summary,
        evidence=(f"how this was decided: {ns.method}",
                  "a pod netns shows only its own flows (e.g. an in-pod REDIRECT such as Istio); "
                  "the node's table, its insert_failed/drop and the DNAT to CoreDNS backends are "
                  "not visible here",
                  f"node view: {NODE_VIEW}",
                  NODE_METRICS),
        data={"netns_inode": ns.inode, "is_init": ns.is_init})


def _table(x: SnapshotFacts) -> Finding | None:
    """Table occupancy (per-netns count against the global max: what the kernel compares)."""
    before, after = x.before, x.after
    pcts = [p for p in (before.usage_pct, after.usage_pct) if p is not None]
    if not pcts or max(pcts) < WARN_PCT:
        return None
    pct = max(pcts)
    ev = (f"entries {after.count} of nf_conntrack_max {after.max} ({after.usage_pct:.1f} %) in {x.where}",)
    data = {"usage_pct": round(pct, 2), "count": after.count, "max": after.max}
    if pct >= CRIT_PCT:
        return Finding(code="conntrack-table-full", severity=Severity.CRITICAL,
                       summary=f"Conntrack table at {pct:.0f} % of nf_conntrack_max: new flows "
                       "(DNS first) are being or will be dropped", evidence=ev, remedy=REMEDY_TABLE,
                       verdict=Verdict.CONNTRACK, data=data)
    return Finding(code="conntrack-table-pressure", severity=Severity.WARNING,
                   summary=f"Conntrack table at {pct:.0f} % of nf_conntrack_max", evidence=ev, remedy=REMEDY_TABLE,
                   verdict=Verdict.CONNTRACK, data=data)


def _insert_failed(x: SnapshotFacts) -> Finding | None:
    if not x.moving:
        return None
    d = x.delta
    if not (d.get("insert_failed") or (d.get("drop") and not d.get("early_drop"))):
        return None
    assert x.after.counters is not None
    totals = x.after.counters.total
    chain = d.get("chain_toolong", 0)
    cause = ("hash chains too long (chain_toolong moving)" if chain and chain >= d.get("insert_failed", 0)
             else "the insert race of parallel UDP queries (A+AAAA from one socket), or a full table")
    return Finding(
        code="conntrack-insert-failed-moving", severity=Severity.CRITICAL,
        summary=f"Conntrack dropping packets {x.window}: {_fmt_delta(d, ('insert_failed', 'drop', 'chain_toolong'))}",
        evidence=(f"{cause}", f"source {x.after.counters.source}; totals now: insert_failed "
         f"{totals.get('insert_failed', 0)}, drop {totals.get('drop', 0)}", f"in {x.where}"),
        remedy=REMEDY_RACE, verdict=Verdict.CONNTRACK, data={"delta": d})


def _early_drop(x: SnapshotFacts) -> Finding | None:
    if not x.moving or not x.delta.get("early_drop"):
        return None
    d = x.delta
    assert x.after.counters is not None
    return Finding(
        code="conntrack-early-drop-moving", severity=Severity.WARNING,
        summary=f"Conntrack evicting entries to make room {x.window}: early_drop +{d['early_drop']}"
        + (f", drop +{d['drop']}" if d.get("drop") else ""),
        evidence=(f"table pressure: unassured entries (one-shot DNS flows first) are evicted; "
         f"source {x.after.counters.source}", f"in {x.where}"),
        remedy=REMEDY_TABLE, verdict=Verdict.CONNTRACK, data={"delta": d})


def _clash_resolved(x: SnapshotFacts) -> Finding | None:
    if not x.moving:
        return None
    d = x.delta
    if not d.get("clash_resolve") or d.get("insert_failed"):
        return None
    assert x.after.counters is not None
    return Finding(
        code="conntrack-clash-resolved", severity=Severity.INFO,
        summary=f"Insert clashes happen and the kernel resolved them {x.window}: clash_resolve "
        f"+{d['clash_resolve']}",
        evidence=("parallel A/AAAA queries race here; this kernel resolves the clash without a drop",
         f"source {x.after.counters.source}; in {x.where}"),
        data={"delta": d})


def _old_totals(x: SnapshotFacts) -> Finding | None:
    if not x.moving:
        return None
    assert x.after.counters is not None
    d, totals = x.delta, x.after.counters.total
    quiet = [n for n in ("insert_failed", "drop", "early_drop") if totals.get(n) and not d.get(n)]
    if not quiet:
        return None
    return Finding(
        code="conntrack-old-totals", severity=Severity.INFO,
        summary="Drop counters are non-zero since boot but did not move " + x.window + ": "
        + ", ".join(f"{n}={totals[n]}" for n in quiet),
        evidence=("a large old total is history, not evidence of the current incident",),
        data={"totals": {n: totals[n] for n in quiet}})


def _dns_flows(x: SnapshotFacts) -> Finding | None:
    return _entry_findings(x.after) if x.after.entries is not None else None


def _kernel_fixes(x: SnapshotFacts) -> Finding | None:
    after = x.after
    missing = after.kernel.missing
    if not missing:
        return None
    return Finding(
        code="conntrack-kernel-race-fixes", severity=Severity.INFO,
        summary=f"Kernel {after.kernel.release} predates {len(missing)} conntrack race fix(es) "
        "(by upstream version; distributions backport)",
        evidence=tuple(f"{f.commit} ({f.since}): {f.what}" for f in missing),
        remedy="a kernel >= 5.7 (clash insertion) with NodeLocal DNSCache avoids the race")


# The snapshot rules; every one that fires is reported, highest priority first (the order a
# reader should see them: the scope frames every number, the kernel's fixes come last).
# Adding one: a function above, a row here, a test in tests/unit/test_conntrack_findings.py.
SNAPSHOT_RULES: tuple[RuleRow[SnapshotFacts], ...] = (
    RuleRow(priority=80, rule=_scope),
    RuleRow(priority=70, rule=_table),
    RuleRow(priority=60, rule=_insert_failed),
    RuleRow(priority=50, rule=_early_drop),
    RuleRow(priority=40, rule=_clash_resolved),
    RuleRow(priority=30, rule=_old_totals),
    RuleRow(priority=20, rule=_dns_flows),
    RuleRow(priority=10, rule=_kernel_fixes),
)


def _entry_findings(snap: ConntrackSnapshot) -> Finding | None:
    """Unreplied DNS flows: collected by one backend, or spread."""
    from toolkit.conntrack.entries import group_by_backend

    udp = [e for e in snap.entries or () if e.proto is FlowProto.UDP]
    unreplied = [e for e in udp if e.unreplied]
    if len(unreplied) < UNREPLIED_MIN:
        return None
    groups = [g for g in group_by_backend(udp)]
    total_unreplied = len(unreplied)
    top = max(groups, key=lambda g: g.unreplied)
    ev = tuple(f"{g.backend}: {g.unreplied} unreplied of {g.entries} UDP DNS entries"
               + (f" (via {', '.join(g.services)})" if g.services else "") for g in groups[:8])
    if len(groups) >= 2 and top.unreplied >= BACKEND_SHARE * total_unreplied and \
            top.unreplied_ratio > 2 * max((g.unreplied_ratio for g in groups if g is not top), default=0.0):
        return Finding(
            code="conntrack-dns-backend-unreplied", severity=Severity.WARNING,
            summary=f"DNS backend {top.backend} collects {top.unreplied} of {total_unreplied} unreplied DNS "
            "flows: queries DNATed to it get no answer",
            evidence=ev, remedy="Check that backend (CoreDNS pod health, stale Service endpoint, NetworkPolicy); "
                "remove it from the endpoints until it answers.",
            verdict=Verdict.DNS_UNAVAILABLE, data={"backend": top.backend, "unreplied": top.unreplied,
                                      "unreplied_total": total_unreplied})
    return Finding(
        code="conntrack-dns-unreplied", severity=Severity.WARNING,
        summary=f"{total_unreplied} of {len(udp)} UDP DNS flows in this table never saw a reply",
        evidence=ev, remedy="Run `podtriage conntrack race-test <DNS address>` to tell a race from a silent server.",
        verdict=None, data={"unreplied": total_unreplied, "udp_entries": len(udp)})


def stale_findings(snap: ConntrackSnapshot, check: StaleCheck) -> list[Finding]:
    """One finding per dead DNAT target (every rule of STALE_RULES, per group); when the live
    endpoints are unknown and DNATed DNS flows exist, one note that they were not judged."""
    from toolkit.conntrack.stale import stale_groups

    if snap.entries is None:
        return []
    if check.live is None:
        if not any(e.dnat_target for e in snap.entries):
            return []
        return [Finding(code="dns-endpoints-unknown", severity=Severity.INFO, summary=check.how,
                        remedy="give --dns-endpoints IP[,IP...] (kubectl get endpointslices -n kube-system "
                        "-l kubernetes.io/service-name=kube-dns), or run on the node where kube-proxy's "
                        "rules are readable")]
    groups = stale_groups(snap.entries, check.live, port=snap.port, sockets=check.sockets,
                          proxy_rules=check.proxy_rules)
    return [f for g in groups for f in fired(STALE_RULES, g)]


def _stale_evidence(g: StaleGroup, data: dict[str, Any]) -> list[str]:  # Any: the JSON data
    ports, timeouts, ages = data["source_ports"], data["timeouts"], data["ages"]
    ev = [f"live endpoints ({g.live.source}): {', '.join(g.live.addresses) or 'none'}",
          f"{len(g.entries)} entries ({'/'.join(g.protos)}) via {', '.join(g.services)}, source ports "
          + " ".join(str(p) for p in ports[:12]) + (" ..." if len(ports) > 12 else ""),
          "seconds left: " + " ".join(str(t) for t in timeouts[:12]),
          ("ages (s): " + " ".join(str(a) for a in ages[:12])) if ages is not None
          else "ages unknown (net.netfilter.nf_conntrack_timestamp=0 when the entries were made)"]
    if g.owners:
        ev.append("sockets owned by " + ", ".join(f"{o.process}[{o.pid}]" for o in g.owners)
                  + ": a long-lived socket keeps refreshing its entry")
    if g.proxy_lagging and g.proxy_rules is not None:
        ev.append(f"kube-proxy's rules ({g.proxy_rules.source}) still DNAT to {g.dead_target}: kube-proxy is "
                  "down or lagging, and new flows go to the dead target too")
    return ev


def _stale_dns_conntrack(g: StaleGroup) -> Finding | None:
    """Flows still DNATed to a backend that is not a live endpoint of the DNS Service."""
    from toolkit.conntrack.stale import group_data

    if not g.entries:
        return None
    data = group_data(g)
    first = ("First bring kube-proxy back (its rules still send new flows to the dead target; its first "
             "sync also deletes the stale UDP entries). Then, on" if g.proxy_lagging else "On")
    # The entries are in the table now (timeout left) and the endpoints say the target is gone.
    confirmed = ["endpoints"] + (["conntrack"] if any(t > 0 for t in data["timeouts"]) else [])
    return Finding(
        code="stale-dns-conntrack", severity=Severity.CRITICAL,
        summary=f"{len(g.entries)} DNS conntrack entries still send {', '.join(g.services)} to "
        f"{g.dead_target}:{g.port}, which is no longer an endpoint of the DNS Service: lookups through "
        "them time out",
        evidence=tuple(_stale_evidence(g, data)),
        remedy=f"{first} the node (its network namespace), delete only these entries: `{g.remedy_command}` "
        "(never flush the table); new flows then go to a live endpoint. kube-proxy deletes the UDP "
        "entries of removed endpoints itself: keep it running through CoreDNS rollouts.",
        verdict=Verdict.DNS_UNAVAILABLE,
        data={**data, "kube_proxy_lagging": g.proxy_lagging, "confirmed_by": confirmed})


# Per dead DNAT target (StaleGroup): every rule that fires is reported. Adding one: a
# function above, a row here, a test in tests/unit/test_conntrack_stale.py.
STALE_RULES: tuple[RuleRow[StaleGroup], ...] = (
    RuleRow(priority=10, rule=_stale_dns_conntrack),
)


def _lossy(m: ModeResult) -> bool:
    return m.lost >= 2 and m.loss_rate >= 0.01


@dataclass(frozen=True, kw_only=True)
class RaceFacts:
    """A race test's modes, as the race rules see them."""

    res: RaceResult
    par: ModeResult
    reo: ModeResult | None
    tcp: ModeResult | None

    @property
    def ev(self) -> tuple[str, ...]:
        """Every mode's line, as evidence."""
        return tuple(m.describe() for m in self.res.modes)

    @property
    def target(self) -> str:
        """"address:port" of the DNS server tested."""
        return f"{self.res.target}:{self.res.port}"

    @property
    def par_only(self) -> bool:
        """Losses only when A and AAAA leave one socket together."""
        par, reo, tcp = self.par, self.reo, self.tcp
        return _lossy(par) and (reo is None or _rate(par) > 3 * _rate(reo) + 0.005) and \
            (tcp is None or _rate(par) > 3 * _rate(tcp) + 0.005)


def _rate(m: ModeResult | None) -> float:
    return m.loss_rate if m is not None and m.queries else 0.0


def race_findings(res: RaceResult) -> list[Finding]:
    """The highest-priority loss pattern of RACE_PATTERNS that matches (the last one always
    does), then the notes of RACE_NOTES."""
    modes = {m.mode: m for m in res.modes if m.queries}  # a mode that sent nothing proves nothing
    par, reo, tcp = modes.get(RaceMode.PARALLEL), modes.get(RaceMode.REOPEN), modes.get(RaceMode.TCP)
    if par is None or (reo is None and tcp is None):
        # Nothing to compare is no evidence of health: indeterminate, never "0 sent, ok".
        return [Finding(code="race-test-incomplete", severity=Severity.WARNING,
                        summary=f"The race test against {res.target}:{res.port} could not compare modes: "
                        + ", ".join(f"{m.mode} sent {m.queries}" for m in res.modes)
                        + " (deadline too short for --count?)", evidence=tuple(m.describe() for m in res.modes),
                        remedy="Rerun with a larger --deadline or a smaller --count: the parallel mode "
                        "and at least one of reopen/tcp must each send queries to settle it.",
                        verdict=Verdict.INDETERMINATE,
                        data={"sent": {m.mode: m.queries for m in res.modes}})]
    x = RaceFacts(res=res, par=par, reo=reo, tcp=tcp)
    pattern = first_fired(RACE_PATTERNS, x)
    return ([pattern] if pattern is not None else []) + fired(RACE_NOTES, x)


def _race_parallel(x: RaceFacts) -> Finding | None:
    if not x.par_only:
        return None
    par, reo, tcp = x.par, x.reo, x.tcp
    moved = par.counters_delta or {}
    extra: tuple[str, ...] = ()
    if moved.get("insert_failed") or moved.get("drop"):
        extra = (f"conntrack here moved during the parallel mode: "
                 f"{_fmt_delta(dict(moved), ('insert_failed', 'drop', 'clash_resolve'))}",)
    return Finding(
        code="race-parallel-loss", severity=Severity.CRITICAL,
        summary=f"Losses only when A and AAAA leave one socket together: {par.lost} of {par.queries} "
        f"queries lost ({100 * _rate(par):.1f} %), {par.stalled} of {par.lookups} lookups would "
        f"stall for the resolver timeout; fresh sockets {100 * _rate(reo):.1f} %, TCP {100 * _rate(tcp):.1f} %",
        evidence=x.ev + extra + ("a conntrack/NAT race (or a middlebox keyed on the 5-tuple) on the path to "
                        f"{x.target}",),
        remedy=REMEDY_RACE, verdict=Verdict.CONNTRACK,
        data={"target": x.res.target, "loss_rates": {m.mode: round(m.loss_rate, 4) for m in x.res.modes}})


def _race_udp(x: RaceFacts) -> Finding | None:
    if not (_lossy(x.par) and x.reo is not None and _lossy(x.reo) and (x.tcp is None or not _lossy(x.tcp))):
        return None
    return Finding(
        code="race-udp-loss", severity=Severity.WARNING,
        summary=f"UDP queries to {x.target} are lost whatever the socket ({100 * _rate(x.par):.1f} % parallel, "
        f"{100 * _rate(x.reo):.1f} % fresh sockets), TCP is clean",
        evidence=x.ev, remedy="UDP loss on the path or at the server (not the parallel-query race): check the "
              "server's load and the path; `use-vc` (TCP) avoids it meanwhile.",
        verdict=Verdict.DNS_UNAVAILABLE, data={"target": x.res.target})


def _race_all(x: RaceFacts) -> Finding | None:
    if not (_lossy(x.par) and (x.tcp is None or _lossy(x.tcp))):
        return None
    return Finding(
        code="race-all-loss", severity=Severity.CRITICAL,
        summary=f"Queries to {x.target} are lost in every mode: the server or the path is failing, "
        "not a race", evidence=x.ev, remedy="Check the DNS server and its reachability (podtriage resolve / reach).",
        verdict=Verdict.DNS_UNAVAILABLE, data={"target": x.res.target})


def _race_tcp(x: RaceFacts) -> Finding | None:
    tcp = x.tcp
    if tcp is None or not _lossy(tcp) or _lossy(x.par):
        return None
    return Finding(
        code="race-tcp-loss", severity=Severity.WARNING,
        summary=f"TCP lookups to {x.target} fail ({tcp.lost} of {tcp.queries}) while UDP is clean: TCP 53 "
        "is blocked or refused on the path", evidence=x.ev,
        remedy="Allow TCP 53 end to end (truncated answers need it; NodeLocal force_tcp uses it).",
        verdict=Verdict.DNS_UNAVAILABLE, data={"target": x.res.target})


def _race_none(x: RaceFacts) -> Finding | None:
    return Finding(
        code="race-no-loss", severity=Severity.INFO,
        summary=f"No loss pattern against {x.target}: " + "; ".join(
            f"{m.mode} {m.lost}/{m.queries} lost" for m in x.res.modes), evidence=x.ev)


def _race_musl(x: RaceFacts) -> Finding | None:
    musl = [p for p in x.res.processes if p.libc is Libc.MUSL]
    if not musl:
        return None
    return Finding(
        code="race-musl-process", severity=Severity.WARNING if x.par_only else Severity.INFO,
        summary="Processes here link musl, which ignores single-request-reopen and use-vc and always "
        "sends A and AAAA in parallel: " + ", ".join(f"{p.name}[{p.pid}]" for p in musl[:8]),
        evidence=tuple(f"pid {p.pid} {p.name}: {p.cmdline[:120]}" for p in musl[:8]),
        remedy="For musl images only NodeLocal DNSCache, a fixed kernel, or a glibc-based image help.",
        verdict=None, data={"pids": [p.pid for p in musl]})


# Loss patterns: the highest-priority one that matches is the finding (_race_none always
# matches). Adding one: a function above, a row here, a test in
# tests/unit/test_conntrack_findings.py.
RACE_PATTERNS: tuple[RuleRow[RaceFacts], ...] = (
    RuleRow(priority=50, rule=_race_parallel),
    RuleRow(priority=40, rule=_race_udp),
    RuleRow(priority=30, rule=_race_all),
    RuleRow(priority=20, rule=_race_tcp),
    RuleRow(priority=10, rule=_race_none),
)
# Notes beside the pattern: every one that fires.
RACE_NOTES: tuple[RuleRow[RaceFacts], ...] = (
    RuleRow(priority=10, rule=_race_musl),
)
