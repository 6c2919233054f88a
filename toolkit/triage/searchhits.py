"""When a search-suffixed candidate answered: what the name itself is, and whether the search
domain answers any name (issue 28's evidence, gathered).

glibc stops its search walk at the first candidate with records (resolv/res_query.c,
__res_context_search), so with ``ndots:5`` a name like ``api.corp.example`` is asked as
``api.corp.example.<search domain>`` first: a wildcard under a search domain, or a resolver
that rewrites NXDOMAIN, answers there and the name meant is never asked. For every path whose
positive answer came from such a candidate, this module gathers three things:

- the rest of that path's walk, as glibc would have gone on without that answer: what the
  name itself resolves to (``SearchHit.rest``);
- one wildcard probe per search domain that answered: a random name under it, and when that
  resolves, one random name under the root (a resolver that rewrites NXDOMAIN answers both);
- the references' answers for the name itself (asked at once, beside the walk, by
  toolkit.triage.resolve), kept apart from their answers for the candidate.

The judgement is toolkit.triage.another_name's; this module only asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.dns.query import Transport
from toolkit.dns.walk import PathResult, Server, ServerRole, walk_path
from toolkit.dns.wildcard import ROOT, WildcardProbe, probe_domain


@dataclass(frozen=True, kw_only=True)
class SearchHit:
    """One path whose positive answer came from a search-suffixed candidate."""

    server: str
    role: ServerRole
    transport: Transport
    candidate: str  # the candidate that got records (absolute)
    domain: str  # the search domain that made it (absolute)
    addresses: tuple[str, ...]  # what the candidate answered
    rest: PathResult | None  # the walk continued past the candidate (None: it was the last one)

    __json_properties__ = ("itself",)

    @property
    def itself(self) -> tuple[str, ...]:
        """What the rest of the walk resolved the name to (empty: nothing after the candidate did)."""
        return self.rest.addresses if self.rest is not None and self.rest.answered else ()


@dataclass(frozen=True, kw_only=True)
class SearchEvidence:
    """Everything gathered about answers from search-suffixed candidates."""

    name: str  # the name as asked
    search: tuple[str, ...]  # the resolv.conf search list
    hits: tuple[SearchHit, ...]
    probes: tuple[WildcardProbe, ...]
    meant_refs: tuple[PathResult, ...] = ()  # the references' walks for the name itself

    def probe_for(self, domain: str) -> WildcardProbe | None:
        """The wildcard probe of ``domain`` (absolute; "." for the root), if one was sent."""
        return next((p for p in self.probes if p.domain.lower() == domain.lower()), None)

    @property
    def walks(self) -> tuple[PathResult, ...]:
        """Every walk made here (the rests, then the references' for the name itself)."""
        return tuple(h.rest for h in self.hits if h.rest is not None) + self.meant_refs


def search_domain(hit: str, name: str, search: Sequence[str]) -> str | None:
    """The search domain appended to ``name`` to make the candidate ``hit`` (absolute), or
    None when ``hit`` is no search candidate of it (the name itself)."""
    from toolkit.sysinfo.resolvconf import host_name_ok

    base = (host_name_ok(name) or name).rstrip(".").lower()
    low = hit.lower()
    if not low.startswith(base + ".") or low == base + ".":
        return None
    domain = hit[len(base) + 1:]
    known = {d.strip(".").lower() for d in search}
    return domain if domain.strip(".").lower() in known else None


@dataclass(frozen=True, kw_only=True)
class SearchWalk:
    """How the extra questions are asked: the same types, time budget and servers as the walk."""

    qtypes: tuple[str, ...]
    deadline: Deadline
    query_timeout: float
    servers: tuple[Server, ...]

    def port(self, address: str) -> int:
        """The port a path's server was asked on."""
        return next((s.port for s in self.servers if s.address == address), 53)


def gather_search(name: str, candidates: Sequence[str], search: Sequence[str], paths: Sequence[PathResult],
                  meant_refs: Sequence[PathResult], how: SearchWalk) -> SearchEvidence | None:
    """For every path whose answer came from a search-suffixed candidate: the rest of its walk
    and a wildcard probe of the domain, concurrently, under the walk's deadline. None when no
    path answered that way (or the name is absolute: no search list applies)."""
    if name.endswith("."):
        return None
    found = [(p, d) for p in paths if p.role != ServerRole.REFERENCE and p.hit
             and (d := search_domain(p.hit, name, search)) is not None]
    if not found:
        return None
    firsts: dict[str, PathResult] = {}
    for p, d in sorted(found, key=lambda x: (x[0].role != ServerRole.RESOLV_CONF, x[0].transport != Transport.UDP)):
        firsts.setdefault(d.lower(), p)
    width = len(found) * len(how.qtypes) + len(firsts) + 1
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="search") as pool, \
            ThreadPoolExecutor(max_workers=len(found) * len(how.qtypes), thread_name_prefix="rest") as qpool:
        rests = [pool.submit(_rest, p, candidates, how, qpool) for p, _d in found]
        probes: list[Future[tuple[WildcardProbe, ...]]] = [
            pool.submit(_probe_pair, p.server, how.port(p.server), d, how) for d, p in firsts.items()]
        hits = tuple(SearchHit(server=p.server, role=p.role, transport=p.transport, candidate=p.hit or "",
                               domain=d, addresses=p.addresses, rest=r.result())
                     for (p, d), r in zip(found, rests, strict=True))
        done = tuple(x for f in probes for x in f.result())
    return SearchEvidence(name=name, search=tuple(search), hits=hits, probes=done, meant_refs=tuple(meant_refs))


def _rest(p: PathResult, candidates: Sequence[str], how: SearchWalk, qpool: ThreadPoolExecutor) -> PathResult | None:
    """The walk of ``p`` continued past its hit, as glibc would have gone on without it."""
    after = list(candidates)[candidates.index(p.hit) + 1:] if p.hit in candidates else []
    if not after:
        return None
    server = Server(p.server, p.role, how.port(p.server))
    return walk_path(server, p.transport, after, how.qtypes, how.deadline, how.query_timeout, qpool)


def _probe_pair(server: str, port: int, domain: str, how: SearchWalk) -> tuple[WildcardProbe, ...]:
    """A random name under ``domain``; when it resolves, a random name under the root too,
    which tells a wildcard of that domain from a resolver that rewrites every NXDOMAIN."""
    first = probe_domain(server, domain, how.deadline, how.query_timeout, port=port)
    if first is None or not first.resolves:
        return (first,) if first is not None else ()
    root = probe_domain(server, ROOT, how.deadline, how.query_timeout, port=port)
    return (first, root) if root is not None else (first,)
