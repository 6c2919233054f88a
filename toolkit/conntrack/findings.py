"""Pure rules: conntrack snapshots (and a race test) -> Findings. No I/O here.

A counter that moves between two snapshots is evidence; a large total since boot is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolkit.conntrack.stats import delta
from toolkit.model import Finding, Severity, Verdict

if TYPE_CHECKING:
    from toolkit.conntrack.race import ModeResult, RaceResult
    from toolkit.conntrack.snapshot import ConntrackSnapshot

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


def _fmt_delta(d: dict[str, int], names) -> str:
    return ", ".join(f"{n} +{d[n]}" for n in names if d.get(n))


def conntrack_findings(before: "ConntrackSnapshot", after: "ConntrackSnapshot", *,
                       race: "RaceResult | None" = None) -> list[Finding]:
    """Findings of two snapshots of one netns taken some seconds apart (``before`` may be
    ``after`` itself: then nothing can be said about moving counters)."""
    out: list[Finding] = []
    ns = after.netns
    where = ns.label
    elapsed = max(0.0, after._monotonic - before._monotonic)

    if not after.readable:
        caps = after.missing_capabilities
        out.append(Finding(
            "conntrack-unobservable", Severity.INFO,
            f"No conntrack source was readable in {where}",
            evidence=tuple(f"{s.name}: {s.detail}" for s in after.failed),
            remedy=("attach with `kubectl debug --profile=netadmin` (adds NET_ADMIN)" if "NET_ADMIN" in caps
                    else "the kernel may lack nf_conntrack here (nothing is tracked in this netns)"),
            data={"missing_capabilities": list(caps)}))
        return out

    # Where am I: the scope of every number below.
    if ns.is_init is not True:
        empty = after.count == 0
        summary = (f"These numbers belong to {where}" +
                   (": its table is empty, which clears nothing" if empty else "") +
                   ": kube-proxy's ClusterIP DNAT happens in the node's network namespace")
        out.append(Finding(
            "conntrack-scope-not-node", Severity.INFO, summary,
            evidence=(f"how this was decided: {ns.method}",
                      "a pod netns shows only its own flows (e.g. an in-pod REDIRECT such as Istio); "
                      "the node's table, its insert_failed/drop and the DNAT to CoreDNS backends are "
                      "not visible here",
                      f"node view: {NODE_VIEW}",
                      NODE_METRICS),
            data={"netns_inode": ns.inode, "is_init": ns.is_init}))

    # Table occupancy (per-netns count against the global max: what the kernel compares).
    pcts = [p for p in (before.usage_pct, after.usage_pct) if p is not None]
    if pcts:
        pct = max(pcts)
        ev = (f"entries {after.count} of nf_conntrack_max {after.max} ({after.usage_pct:.1f} %) in {where}",)
        if pct >= CRIT_PCT:
            out.append(Finding("conntrack-table-full", Severity.CRITICAL,
                               f"Conntrack table at {pct:.0f} % of nf_conntrack_max: new flows "
                               "(DNS first) are being or will be dropped", ev, REMEDY_TABLE,
                               Verdict.CONNTRACK, {"usage_pct": round(pct, 2), "count": after.count,
                                                   "max": after.max}))
        elif pct >= WARN_PCT:
            out.append(Finding("conntrack-table-pressure", Severity.WARNING,
                               f"Conntrack table at {pct:.0f} % of nf_conntrack_max", ev, REMEDY_TABLE,
                               Verdict.CONNTRACK, {"usage_pct": round(pct, 2), "count": after.count,
                                                   "max": after.max}))

    # Moving counters.
    if before.counters is not None and after.counters is not None and before is not after:
        d = delta(before.counters, after.counters)
        totals = after.counters.total
        window = f"during {elapsed:.1f} s" if elapsed else "between the two reads"
        src = f"source {after.counters.source}"
        if d.get("insert_failed") or (d.get("drop") and not d.get("early_drop")):
            chain = d.get("chain_toolong", 0)
            cause = ("hash chains too long (chain_toolong moving)" if chain and chain >= d.get("insert_failed", 0)
                     else "the insert race of parallel UDP queries (A+AAAA from one socket), or a full table")
            out.append(Finding(
                "conntrack-insert-failed-moving", Severity.CRITICAL,
                f"Conntrack dropping packets {window}: {_fmt_delta(d, ('insert_failed', 'drop', 'chain_toolong'))}",
                (f"{cause}", f"{src}; totals now: insert_failed {totals.get('insert_failed', 0)}, "
                 f"drop {totals.get('drop', 0)}", f"in {where}"),
                REMEDY_RACE, Verdict.CONNTRACK, {"delta": d}))
        if d.get("early_drop"):
            out.append(Finding(
                "conntrack-early-drop-moving", Severity.WARNING,
                f"Conntrack evicting entries to make room {window}: early_drop +{d['early_drop']}"
                + (f", drop +{d['drop']}" if d.get("drop") else ""),
                (f"table pressure: unassured entries (one-shot DNS flows first) are evicted; {src}",
                 f"in {where}"),
                REMEDY_TABLE, Verdict.CONNTRACK, {"delta": d}))
        if d.get("clash_resolve") and not d.get("insert_failed"):
            out.append(Finding(
                "conntrack-clash-resolved", Severity.INFO,
                f"Insert clashes happen and the kernel resolved them {window}: clash_resolve "
                f"+{d['clash_resolve']}",
                ("parallel A/AAAA queries race here; this kernel resolves the clash without a drop",
                 f"{src}; in {where}"),
                data={"delta": d}))
        quiet = [n for n in ("insert_failed", "drop", "early_drop") if totals.get(n) and not d.get(n)]
        if quiet:
            out.append(Finding(
                "conntrack-old-totals", Severity.INFO,
                "Drop counters are non-zero since boot but did not move " + window + ": "
                + ", ".join(f"{n}={totals[n]}" for n in quiet),
                ("a large old total is history, not evidence of the current incident",),
                data={"totals": {n: totals[n] for n in quiet}}))

    # DNS flows.
    if after.entries is not None:
        out.extend(_entry_findings(after))

    # Kernel race fixes.
    missing = after.kernel.missing
    if missing:
        out.append(Finding(
            "conntrack-kernel-race-fixes", Severity.INFO,
            f"Kernel {after.kernel.release} predates {len(missing)} conntrack race fix(es) "
            "(by upstream version; distributions backport)",
            tuple(f"{f.commit} ({f.since}): {f.what}" for f in missing),
            "a kernel >= 5.7 (clash insertion) with NodeLocal DNSCache avoids the race"))

    if race is not None:
        out.extend(race_findings(race))
    return out


def _entry_findings(snap: "ConntrackSnapshot") -> list[Finding]:
    from toolkit.conntrack.entries import group_by_backend

    out: list[Finding] = []
    udp = [e for e in snap.entries or () if e.proto == "udp"]
    unreplied = [e for e in udp if e.unreplied]
    if len(unreplied) < UNREPLIED_MIN:
        return out
    groups = [g for g in group_by_backend(udp)]
    total_unreplied = len(unreplied)
    top = max(groups, key=lambda g: g.unreplied)
    ev = tuple(f"{g.backend}: {g.unreplied} unreplied of {g.entries} UDP DNS entries"
               + (f" (via {', '.join(g.services)})" if g.services else "") for g in groups[:8])
    if len(groups) >= 2 and top.unreplied >= BACKEND_SHARE * total_unreplied and \
            top.unreplied_ratio > 2 * max((g.unreplied_ratio for g in groups if g is not top), default=0.0):
        out.append(Finding(
            "conntrack-dns-backend-unreplied", Severity.WARNING,
            f"DNS backend {top.backend} collects {top.unreplied} of {total_unreplied} unreplied DNS "
            "flows: queries DNATed to it get no answer",
            ev, "Check that backend (CoreDNS pod health, stale Service endpoint, NetworkPolicy); "
                "remove it from the endpoints until it answers.",
            Verdict.DNS_UNAVAILABLE, {"backend": top.backend, "unreplied": top.unreplied,
                                      "unreplied_total": total_unreplied}))
    else:
        out.append(Finding(
            "conntrack-dns-unreplied", Severity.WARNING,
            f"{total_unreplied} of {len(udp)} UDP DNS flows in this table never saw a reply",
            ev, "Run `podtriage conntrack race-test <DNS address>` to tell a race from a silent server.",
            None, {"unreplied": total_unreplied, "udp_entries": len(udp)}))
    return out


def _lossy(m: "ModeResult") -> bool:
    return m.lost >= 2 and m.loss_rate >= 0.01


def race_findings(res: "RaceResult") -> list[Finding]:
    out: list[Finding] = []
    modes = {m.mode: m for m in res.modes if m.queries}  # a mode that sent nothing proves nothing
    par, reo, tcp = modes.get("parallel"), modes.get("reopen"), modes.get("tcp")
    ev = tuple(m.describe() for m in res.modes)
    target = f"{res.target}:{res.port}"
    if par is None or (reo is None and tcp is None):
        # Nothing to compare is no evidence of health: indeterminate, never "0 sent, ok".
        out.append(Finding("race-test-incomplete", Severity.WARNING,
                           f"The race test against {target} could not compare modes: "
                           + ", ".join(f"{m.mode} sent {m.queries}" for m in res.modes)
                           + " (deadline too short for --count?)", ev,
                           "Rerun with a larger --deadline or a smaller --count: the parallel mode "
                           "and at least one of reopen/tcp must each send queries to settle it.",
                           Verdict.INDETERMINATE,
                           {"sent": {m.mode: m.queries for m in res.modes}}))
        return out

    def rate(m):
        return m.loss_rate if m is not None and m.queries else 0.0

    par_only = _lossy(par) and (reo is None or rate(par) > 3 * rate(reo) + 0.005) and \
        (tcp is None or rate(par) > 3 * rate(tcp) + 0.005)
    if par_only:
        moved = par.counters_delta or {}
        extra = ()
        if moved.get("insert_failed") or moved.get("drop"):
            extra = (f"conntrack here moved during the parallel mode: "
                     f"{_fmt_delta(dict(moved), ('insert_failed', 'drop', 'clash_resolve'))}",)
        out.append(Finding(
            "race-parallel-loss", Severity.CRITICAL,
            f"Losses only when A and AAAA leave one socket together: {par.lost} of {par.queries} "
            f"queries lost ({100 * rate(par):.1f} %), {par.stalled} of {par.lookups} lookups would "
            f"stall for the resolver timeout; fresh sockets {100 * rate(reo):.1f} %, TCP {100 * rate(tcp):.1f} %",
            ev + extra + ("a conntrack/NAT race (or a middlebox keyed on the 5-tuple) on the path to "
                          f"{target}",),
            REMEDY_RACE, Verdict.CONNTRACK,
            {"target": res.target, "loss_rates": {m.mode: round(m.loss_rate, 4) for m in res.modes}}))
    elif _lossy(par) and reo is not None and _lossy(reo) and (tcp is None or not _lossy(tcp)):
        out.append(Finding(
            "race-udp-loss", Severity.WARNING,
            f"UDP queries to {target} are lost whatever the socket ({100 * rate(par):.1f} % parallel, "
            f"{100 * rate(reo):.1f} % fresh sockets), TCP is clean",
            ev, "UDP loss on the path or at the server (not the parallel-query race): check the "
                "server's load and the path; `use-vc` (TCP) avoids it meanwhile.",
            Verdict.DNS_UNAVAILABLE, {"target": res.target}))
    elif _lossy(par) and (tcp is None or _lossy(tcp)):
        out.append(Finding(
            "race-all-loss", Severity.CRITICAL,
            f"Queries to {target} are lost in every mode: the server or the path is failing, "
            "not a race", ev, "Check the DNS server and its reachability (podtriage resolve / reach).",
            Verdict.DNS_UNAVAILABLE, {"target": res.target}))
    elif tcp is not None and _lossy(tcp) and not _lossy(par):
        out.append(Finding(
            "race-tcp-loss", Severity.WARNING,
            f"TCP lookups to {target} fail ({tcp.lost} of {tcp.queries}) while UDP is clean: TCP 53 "
            "is blocked or refused on the path", ev,
            "Allow TCP 53 end to end (truncated answers need it; NodeLocal force_tcp uses it).",
            Verdict.DNS_UNAVAILABLE, {"target": res.target}))
    else:
        out.append(Finding(
            "race-no-loss", Severity.INFO,
            f"No loss pattern against {target}: " + "; ".join(
                f"{m.mode} {m.lost}/{m.queries} lost" for m in res.modes), ev))

    musl = [p for p in res.processes if p.libc == "musl"]
    if musl:
        out.append(Finding(
            "race-musl-process", Severity.WARNING if par_only else Severity.INFO,
            "Processes here link musl, which ignores single-request-reopen and use-vc and always "
            "sends A and AAAA in parallel: " + ", ".join(f"{p.name}[{p.pid}]" for p in musl[:8]),
            tuple(f"pid {p.pid} {p.name}: {p.cmdline[:120]}" for p in musl[:8]),
            "For musl images only NodeLocal DNSCache, a fixed kernel, or a glibc-based image help.",
            None, {"pids": [p.pid for p in musl]}))
    return out
