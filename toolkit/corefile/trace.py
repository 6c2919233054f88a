"""Which server block and plugin answer a name, and where the query goes next.

``trace_name`` walks one or more Corefiles the way CoreDNS routes a query: the server block
with the longest zone match on the port (and ``bind`` address) the query arrives on
(``block_match``), then the block's plugins in CoreDNS's execution order, each asked what it
does with the name (``plugins.chain``): ``rewrite`` changes the name,
``template``/``hosts``/``kubernetes``/``file``... answer for their zones unless they fall
through, ``forward``/``grpc`` send the query on. A forward target that is the listen address
of another given Corefile (``bind``, ``--service-ip``, or the CoreDNS-Service heuristic)
continues the walk there: pod -> NodeLocal -> CoreDNS -> final upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.corefile.block_match import block_file_line, listens, select_block
from toolkit.corefile.document import Corefile, ServerBlock
from toolkit.corefile.hops import Hop, NextHop, TraceResult
from toolkit.corefile.listeners import listen_map, service_port, start_index
from toolkit.corefile.names import fqdn, is_private
from toolkit.corefile.plugins.base import (
    CURRENT,
    Action,
    FileReader,
    Query,
    Semantics,
    Step,
    no_files,
)
from toolkit.corefile.plugins.chain import walk_block
from toolkit.corefile.plugins.forward import (
    ForwardSpec,
    Target,
    TargetKind,
    UpstreamTransport,
    forward_spec,
    is_stub,
)
from toolkit.corefile.roles import (
    CLUSTER_DNS_PILLARS,
    DOMAIN_PILLAR,
    Assembly,
    CorefileRole,
    RoleAssignment,
    assemble,
)

__all__ = ["MAX_HOPS", "trace_name"]

_CACHE_ROLES = (CorefileRole.NODE_CACHE, CorefileRole.NODE_CACHE_SECONDARY)

MAX_HOPS = 8


@dataclass(frozen=True, kw_only=True)
class _Arrival:
    """A query arriving at a Corefile: which, with what name, on which port and address, over
    which transport, and how it got there."""

    index: int
    name: str
    port: int
    address: str | None
    transport: UpstreamTransport
    via: str
    qtype: str


@dataclass(frozen=True)
class _Route:
    """Where a forward sends the query: the next hop and, when another given Corefile
    listens there, the upstream taken, that Corefile, and why it was taken to listen there."""

    next: NextHop
    target: Target | None = None
    index: int | None = None
    why: str = ""


@dataclass(frozen=True)
class _End:
    """How the walk ended: the words, and the upstream it ended at."""

    outcome: str
    final: NextHop | None = None
    rcode: str | None = None
    unreverted: bool = False


class _Walk:
    """One trace in progress: the Corefiles with their roles and listen addresses, and the
    hops, notes and problems found so far."""

    def __init__(self, assembly: Assembly, *, service_ip: str | None, mapped: bool,
                 semantics: Semantics, node_cache: Semantics | None = None,
                 files: FileReader = no_files) -> None:
        self.corefiles = list(assembly.corefiles)
        self.roles = [assembly.role_of(cf) for cf in self.corefiles]
        self.cluster_idx = assembly.first(CorefileRole.CLUSTER_DNS)
        self.listen = listen_map(self.corefiles, self._service(service_ip))
        self.domain = assembly.cluster_domain()
        # NodeLocal's cluster-domain block is written __PILLAR__DNS__DOMAIN__ until installed.
        self.aliases = {DOMAIN_PILLAR.lower() + ".": self.domain}
        self.mapped = mapped
        # A node cache runs node-cache's CoreDNS, the others the CoreDNS given.
        self.semantics = [node_cache if node_cache is not None and r is not None
                          and r.role in _CACHE_ROLES else semantics for r in self.roles]
        self.files = files
        self.notes: list[str] = list(assembly.notes)
        self.problems: list[str] = []
        self.hops: list[Hop] = []
        self.visited: set[tuple[int, int, str, str]] = set()
        self.unreverted = False

    def _service(self, service_ip: str | None) -> dict[str, int]:
        """--service-ip: the cluster DNS listens there (else the first Corefile that is no
        node cache, else the last one)."""
        if not service_ip:
            return {}
        target = self.cluster_idx if self.cluster_idx is not None else next(
            (i for i, r in enumerate(self.roles) if r is None or r.role not in _CACHE_ROLES),
            len(self.corefiles) - 1)
        return {service_ip: target}

    def run(self, arrival: _Arrival) -> _End:
        """Follow the query from ARRIVAL until it is answered, dead-ends or loops."""
        for _ in range(MAX_HOPS):
            step = self.hop(arrival)
            if isinstance(step, _End):
                return step
            arrival = step
        return self._problem(f"gave up after {MAX_HOPS} hops")

    def _problem(self, outcome: str, rcode: str | None = None) -> _End:
        self.problems.append(outcome)
        return _End(outcome, rcode=rcode)

    def _port(self, cf: Corefile, port: int) -> int:
        """The port the query reaches in CF (a Service's port 53 mapped to CF's only port)."""
        if self.mapped and port == 53:
            target_port = service_port(cf, port)
            if target_port is not None:
                self.notes.append(f"{cf.name} listens on port {target_port} only: taken to be the "
                                  f"target port of a Service on port 53")
                return target_port
        return port

    def hop(self, arrival: _Arrival) -> _Arrival | _End:
        """One Corefile: the block the query reaches, what its plugins do, where it goes."""
        cf = self.corefiles[arrival.index]
        port = self._port(cf, arrival.port)
        sel = select_block(cf, arrival.name, port, arrival.address, aliases=self.aliases)
        if sel is None and not listens(cf, port, arrival.address):
            return self._problem(
                f"{cf.name}: no server block listens on port {port}"
                + (f" at {arrival.address}" if arrival.address else "")
                + ": no DNS answer (ICMP port unreachable, or a timeout)")
        if sel is None:
            return self._problem(
                f"{cf.name}: no server block serves {arrival.name} on port {port}"
                + (f" at {arrival.address}" if arrival.address else "") + ": CoreDNS answers REFUSED",
                "REFUSED")
        block, zone = sel
        if zone in self.aliases.values() and any(a.zone in self.aliases for a in block.addresses):
            self.notes.append(f"{cf.name}: zone {DOMAIN_PILLAR} taken to be {self.domain} (the "
                              "install step fills it with the cluster domain)")
        # By identity: two blocks spliced from one snippet are equal but distinct blocks.
        bi = next(i for i, b in enumerate(cf.blocks) if b is block)
        key = (arrival.index, bi, arrival.name, arrival.qtype)
        if key in self.visited:
            return self._problem(f"forwarding loop: back at {cf.name} block {block.label}",
                                 "SERVFAIL")
        self.visited.add(key)
        step = walk_block(block, Query(arrival.name, arrival.qtype),
                          self.semantics[arrival.index], self.files)
        if step.unreverted:
            self.unreverted = True
            self.problems.append(f"{cf.name} block {block.label}: a continue-only rewrite leaves "
                                 f"the rewritten question {step.name} in the answer: clients drop it")
        if step.action is Action.FORWARD and step.directive is not None:
            return self._forward(arrival, cf, block, zone, port, step)
        self._record(arrival, cf, block, port, step, step.outcome, (), None)
        if step.action is Action.DEAD_END or step.rcode in ("SERVFAIL", "REFUSED") or step.may_fail:
            self.problems.append(f"{cf.name} block {block.label}: {step.outcome}")
        return _End(step.outcome, rcode=step.rcode)

    def _forward(self, arrival: _Arrival, cf: Corefile, block: ServerBlock, zone: str,
                 port: int, step: Step) -> _Arrival | _End:
        """A forward decided: where the query goes, and whether the walk continues there."""
        assert step.directive is not None
        d = step.directive
        spec = forward_spec(d)
        role = self.roles[arrival.index]
        outcome = step.outcome + ("" if spec.targets else ": no upstream given")
        route = self._route(spec, arrival, block, role)
        notes = [route.why] if route.why else []
        stub = zone != "." and is_stub(cf, block, zone, spec, role)
        if stub:
            notes.append(f"block {block.label} is a stub forward: it sends {zone} to "
                         f"{', '.join(t.label for t in spec.targets)}, not to the default "
                         "upstream of the '.' block")
        self._record(arrival, cf, block, port, step, outcome, tuple(notes), route.next, stub=stub)
        nxt = route.next
        if route.index is None or route.target is None:
            outcome += f" to {', '.join(nxt.targets) or '(none)'} over {nxt.transport}"
            if nxt.kind not in (TargetKind.IP, TargetKind.COREFILE) and nxt.note:
                outcome += f" ({nxt.note})"
            if step.conditional:
                outcome += f", unless {' or '.join(step.conditional)} knows the name"
            return _End(outcome, nxt)
        t = route.target
        return _Arrival(index=route.index, name=step.name, port=t.port if t.port else 53,
                        address=t.host if t.kind is TargetKind.IP else None,
                        transport=nxt.transport, qtype=step.qtype or arrival.qtype,
                        via=f"{d.name} {nxt.target} over {nxt.transport} from {cf.name} line {d.line}")

    def _route(self, spec: ForwardSpec, arrival: _Arrival, block: ServerBlock,
               role: RoleAssignment | None) -> _Route:
        """The first upstream another given Corefile listens on (the walk goes on there), else
        the first upstream."""
        labels = tuple(t.label for t in spec.targets)
        for t in spec.targets:
            j, why = self._listener(t, arrival.index, block, role)
            if j is not None and j != arrival.index:
                return _Route(NextHop(t.label, spec.transport(arrival.transport, t),
                                      TargetKind.COREFILE, f"served by {self.corefiles[j].name}",
                                      labels), t, j, why)
        first = spec.targets[0] if spec.targets else None
        return _Route(NextHop(first.label if first else "", spec.transport(arrival.transport, first),
                              first.kind if first else TargetKind.NONE,
                              first.note if first else "", labels))

    def _listener(self, t: Target, idx: int, block: ServerBlock,
                  role: RoleAssignment | None) -> tuple[int | None, str]:
        """The given Corefile that listens on upstream T of Corefile IDX, and why it is taken
        to when that is a guess (a node cache's cluster DNS)."""
        j = self.listen.get(t.host) if t.kind is TargetKind.IP else None
        cluster = self.cluster_idx
        if j is not None or role is None or role.role not in _CACHE_ROLES or cluster is None \
                or cluster == idx:
            return j, ""
        if t.raw in role.cluster_dns_targets or t.raw.upper() in CLUSTER_DNS_PILLARS:
            # A node cache sends the cluster zones to the cluster DNS Service
            # (nodelocaldns.yaml: `forward . __PILLAR__CLUSTER__DNS__`).
            return cluster, (f"{t.raw} is the cluster DNS of node cache "
                             f"{self.corefiles[idx].name}: continued in "
                             f"{self.corefiles[cluster].name}")
        if t.kind is TargetKind.IP and is_private(t.host) and block.zones != (".",):
            return cluster, (f"{t.host} taken to be the address of {self.corefiles[cluster].name} "
                             "(the CoreDNS Service); pass --service-ip to say so")
        return None, ""

    def _record(self, arrival: _Arrival, cf: Corefile, block: ServerBlock, port: int, step: Step,
                outcome: str, notes: tuple[str, ...], nxt: NextHop | None, *,
                stub: bool = False) -> None:
        role = self.roles[arrival.index]
        d = step.directive
        self.hops.append(Hop(
            corefile=cf.name, block=block.label, line=block.line,
            file_line=block_file_line(cf, block), zones=block.zones, port=port, name=step.name,
            plugin=d.name if d else None, plugin_line=d.line if d else None, next=nxt,
            via=arrival.via, outcome=outcome, notes=step.notes + notes, stub_forward=stub,
            role=role.role if role else None, conditional=step.conditional, rcode=step.rcode,
            qtype=step.qtype or arrival.qtype))


def trace_name(name: str, corefiles: Sequence[Corefile], *, qtype: str = "A",
               port: int | None = None,
               service_ip: str | None = None, start: int | None = None,
               nameserver: str | None = None, assembly: Assembly | None = None,
               semantics: Semantics = CURRENT, node_cache: Semantics | None = None,
               files: FileReader = no_files) -> TraceResult:
    """Follow NAME through the Corefiles (a node cache and the cluster DNS given together are
    chained; custom import files are spliced into the Corefile that imports them).

    ``service_ip``: the address the cluster DNS Corefile listens on (its Service ClusterIP);
    ``start``: index (in ``assembly.corefiles``) of the Corefile the client asks first (default:
    see listeners.start_index); ``nameserver``: the address the client asks (selects by
    ``bind``); ``assembly``: roles and spliced Corefiles from roles.assemble (computed when
    None); ``port``: the port the client asks (default: 53, the Service port, mapped to a
    Corefile's only listen port when it listens elsewhere, e.g. OpenShift's 5353);
    ``semantics``: which CoreDNS runs them (``node_cache``: which runs the node caches, default
    the same); ``files``: reads the hosts and zone files the plugins name.
    """
    qtype = qtype.upper()
    if assembly is None:
        assembly = assemble(corefiles, service_ip=service_ip)
    if not assembly.corefiles:
        return TraceResult(name=fqdn(name), qtype=qtype, hops=(), outcome="no Corefile given",
                           final=None, roles=assembly.roles, assembly=assembly)
    walk = _Walk(assembly, service_ip=service_ip, mapped=port is None, semantics=semantics,
                 node_cache=node_cache, files=files)
    if start is None:
        start = start_index(walk.corefiles, assembly, walk.listen, nameserver)
    cur = fqdn(name)
    end = walk.run(_Arrival(
        index=start, name=cur, port=53 if port is None else port, address=nameserver,
        transport=UpstreamTransport.UDP, qtype=qtype,
        via=f"client query for {cur} ({qtype})" + (f" to {nameserver}" if nameserver else "")))
    return TraceResult(name=cur, qtype=qtype, hops=tuple(walk.hops), outcome=end.outcome,
                       final=end.final, notes=tuple(walk.notes), problems=tuple(walk.problems),
                       roles=assembly.roles, assembly=assembly, rcode=end.rcode,
                       unreverted=walk.unreverted,
                       versions=tuple(dict.fromkeys(s.build.label for s in walk.semantics)))
