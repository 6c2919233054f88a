"""Reachability probes: is an address alive, is the port open, and if not, who says so?

Public API (what `reach` and `diagnose` call)::

    from toolkit.probe import probe_addresses, reach, reach_report
    reports = probe_addresses(["192.168.50.77"], [80], Deadline(8.0))
    reports[0].state          # "up" | "port-closed" | "host-unreachable" | "filtered"
                              # | "routing" | "silent" | "unknown"
    reports[0].probes[0]      # ProbeResult(kind=ProbeKind.TCP_SYN, result=ProbeOutcome.HOST_UNREACHABLE,
                              #             reply_from="10.244.1.1", icmp_type=3, icmp_code=1, ...)

Per address: the route (toolkit.sysinfo.routes.route_to), ARP when on-link, ICMP echo, a
TCP SYN to each port, and a control probe (the gateway, or another live neighbour on the
link). With NET_RAW the probes use raw sockets and read the exact ICMP type/code and the
router that sent it; without it they fall back to connect() + IP_RECVERR, the unprivileged
ICMP datagram socket (where net.ipv4.ping_group_range allows it) and the neighbour table,
and ``AddressReport.lost`` / ``ReachResult.lost`` say what that cost. Nothing here raises
for a network outcome; only "could not observe at all" (bad input) raises.

Timing: a probe window is ~4 s, because the last router sends ICMP host-unreachable only
when its ARP gives up (~3 s). All addresses are probed concurrently; the packets that may
draw an ICMP error share a pacer that respects the routers' per-destination ICMP rate
limit (a burst, then about one a second).

Modules: ``model`` (results and their pure classification), ``packets`` (the few wire
formats), ``receive`` (the one receive loop of the raw probes, and the poll loop of the
unprivileged ones), ``tcp``/``icmp``/``arp``/``nd`` (one probe kind each, with its matcher),
``pacer`` (the routers' ICMP rate limit), ``path`` (route, source, control address),
``attempts`` (one probe with its fallback, pacing and second try), ``run`` (many addresses
under one deadline), ``verdict`` (ReachResult -> Report).
"""

from __future__ import annotations

from toolkit.probe.model import (
    ANSWERED,
    KINDS,
    RESULTS,
    STATES,
    AddressReport,
    AddressState,
    ProbeKind,
    ProbeOutcome,
    ProbeResult,
    ProbeSpec,
    ReachResult,
    ResolvedFrom,
    derive_state,
    result_from_errno,
    result_from_icmp,
)
from toolkit.probe.run import probe_addresses, reach
from toolkit.probe.verdict import reach_report

__all__ = [
    "ANSWERED", "KINDS", "RESULTS", "STATES",
    "AddressReport", "AddressState", "ProbeKind", "ProbeOutcome", "ProbeResult", "ProbeSpec", "ReachResult",
    "ResolvedFrom",
    "derive_state", "result_from_errno", "result_from_icmp",
    "probe_addresses", "reach", "reach_report",
]
