"""What a rollout left behind, across a fleet (issue 26 item 3): the ``stale-dns-conntrack``
findings of the node (or pod) reports, grouped by the dead DNAT target they name, so that one
line says which old CoreDNS address still draws DNS traffic, on which nodes, how much and for
which processes (NodeLocal DNSCache's upstream sockets, typically).

The finding's ``data`` is issue 26's shared contract: ``dead_target``, ``port``,
``services``, ``entries``, ``protos``, ``owners`` ([{pid, process}]), ``live_endpoints``,
``remedy_command``... A document is foreign input (a file, a log, an older or newer image):
every field is read with isinstance, and a finding without a usable ``dead_target`` is
skipped. Two reports from the same node see the same table at two moments: the node's count
is the larger of them, never their sum. Pure logic, as toolkit.kube.merge.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit.model import Finding, Severity, Table, Verdict

CODE = "stale-dns-conntrack"          # the node report's finding (issue 26's contract)
FLEET_CODE = "stale-dns-target"       # the fleet's: one per dead target
MAX_OWNERS = 20                       # owners listed per node (all are counted)

# Any: a document's finding data (foreign JSON, read with isinstance).
_View = Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class NodeShare:
    """One node's stale entries to one dead target."""

    node: str
    entries: int
    owners: tuple[tuple[int | None, str], ...]      # (pid, process)

    def to_json(self) -> dict[str, object]:
        """The node in ``stale_dns_targets[].nodes``."""
        return {"node": self.node, "entries": self.entries,
                "owners": [{"pid": pid, "process": proc} for pid, proc in self.owners]}

    def describe(self) -> str:
        """``node2 14 (node-cache pid 412)``."""
        procs = sorted({proc for _, proc in self.owners if proc})
        return "%s %d%s" % (self.node, self.entries, (" (%s)" % ", ".join(procs)) if procs else "")


@dataclass(frozen=True, kw_only=True)
class StaleTarget:
    """One dead DNS backend and every node whose conntrack still steers flows to it."""

    dead_target: str
    ports: tuple[int, ...]
    services: tuple[str, ...]
    protos: tuple[str, ...]
    live_endpoints: tuple[str, ...]
    remedy_command: str
    nodes: tuple[NodeShare, ...] = field(default_factory=tuple)

    @property
    def entries_total(self) -> int:
        """Stale entries to this target over the fleet."""
        return sum(n.entries for n in self.nodes)

    def to_json(self) -> dict[str, object]:
        """One item of the merged report's ``stale_dns_targets``."""
        return {"dead_target": self.dead_target, "ports": list(self.ports),
                "services": list(self.services), "protos": list(self.protos),
                "live_endpoints": list(self.live_endpoints), "remedy_command": self.remedy_command,
                "nodes": [n.to_json() for n in self.nodes], "entries_total": self.entries_total}


def _strs(v: object) -> list[str]:
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _count(v: object) -> int | None:
    # bool is an int in Python, never a count in JSON
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _owners(v: object) -> list[tuple[int | None, str]]:
    out: list[tuple[int | None, str]] = []
    for o in v if isinstance(v, list) else []:
        if isinstance(o, dict) and isinstance(o.get("process"), str):
            pid = _count(o.get("pid"))
            if (pid, o["process"]) not in out:
                out.append((pid, o["process"]))
    return out


def _address(v: object) -> str | None:
    if not isinstance(v, str):
        return None
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return None


@dataclass
class _Acc:
    """What the reports say about one dead target, while reading them."""

    ports: set[int] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    protos: set[str] = field(default_factory=set)
    live: set[str] = field(default_factory=set)
    remedies: dict[str, str] = field(default_factory=dict)      # node -> its remedy_command
    nodes: dict[str, NodeShare] = field(default_factory=dict)

    def add(self, where: str, data: _View) -> None:
        port = _count(data.get("port"))
        if port is not None:
            self.ports.add(port)
        self.services.update(_strs(data.get("services")))
        self.protos.update(_strs(data.get("protos")))
        self.live.update(_strs(data.get("live_endpoints")))
        if isinstance(data.get("remedy_command"), str):
            self.remedies.setdefault(where, data["remedy_command"])
        entries = _count(data.get("entries")) or 0
        owners = _owners(data.get("owners"))
        seen = self.nodes.get(where)
        if seen is None or entries > seen.entries:
            merged = list(seen.owners) if seen else []
            merged += [o for o in owners if o not in merged]
            self.nodes[where] = NodeShare(node=where, entries=entries, owners=tuple(merged))

    def target(self, addr: str) -> StaleTarget:
        nodes = sorted(self.nodes.values(), key=lambda n: (-n.entries, n.node))
        # one command when every node's is the same; else each node's own (a node with only
        # TCP entries gets `-p tcp`, another with UDP ones `-p udp`)
        cmds = {self.remedies[n.node] for n in nodes if n.node in self.remedies}
        remedy = cmds.pop() if len(cmds) == 1 else "; ".join(
            "%s: %s" % (n.node, self.remedies[n.node]) for n in nodes if n.node in self.remedies)
        return StaleTarget(dead_target=addr, ports=tuple(sorted(self.ports)),
                           services=tuple(sorted(self.services)), protos=tuple(sorted(self.protos)),
                           live_endpoints=tuple(sorted(self.live)), remedy_command=remedy,
                           nodes=tuple(nodes))


def stale_targets(reports: Sequence[tuple[str, _View]]) -> list[StaleTarget]:
    """The dead targets named by ``reports`` ((where, document): where is the node, else the
    pod or origin), the most entries first."""
    acc: dict[str, _Acc] = {}
    for where, doc in reports:
        for f in doc.get("findings") or []:
            if not isinstance(f, dict) or f.get("code") != CODE or not isinstance(f.get("data"), dict):
                continue
            addr = _address(f["data"].get("dead_target"))
            if addr is not None:
                acc.setdefault(addr, _Acc()).add(where, f["data"])
    out = [a.target(addr) for addr, a in acc.items()]
    out.sort(key=lambda t: (-t.entries_total, t.dead_target))
    return out


def _line(t: StaleTarget) -> str:
    """``10.244.0.3 (no longer an endpoint of DNS Service 10.233.0.3) still draws 214 DNS
    flows on node, node2: node 200 (node-cache), node2 14 (node-cache)``."""
    of = (" of DNS Service %s" % ", ".join(t.services)) if t.services else " of the DNS Service"
    return "%s (no longer an endpoint%s) still draws %d DNS flow%s on %s: %s" % (
        t.dead_target, of, t.entries_total, "" if t.entries_total == 1 else "s",
        ", ".join(n.node for n in t.nodes), ", ".join(n.describe() for n in t.nodes))


def stale_findings(targets: Sequence[StaleTarget]) -> list[Finding]:
    """One fleet finding per dead target (critical, ``dns-unavailable``: the flows steered
    there get no answer); its ``data.nodes`` lets the merge leave those nodes' reports out
    of the unexplained groups."""
    out: list[Finding] = []
    for t in targets:
        evidence = ["%s: %d entr%s%s" % (n.node, n.entries, "y" if n.entries == 1 else "ies",
                                         ("; owners: %s" % ", ".join(
                                             "%s (pid %s)" % (proc, pid if pid is not None else "?")
                                             for pid, proc in n.owners[:MAX_OWNERS]))
                                         if n.owners else "") for n in t.nodes]
        if t.live_endpoints:
            evidence.append("live endpoints: %s" % ", ".join(t.live_endpoints))
        where = ("on each of %s" % ", ".join(n.node for n in t.nodes)) if len(t.nodes) > 1 \
            else "on %s" % t.nodes[0].node
        remedy = ("%s (kubectl podtriage node/NODE shows them again): %s" % (
            where, t.remedy_command)) if t.remedy_command else (
            "delete these conntrack entries on %s (conntrack -D filtered to %s and port 53; "
            "never a flush)" % (", ".join(n.node for n in t.nodes), t.dead_target))
        out.append(Finding(code=FLEET_CODE, severity=Severity.CRITICAL, summary=_line(t),
                           evidence=tuple(evidence), remedy=remedy, verdict=Verdict.DNS_UNAVAILABLE,
                           data={"dead_target": t.dead_target, "entries_total": t.entries_total,
                                 "nodes": [n.node for n in t.nodes]}))
    return out


def stale_table(targets: Sequence[StaleTarget]) -> Table:
    """The dead targets, one row per target and node."""
    rows = tuple((t.dead_target, ", ".join(t.services) or "-", n.node, str(n.entries),
                  ", ".join(sorted({p for _, p in n.owners})) or "-")
                 for t in targets for n in t.nodes)
    return Table(title="Stale DNS targets", columns=("dead target", "service", "node", "entries",
                                                     "owners"), rows=rows)
