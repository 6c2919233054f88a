"""Snapshots and race results -> the Report the CLI renders. Pure functions."""

from __future__ import annotations

from typing import Any

from toolkit.conntrack.entries import BackendGroup, group_by_backend
from toolkit.conntrack.findings import NODE_METRICS, NODE_VIEW, conntrack_findings, race_findings
from toolkit.conntrack.race import RaceResult
from toolkit.conntrack.snapshot import ConntrackSnapshot, Source
from toolkit.conntrack.stale import StaleCheck
from toolkit.conntrack.stats import COUNTERS, CounterSource, delta
from toolkit.errors import CannotObserve, MissingCapability
from toolkit.model import Finding, Report, Severity, Table, derive_verdict
from toolkit.sysinfo.procs import Libc

MAX_ROWS = 200
TIMEOUT_SYSCTLS = (("nf_conntrack_udp_timeout", "UDP timeout (s)"),
                   ("nf_conntrack_udp_timeout_stream", "UDP stream timeout (s)"),
                   ("nf_conntrack_tcp_timeout_established", "TCP established timeout (s)"),
                   ("nf_conntrack_tcp_timeout_syn_sent", "TCP SYN_SENT timeout (s)"),
                   ("nf_conntrack_tcp_timeout_time_wait", "TCP TIME_WAIT timeout (s)"),
                   ("nf_conntrack_buckets", "hash buckets"),
                   ("nf_conntrack_acct", "accounting (nf_conntrack_acct)"))


def ensure_observable(snap: ConntrackSnapshot) -> None:
    """Raise (exit 3) when not a single source answered; say which capability would help."""
    if snap.readable:
        return
    reasons = "; ".join(f"{s.name}: {s.detail}" for s in snap.failed)
    if "NET_ADMIN" in snap.missing_capabilities:
        exc = MissingCapability("NET_ADMIN", "reading conntrack through ctnetlink")
        exc.message += f" (and no procfs source is available: {reasons})"
        raise exc
    raise CannotObserve(f"no conntrack source is readable in {snap.netns.label}: {reasons}",
                        hint="nf_conntrack may not be loaded (nothing is tracked here); on the node "
                             f"try: {NODE_VIEW}")


def where_notes(snap: ConntrackSnapshot) -> list[str]:
    """Which netns the numbers belong to, and where the node's view is."""
    ns = snap.netns
    notes = [f"network namespace: {ns.label}; decided by: {ns.method}"]
    if ns.is_init is not True:
        notes.append("kube-proxy's ClusterIP DNAT and the node's conntrack table live in the node's "
                     "namespace, not here: an empty or quiet table here clears nothing")
        notes.append(f"node view: {NODE_VIEW}")
        notes.append(f"or scrape {NODE_METRICS}")
    return notes


def lost_notes(snap: ConntrackSnapshot) -> list[str]:
    """What could not be read, and which sources the numbers came from."""
    notes = []
    if not snap.net_admin:
        lost = ["ctnetlink (per-CPU stats of the kernel's own API, and the entry dump)"]
        notes.append("without NET_ADMIN: " + ", ".join(lost) + " not used; attach with "
                     "`kubectl debug --profile=netadmin` for the full view")
    for s in snap.failed:
        if s.missing_capability or s.name is Source.CTNETLINK:
            continue
        notes.append(f"source unavailable: {s.name}: {s.detail}")
    if snap.counters is not None:
        notes.append(f"counters from {snap.counters.source}"
                     + (" (/proc/net/stat/nf_conntrack)" if snap.counters.source is CounterSource.PROCFS else ""))
    if snap.entries_source:
        notes.append(f"entries from {snap.entries_source}")
    if snap.entries_truncated:
        notes.append("entry scan truncated (size or deadline bound): counts are partial")
    return notes


def counters_report(before: ConntrackSnapshot, after: ConntrackSnapshot, *, interval_s: float,
                    asked_interval_s: float | None = None, stale: StaleCheck | None = None) -> Report:
    """The Report of `podtriage conntrack`: two snapshots of one netns ``interval_s`` apart
    (``before`` may be ``after`` itself: one sample, no deltas); with ``stale``, the DNS flows
    DNATed to dead endpoints."""
    findings = conntrack_findings(before, after, stale=stale)
    # Outside the node's netns nothing wrong here still means `ok` (exit 0): the
    # conntrack-scope-not-node finding says what this namespace cannot show.
    verdict = derive_verdict(findings)
    d = delta(before.counters, after.counters) if before.counters and after.counters and before is not after else {}
    backends = group_by_backend(after.entries) if after.entries is not None else ()
    data = {
        "netns": after.netns,
        "interval_s": round(interval_s, 3),
        "counters_source": after.counters_source,
        "counters": ({n: {"total": after.counters.total[n], "delta": d.get(n) if d else None}
                      for n in after.counters.available} if after.counters else None),
        "per_cpu": after.counters.per_cpu if after.counters else None,
        "count": after.count, "max": after.max, "usage_pct": after.usage_pct,
        "sysctls": after.sysctls,
        "kernel": after.kernel,
        "entries_source": after.entries_source,
        "dns_entries": after.entries,
        "dns_backends": backends,
        "sources": after.sources,
        "net_admin": after.net_admin,
    }
    notes = tuple(where_notes(after) + lost_notes(after) + ([stale.how] if stale is not None else []))
    if stale is not None and stale.live is not None:
        data["dns_live_endpoints"] = {"addresses": list(stale.live.addresses), "source": stale.live.source.value,
                                      "services": list(stale.live.services)}
    if before is after:
        notes += ("only one sample: deltas unknown",)
    elif asked_interval_s is not None and interval_s + 0.05 < asked_interval_s:
        notes += (f"the deadline left {interval_s:.1f} s of the {asked_interval_s:g} s --interval: "
                  "a counter that did not move in so short a time proves little",)
    events = tuple({"event": "dns_flow", **_j(e)} for e in (after.entries or ()))
    stale_rows = tuple((str(f.data["dead_target"]), ", ".join(f.data["services"]), str(f.data["entries"]),
                        "/".join(f.data["protos"]),
                        ", ".join(f"{o['process']}[{o['pid']}]" for o in f.data["owners"]) or "-",
                        str(f.data["remedy_command"])) for f in findings if f.code == "stale-dns-conntrack")
    tables = _counters_tables(after, d, backends, interval_s)
    if stale_rows:
        tables = (Table(title="Stale DNS conntrack (DNAT target not a live endpoint)",
                        columns=("dead target", "asked as", "entries", "protos", "owners", "remedy"),
                        rows=stale_rows),) + tables
    return Report(command="conntrack", verdict=verdict, findings=tuple(findings), data=data,
                  tables=tables, subject=f"net:[{after.netns.inode}]",
                  notes=notes, events=events)


def _counters_tables(after: ConntrackSnapshot, d: dict[str, int], backends: tuple[BackendGroup, ...],
                     interval_s: float) -> tuple[Table, ...]:
    tables = []
    if after.counters is not None:
        tot = after.counters.total
        rows = tuple((n, str(tot[n]), (f"+{d[n]}" if d.get(n) else "0") if d else "-")
                     for n in COUNTERS if n in tot)
        tables.append(Table(title=f"Counters of this netns ({after.counters.source}, "
                                  f"{len(after.counters.per_cpu)} CPUs summed; delta over {interval_s:.1f} s)",
                            columns=("counter", "total", "delta"), rows=rows))
    trow = [("entries", "" if after.count is None else str(after.count)),
            ("nf_conntrack_max", "" if after.max is None else str(after.max)),
            ("usage", "" if after.usage_pct is None else f"{after.usage_pct:.2f} %")]
    trow += [(label, str(after.sysctls[k])) for k, label in TIMEOUT_SYSCTLS if k in after.sysctls]
    tables.append(Table(title="Table", columns=("item", "value"), rows=tuple(trow)))
    k = after.kernel
    tables.append(Table(title=f"Kernel {k.release}: conntrack race fixes (by upstream version)",
                        columns=("commit", "upstream since", "carried", "what"),
                        rows=tuple((f.commit, f.since, {True: "yes", False: "no", None: "unsure"}[f.present],
                                    f.what) for f in k.fixes)))
    if after.entries is not None:
        flows = tuple((e.proto, e.original, e.reply, e.dnat_target or "-", e.state or "-",
                       "UNREPLIED" if e.unreplied else ",".join(s for s in e.status if s != "SEEN_REPLY"),
                       "" if e.timeout_s is None else str(e.timeout_s))
                      for e in after.entries[:MAX_ROWS])
        tables.append(Table(title=f"DNS flows (port {after.port}; {len(after.entries)} of "
                                  f"{after.entries_scanned} entries)",
                            columns=("proto", "original", "reply", "DNAT target", "state", "flags", "timeout s"),
                            rows=flows))
        tables.append(Table(title="DNS flows by backend",
                            columns=("backend", "asked as", "entries", "unreplied", "udp", "tcp"),
                            rows=tuple((g.backend, ", ".join(g.services) or "-", str(g.entries), str(g.unreplied),
                                        str(g.udp), str(g.tcp)) for g in backends)))
    tables.append(Table(title="Sources", columns=("source", "ok", "detail"),
                        rows=tuple((s.name, "yes" if s.ok else "no", s.detail) for s in after.sources)))
    return tuple(tables)


def _j(x: object) -> dict[str, Any]:
    """A record as the JSON object of an ndjson event."""
    from toolkit.model import to_jsonable

    out: dict[str, Any] = to_jsonable(x)
    return out


def race_report(res: RaceResult, before: ConntrackSnapshot | None, after: ConntrackSnapshot | None) -> Report:
    """The Report of `podtriage conntrack race-test`: the loss pattern, each mode's numbers,
    the libc of the visible processes, and the conntrack counters around the test."""
    findings = race_findings(res)
    if after is not None and after.netns.is_init is not True:
        findings.append(Finding(
            code="conntrack-scope-not-node", severity=Severity.INFO,
            summary=f"The conntrack counters read around the test belong to {after.netns.label}: a race in "
            "the node's DNAT does not move them",
            evidence=(f"node view: {NODE_VIEW}", NODE_METRICS)))
    verdict = derive_verdict(findings)
    rows = tuple((m.mode, str(m.lookups), str(m.queries), str(m.lost), f"{100 * m.loss_rate:.1f}",
                  str(m.stalled), _ms(m.latency_ms_p50), _ms(m.latency_ms_p99), _ms(m.latency_ms_max),
                  ",".join(f"{k}={v}" for k, v in m.errors.items()) or "-",
                  " ".join(f"{k}+{v}" for k, v in (m.counters_delta or {}).items() if v) or
                  ("0" if m.counters_delta is not None else "n/a"),
                  str(m.not_run))
                 for m in res.modes)
    tables = [Table(title=f"Race test: {res.count} lookups (A+AAAA) of {res.name} to {res.target}:{res.port} "
                          f"per mode, per-query timeout {res.timeout_s:g} s",
                    columns=("mode", "lookups", "queries", "lost", "loss %", "stalled", "p50 ms", "p99 ms", "max ms",
                             "errors", "conntrack moved", "not run"), rows=rows)]
    musl_glibc = [p for p in res.processes if p.libc in (Libc.MUSL, Libc.GLIBC)]
    if musl_glibc:
        tables.append(Table(title="Visible processes and their libc resolver", columns=("pid", "name", "libc"),
                            rows=tuple((str(p.pid), p.name, p.libc) for p in musl_glibc[:40])))
    notes = ["parallel = A+AAAA from one UDP socket (glibc/musl default); reopen = fresh socket per "
             "query (single-request-reopen); tcp = use-vc",
             "a lost query costs the application resolv.conf's `timeout` (5 s by default): that is the stall"]
    if res.counters_source:
        notes.append(f"conntrack counters from {res.counters_source}")
    if after is not None:
        notes += where_notes(after) + lost_notes(after)
    data = {"target": res.target, "port": res.port, "name": res.name, "count": res.count,
            "timeout_s": res.timeout_s, "modes": res.modes, "processes": res.processes,
            "netns": after.netns if after else None,
            "counters_delta": (delta(before.counters, after.counters)
                               if before and after and before.counters and after.counters else None)}
    events = tuple({"event": "race_mode", **_j(m)} for m in res.modes)
    return Report(command="conntrack race-test", verdict=verdict, findings=tuple(findings), data=data,
                  tables=tuple(tables), subject=f"{res.target}:{res.port}", notes=tuple(notes), events=events)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
