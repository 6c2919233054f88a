"""`resolve`: ask every resolver on the path the same question, under one deadline.

This module gathers the evidence (``resolve_name`` -> ``ResolveResult``);
toolkit.triage.resolve_findings says where the answers differ, as a pure function of that
evidence, so every rule is unit-testable without a network.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.dns.query import QueryResult, Transport
from toolkit.dns.walk import AddrInfoResult, PathResult, Server, ServerRole
from toolkit.errors import UsageError
from toolkit.triage.searchhits import SearchEvidence, SearchWalk, gather_search

QTYPES = ("A", "AAAA")
TRANSPORTS = (Transport.UDP, Transport.TCP)


@dataclass(frozen=True, kw_only=True)
class ResolveResult:
    """Every path's walk for one name, and what getaddrinfo() said, under one deadline."""

    name: str
    candidates: tuple[str, ...]
    servers: tuple[Server, ...]
    paths: tuple[PathResult, ...]
    system: AddrInfoResult | None
    resolv_conf_path: str
    qtypes: tuple[str, ...] = QTYPES
    transports: tuple[Transport, ...] = TRANSPORTS
    # When a search-suffixed candidate answered: what the name itself is, the wildcard
    # probes of its domain (toolkit.triage.searchhits); None when none did.
    search: SearchEvidence | None = None

    @property
    def queries(self) -> tuple[QueryResult, ...]:
        """Every query of every path, in order."""
        return tuple(q for p in self.paths for q in p.queries)

    def paths_of(self, role: ServerRole | None = None) -> tuple[PathResult, ...]:
        """The paths of servers in ``role`` (all of them for None)."""
        return tuple(p for p in self.paths if role is None or p.role == role)


def validate_name(name: str) -> str:
    """NAME, stripped, if it can be asked for; a UsageError (exit 2) saying why not."""
    import dns.exception
    import dns.name

    text = name.strip()
    if not text:
        raise UsageError("NAME is empty")
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        pass
    else:
        raise UsageError(f"{text} is an address, not a name",
                         hint="`podtriage resolve` takes a DNS name; probe an address with `podtriage reach`")
    from toolkit.names import NameProblem, check_name

    try:
        check_name(text)  # not a host name: say so, instead of blaming the nameserver
        dns.name.from_text(text)
    except NameProblem as exc:
        raise UsageError(str(exc)) from None
    except dns.exception.DNSException as exc:
        raise UsageError(f"{text!r} is not a valid DNS name: {exc}") from None
    return text


def parse_servers(values: Sequence[str], role: ServerRole) -> list[Server]:
    """``--server``/``--reference`` values (repeatable, comma-separated, ADDR[:PORT] or
    [IPv6]:PORT) as Servers in ``role``."""
    from toolkit.names import NameProblem, parse_endpoint

    out = []
    for raw in values:
        for item in filter(None, (v.strip() for v in raw.split(","))):
            try:
                host, port = parse_endpoint(item)
            except NameProblem as exc:
                raise UsageError(str(exc), hint="give nameservers as addresses: ADDR, ADDR:PORT "
                                                "or [IPv6]:PORT") from None
            out.append(Server(host, role, port))
    return out


def _scoped(address: str) -> str:
    """A resolv.conf nameserver as queried: the %scope kept only where it is needed, on a
    link-local IPv6 address (``nameserver fe80::25:10%eth0``: glibc reaches it through that
    interface; without the scope connect() fails with EINVAL)."""
    bare, sep, scope = address.partition("%")
    try:
        if sep and scope and ipaddress.ip_address(bare).is_link_local:
            return address
    except ValueError:
        pass
    return bare


def resolve_name(name: str, *, resolv_conf: str = "/etc/resolv.conf", servers: Sequence[Server] = (),
                 references: Sequence[Server] = (), qtypes: Sequence[str] = QTYPES,
                 transports: Sequence[Transport] = TRANSPORTS, deadline: Deadline,
                 query_timeout: float = 2.0, use_resolv_conf: bool = True, search: bool = True,
                 system: bool = True,
                 on_progress: Callable[[str], None] | None = None) -> ResolveResult:
    """Ask every server on the path (resolv.conf's, ``servers``, ``references``) over every
    transport for NAME, walking the search list as glibc does, all under ``deadline``; and,
    beside them, getaddrinfo() (``system``)."""
    from toolkit.sysinfo.resolvconf import ResolvConf, load_resolv_conf, search_candidates

    name = validate_name(name)
    conf = load_resolv_conf(resolv_conf) if use_resolv_conf else ResolvConf(path=resolv_conf, nameservers=())
    candidates = search_candidates(name, conf) if search else (name.rstrip(".") + ".",)
    all_servers = _unique_servers([*(Server(_scoped(a), ServerRole.RESOLV_CONF) for a in conf.nameservers),
                                   *servers, *references])
    if not all_servers:
        raise UsageError("no nameserver to ask",
                         hint="give --server IP, or check the resolv.conf (podtriage resolvconf)")
    if on_progress:
        on_progress(f"asking {len(all_servers)} server(s) over {', '.join(transports)} for "
                    f"{len(candidates)} candidate name(s), deadline {deadline.remaining():.1f} s")
    # getaddrinfo runs beside the walks, under the same deadline.
    getaddrinfo = _SystemLookup(name, deadline) if system else None
    walk = _Walk(transports=tuple(transports), qtypes=tuple(qtypes), deadline=deadline,
                 query_timeout=query_timeout, on_progress=on_progress)
    paths, meant_refs = walk.paths_and_references(all_servers, candidates, name)
    found = gather_search(name, candidates, conf.search, paths, meant_refs, SearchWalk(
        qtypes=tuple(qtypes), deadline=deadline, query_timeout=query_timeout,
        servers=tuple(all_servers))) if search else None
    # When no path answered, getaddrinfo() is retrying as the walks timed out (glibc's own
    # timeout is 5 s): one more query timeout rarely ends it, and the time is the caller's.
    answered = any(p.answered for p in paths if p.role != ServerRole.REFERENCE)
    system_wait = deadline.timeout(query_timeout if answered else min(query_timeout, 0.5))
    return ResolveResult(
        name=name, candidates=tuple(candidates), servers=tuple(all_servers), paths=paths,
        system=getaddrinfo.result(system_wait) if getaddrinfo else None,
        resolv_conf_path=conf.path, qtypes=tuple(qtypes), transports=tuple(transports), search=found)


@dataclass(frozen=True, kw_only=True)
class _Walk:
    """How every path is walked: the transports, types and time budget of one resolve."""

    transports: tuple[Transport, ...]
    qtypes: tuple[str, ...]
    deadline: Deadline
    query_timeout: float
    on_progress: Callable[[str], None] | None

    def walk_all(self, servers: Sequence[Server], candidates: Sequence[str]) -> tuple[PathResult, ...]:
        """Every server over every transport, for ``candidates``."""
        from toolkit.dns.walk import walk_all

        return walk_all(servers, self.transports, candidates, self.qtypes, self.deadline,
                        self.query_timeout, self.on_progress)

    def paths_and_references(self, servers: Sequence[Server], candidates: Sequence[str],
                             name: str) -> tuple[tuple[PathResult, ...], tuple[PathResult, ...]]:
        """The path's servers walk the search list as glibc would. A reference is an
        independent resolver (often an authoritative server that REFUSEs names outside its
        zones), so it is asked for the very FQDN the path resolved, not walked through the
        search list. Most often the path resolves the name as written (the last candidate
        with ndots:5), so the references are asked that at once, beside the path's walk;
        only when the path answered for another candidate are they asked again, for that one,
        and their answers for the name itself are returned apart (second): the name meant."""
        path_servers = [s for s in servers if s.role != ServerRole.REFERENCE]
        ref_servers = [s for s in servers if s.role == ServerRole.REFERENCE]
        as_is = name.rstrip(".") + "."
        ref_paths: tuple[PathResult, ...] = ()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="refs") as refs_pool:
            early = refs_pool.submit(self.walk_all, ref_servers, [as_is]) if ref_servers else None
            paths = self.walk_all(path_servers, candidates)
            if early is not None:
                ref_paths = early.result()
        hits = list(dict.fromkeys(p.hit for p in paths if p.hit))
        if ref_servers and hits and hits != [as_is]:
            return paths + self.walk_all(ref_servers, hits), ref_paths
        return paths + ref_paths, ()


class _SystemLookup:
    """getaddrinfo() for the name in a daemon thread, beside the walks."""

    def __init__(self, name: str, deadline: Deadline) -> None:
        import threading

        from toolkit.dns.walk import system_lookup

        self._box: list[AddrInfoResult] = []
        self._thread = threading.Thread(target=lambda: self._box.append(
            system_lookup(name, deadline.timeout())), daemon=True)
        self._thread.start()

    def result(self, wait: float) -> AddrInfoResult:
        """What getaddrinfo() said, waiting at most ``wait`` more seconds.

        getaddrinfo() is the application's view, not a measurement we control: when every
        server is silent glibc keeps retrying for timeout x attempts per name. It gets one
        query timeout beyond the walks, not the whole deadline."""
        t_wait = time.monotonic()
        self._thread.join(wait)
        if self._box:
            return self._box[0]
        waited = time.monotonic() - t_wait
        return AddrInfoResult(error=f"timeout: getaddrinfo() had not returned {waited:.1f} s "
                                    "after the last DNS answer (glibc is still retrying)")


def _unique_servers(servers: Sequence[Server]) -> list[Server]:
    out: list[Server] = []
    seen: set[tuple[str, int]] = set()
    for s in servers:
        if (s.address, s.port) not in seen:
            seen.add((s.address, s.port))
            out.append(s)
    return out
