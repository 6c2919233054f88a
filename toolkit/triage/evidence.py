"""What `diagnose` knows, typed: the gathered ``Evidence`` and the ``Facts`` every rule reads.

``Evidence`` holds raw measurements (the resolve walk, one AddressReport per probed address,
Corefile and conntrack findings). ``facts_of`` derives, once, what the rules of
toolkit.triage.rules ask about: which paths answered, which addresses each path and each
reference gave, and each address's state. An answered address that no probe looked at is
``AddressState.NOT_PROBED``: it is reported, and never counts as evidence either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from toolkit.dns.walk import ServerRole
from toolkit.model import Finding
from toolkit.probe.model import AddressState

if TYPE_CHECKING:
    from toolkit.dns.query import QueryResult
    from toolkit.dns.walk import PathResult
    from toolkit.probe.model import AddressReport
    from toolkit.sysinfo.procs import ProcInfo, SockInfo
    from toolkit.triage.another_name import AnotherName
    from toolkit.triage.resolve import ResolveResult
    from toolkit.triage.stalecache import CacheCheck

# Nothing answered for the address itself: the last router's ARP failed, a routing error,
# or silence. A recycled address held by a live host is none of these, and no alibi either.
DEAD = frozenset({AddressState.HOST_UNREACHABLE, AddressState.SILENT, AddressState.ROUTING})
# The host answered (SYN-ACK, RST, echo reply) or a policy answered for it.
ALIVE = frozenset({AddressState.UP, AddressState.PORT_CLOSED, AddressState.FILTERED})
# Does not serve the application's port, whatever the symptom.
NOT_SERVING = DEAD | {AddressState.PORT_CLOSED, AddressState.FILTERED}


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """Everything `diagnose` observed for one name, under one deadline."""

    name: str
    resolve: ResolveResult
    probes: tuple[AddressReport, ...]
    ports: tuple[int, ...]
    ports_given: bool
    unprobed: tuple[str, ...] = ()  # answered addresses beyond the probe limit
    behind: tuple[PathResult, ...] = ()  # paths of servers behind a failing cache
    # the pod's nameserver asked once more, with a longer timeout, for a name it did not answer
    # in time: a cache whose upstream is silent answers SERVFAIL only after its forward gives up
    patient: QueryResult | None = None
    conntrack_findings: tuple[Finding, ...] = ()
    corefile_findings: tuple[Finding, ...] = ()
    corefile_hops: tuple[str, ...] = ()  # the Corefile trace's hops, described
    # each caching hop of the Corefile trace asked beside its upstream (toolkit.triage.stalecache)
    cache_checks: tuple[CacheCheck, ...] = ()
    processes: tuple[ProcInfo, ...] = ()  # the visible applications
    app_sockets: tuple[SockInfo, ...] = ()  # their sockets towards the name's addresses
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Facts:
    """The evidence as the rules ask about it (derived once, pure)."""

    e: Evidence
    base: tuple[Finding, ...]  # resolve, Corefile, conntrack and application findings

    @cached_property
    def paths(self) -> tuple[PathResult, ...]:
        """The path's own walks: resolv.conf servers and --server, not references."""
        return tuple(p for p in self.e.resolve.paths if p.role != ServerRole.REFERENCE)

    @cached_property
    def pod_paths(self) -> tuple[PathResult, ...]:
        """The pod's own nameservers' paths (resolv.conf); without any, the path's."""
        return tuple(p for p in self.paths if p.role == ServerRole.RESOLV_CONF) or self.paths

    @cached_property
    def behind_asked(self) -> bool:
        """Servers behind the pod's nameservers were asked (--server, or found behind the
        cache): their answer, or their failure too, is evidence."""
        return any(p.role != ServerRole.RESOLV_CONF for p in self.paths) or bool(self.e.behind)

    @cached_property
    def refs(self) -> tuple[PathResult, ...]:
        """The references' walks."""
        return tuple(p for p in self.e.resolve.paths if p.role == ServerRole.REFERENCE)

    @cached_property
    def answering(self) -> tuple[PathResult, ...]:
        """The path's walks that ended with records."""
        return tuple(p for p in self.paths if p.answered)

    @cached_property
    def refs_answering(self) -> tuple[PathResult, ...]:
        """The references' walks that ended with records."""
        return tuple(p for p in self.refs if p.answered)

    @cached_property
    def path_addrs(self) -> tuple[str, ...]:
        """Every address the path's servers gave, sorted."""
        return tuple(sorted({a for p in self.answering for a in p.addresses}))

    @cached_property
    def ref_addrs(self) -> tuple[str, ...]:
        """Every address the references gave, sorted."""
        return tuple(sorted({a for p in self.refs_answering for a in p.addresses}))

    @cached_property
    def reports(self) -> Mapping[str, AddressReport]:
        """address -> its probes' report."""
        return {r.address: r for r in self.e.probes}

    @cached_property
    def states(self) -> Mapping[str, AddressState]:
        """address -> its state; answered but unprobed addresses are NOT_PROBED."""
        out = {a: AddressState.NOT_PROBED for a in (*self.path_addrs, *self.ref_addrs)}
        out.update({r.address: r.state for r in self.e.probes})
        return out

    def state(self, address: str) -> AddressState:
        """The state of one address (NOT_PROBED when nothing looked at it)."""
        return self.states.get(address, AddressState.NOT_PROBED)

    def probed(self, addrs: Iterable[str]) -> list[str]:
        """Only addresses a probe looked at are evidence."""
        return [a for a in addrs if self.state(a) is not AddressState.NOT_PROBED]

    @cached_property
    def givers(self) -> Mapping[str, tuple[str, ...]]:
        """address -> the servers that answered it (references marked)."""
        out: dict[str, set[str]] = defaultdict(set)
        for p in self.e.resolve.paths:
            for a in p.addresses:
                out[a].add(f"{p.server} [reference]" if p.role == ServerRole.REFERENCE else p.server)
        return {a: tuple(sorted(s)) for a, s in out.items()}

    @cached_property
    def given_by_some_paths(self) -> tuple[str, ...]:
        """Path addresses that not every answering path (server x transport) gives."""
        sets = [set(p.addresses) for p in self.answering]
        return tuple(a for a in self.path_addrs if any(a not in s for s in sets))

    @cached_property
    def differ_from_refs(self) -> tuple[str, ...]:
        """Path addresses that no answering reference gives (empty without references)."""
        if not self.ref_addrs:
            return ()
        return tuple(a for a in self.path_addrs if a not in self.ref_addrs)

    def serving(self, addrs: Iterable[str]) -> list[str]:
        """Those of ``addrs`` that serve the port (state up)."""
        return [a for a in addrs if self.state(a) is AddressState.UP]

    def in_states(self, addrs: Iterable[str], states: Collection[AddressState]) -> list[str]:
        """Those of ``addrs`` whose state is one of ``states``."""
        return [a for a in addrs if self.state(a) in states]

    @cached_property
    def another_name(self) -> AnotherName | None:
        """The first search-suffixed candidate whose answer belongs to another name
        (toolkit.triage.another_name), the pod's own nameservers' first."""
        from toolkit.triage.another_name import analyze

        return next((a for a in analyze(self.e.resolve.search, self.e.resolve.paths) if a.fires), None)

    @cached_property
    def corefile_traced(self) -> bool:
        """A Corefile trace says which block and upstream answer the name."""
        return bool(self.e.corefile_hops)

    def path_servers(self, addr: str) -> list[str]:
        """The path's servers that gave addr (no references)."""
        return [s for s in self.givers.get(addr, ()) if not s.endswith("[reference]")]

    # -- wording shared by the rules' findings

    def probe_lines(self, addrs: Sequence[str]) -> tuple[str, ...]:
        """Evidence lines: every probe (and control probe) of ``addrs``, one line each."""
        lines = []
        for a in addrs:
            rep = self.reports.get(a)
            if rep is None:
                continue
            for pr in rep.probes + rep.control:
                port = f":{pr.port}" if pr.port else ""
                frm = f" from {pr.reply_from}" if pr.reply_from else ""
                rtt = f" after {pr.rtt_ms:.0f} ms" if pr.rtt_ms else ""
                lines.append(f"{pr.kind} {pr.address}{port}: {pr.result}{frm}{rtt}")
        return tuple(lines)

    def summaries(self, addrs: Sequence[str]) -> str:
        """The probed ``addrs``' one-line summaries, joined."""
        return "; ".join(self.reports[a].summary for a in addrs if a in self.reports)


def facts_of(e: Evidence, base: tuple[Finding, ...]) -> Facts:
    """The rules' view of ``e``, with the findings already made (resolve, Corefile...)."""
    return Facts(e=e, base=base)
