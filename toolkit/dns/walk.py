"""Walking the search list against one server, the way glibc's res_nsearch does.

One *path* is one server over one transport. Along a path the candidates are tried in
order; for each candidate every asked type goes out together (glibc sends A and AAAA in
parallel for AF_UNSPEC), and the walk stops where glibc stops (resolv/res_query.c,
__res_context_search): an answer ends it; NXDOMAIN, NODATA and SERVFAIL move on to the next
candidate; REFUSED, FORMERR, NOTIMP and a server that does not answer end it.
All paths run concurrently; every query takes its timeout from the one Deadline.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from toolkit import signals
from toolkit.deadline import Deadline
from toolkit.dns.query import QueryError, QueryResult, Rcode, Transport, query

# glibc's search goes on to the next candidate after these (resolv/res_query.c).
CONTINUE_RCODES = frozenset({Rcode.NXDOMAIN, Rcode.SERVFAIL})


class PathOutcome(StrEnum):
    """How a path's walk ended with a DNS answer (``PathResult.outcome``); a path that got
    no DNS answer ends with its QueryError instead. Rcodes are RFC 1035 4.1.1 / RFC 6895 2.3
    names, lower case."""

    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    FORMERR = "formerr"
    NOTIMP = "notimp"
    YXDOMAIN = "yxdomain"
    YXRRSET = "yxrrset"
    NXRRSET = "nxrrset"
    NOTAUTH = "notauth"
    NOTZONE = "notzone"
    BADVERS = "badvers"
    BADCOOKIE = "badcookie"
    OTHER_RCODE = "other-rcode"  # an rcode outside this list (the query rows keep its number)
    NO_ANSWER = "no-answer"
    NO_CANDIDATES = "no-candidates"

    @classmethod
    def of_rcode(cls, rcode: str) -> PathOutcome:
        """The outcome named by an rcode's text (any case); OTHER_RCODE for an unknown one."""
        try:
            return cls(rcode.lower())
        except ValueError:
            return cls.OTHER_RCODE


def path_outcome(value: str) -> PathOutcome | QueryError:
    """A recorded outcome word (a JSON fixture, a document) -> its enum, at the boundary
    where the word is read; a word of neither is a bug (ValueError)."""
    if isinstance(value, (PathOutcome, QueryError)):
        return value
    try:
        return PathOutcome(value)
    except ValueError:
        return QueryError(value)


class ServerRole(StrEnum):
    """Why a nameserver is asked: the pod's own (resolv.conf), one more the user named
    (--server, or one behind the pod's cache), or an independent reference for the zone."""

    RESOLV_CONF = "resolv.conf"
    SERVER = "server"
    REFERENCE = "reference"


@dataclass(frozen=True)
class Server:
    """One nameserver to ask, and why."""

    address: str
    role: ServerRole
    port: int = 53


@dataclass(frozen=True, kw_only=True)
class PathResult:
    """The whole walk of one server over one transport."""

    server: str
    role: ServerRole
    transport: Transport
    queries: tuple[QueryResult, ...]
    hit: str | None  # the candidate that produced answers
    outcome: PathOutcome | QueryError  # how the walk ended: an rcode word, or why no answer came

    __json_properties__ = ("addresses",)

    def answers_for(self, qtype: str) -> tuple[str, ...]:
        """The records of ``qtype`` the hit candidate got, sorted."""
        if self.hit is None:
            return ()
        return tuple(sorted({a for q in self.queries if q.qname == self.hit and q.qtype == qtype
                             for a in q.answers}))

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every record the hit candidate got (A and AAAA), sorted."""
        if self.hit is None:
            return ()
        return tuple(sorted({a for q in self.queries if q.qname == self.hit for a in q.answers}))

    @property
    def answered(self) -> bool:
        """The walk ended with records."""
        return self.outcome is PathOutcome.ANSWER

    @property
    def failed(self) -> bool:
        """The server gave no DNS answer at all on this path (silence, ICMP, RST)."""
        return not any(q.answered for q in self.queries)

    @property
    def no_dns_answer(self) -> bool:
        """The walk ended without a DNS answer to its last question (silence, ICMP, RST), at
        once or after answering earlier candidates (a server gone silent part-way)."""
        return self.failed or isinstance(self.outcome, QueryError)

    def last_error(self) -> QueryResult | None:
        """The last query that got no DNS answer, if any."""
        for q in reversed(self.queries):
            if not q.answered:
                return q
        return None


def _step(results: Sequence[QueryResult]) -> PathOutcome | QueryError | None:
    """None: go on to the next candidate; otherwise the path's final outcome."""
    if any(r.has_answers for r in results):
        return PathOutcome.ANSWER
    for r in results:
        if not r.answered:
            return r.error or PathOutcome.NO_ANSWER
    for r in results:
        if r.rcode is not None and r.rcode not in CONTINUE_RCODES and r.rcode != Rcode.NOERROR:
            return PathOutcome.of_rcode(r.rcode)
    return None


def _exhausted(results: Sequence[QueryResult]) -> PathOutcome:
    rcodes = {r.rcode for r in results}
    if rcodes == {Rcode.NXDOMAIN}:
        return PathOutcome.NXDOMAIN
    if Rcode.SERVFAIL in rcodes:
        return PathOutcome.SERVFAIL
    return PathOutcome.NODATA


def walk_path(server: Server, transport: Transport, candidates: Sequence[str], qtypes: Sequence[str],
              deadline: Deadline, query_timeout: float, pool: ThreadPoolExecutor) -> PathResult:
    """One path: the candidates in order, every type at once, until glibc would stop."""
    done: list[QueryResult] = []
    last: list[QueryResult] = []
    for cand in candidates:
        futures = [pool.submit(query, server.address, cand, qt, transport,
                               deadline.timeout(query_timeout), port=server.port) for qt in qtypes]
        last = [f.result() for f in futures]
        done.extend(last)
        outcome = _step(last)
        if outcome is not None:
            hit = cand if outcome is PathOutcome.ANSWER else None
            return PathResult(
                server=server.address, role=server.role, transport=transport, queries=tuple(done), hit=hit,
                outcome=outcome)
    return PathResult(
        server=server.address, role=server.role, transport=transport, queries=tuple(done), hit=None,
        outcome=_exhausted(last) if last else PathOutcome.NO_CANDIDATES)


def walk_all(servers: Sequence[Server], transports: Sequence[Transport], candidates: Sequence[str],
             qtypes: Sequence[str], deadline: Deadline, query_timeout: float,
             on_progress: Callable[[str], None] | None = None) -> tuple[PathResult, ...]:
    """Every server over every transport, concurrently, under one deadline."""
    paths = [(s, t) for s in servers for t in transports]
    if not paths:
        return ()
    with ThreadPoolExecutor(max_workers=len(paths), thread_name_prefix="path") as walkers, \
            ThreadPoolExecutor(max_workers=len(paths) * len(qtypes), thread_name_prefix="query") as queries:
        futures = [walkers.submit(walk_path, s, t, candidates, qtypes, deadline, query_timeout, queries)
                   for s, t in paths]
        results = []
        for f in futures:
            res = f.result()
            if on_progress:
                on_progress(f"{res.server} over {res.transport}: {res.outcome}")
            results.append(res)
    return tuple(results)


@dataclass(frozen=True)
class AddrInfoResult:
    """What getaddrinfo() returns in this namespace: files, DNS and the rest of NSS."""

    addresses: tuple[str, ...] = ()
    error: str | None = None
    latency_ms: float | None = None
    # getaddrinfo()'s own order: the order the application tries them (RFC 6724 sorting in
    # glibc and musl: an address without a route last, then glibc's precedence table)
    ordered: tuple[str, ...] = ()


def system_lookup(name: str, timeout: float) -> AddrInfoResult:
    """getaddrinfo() cannot be cancelled: run it in a daemon thread and stop waiting at the
    deadline (it then finishes on its own in the background)."""
    box: list[AddrInfoResult] = []

    def work() -> None:
        t0 = time.monotonic()
        addrs: tuple[str, ...] = ()
        ordered: tuple[str, ...] = ()
        error = None
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            addrs = tuple(sorted({str(i[4][0]) for i in infos}))
            ordered = tuple(dict.fromkeys(str(i[4][0]) for i in infos))
        except socket.gaierror as exc:
            names: dict[int | None, str] = {socket.EAI_NONAME: "EAI_NONAME", socket.EAI_AGAIN: "EAI_AGAIN",
                                            socket.EAI_FAIL: "EAI_FAIL"}
            code = names.get(exc.errno, f"EAI_{exc.errno}")
            error = f"{code}: {exc.strerror}"
        except (OSError, UnicodeError) as exc:
            error = str(exc)
        box.append(AddrInfoResult(addrs, error, (time.monotonic() - t0) * 1000.0, ordered))

    t = threading.Thread(target=work, name="getaddrinfo", daemon=True)
    t.start()
    end = time.monotonic() + max(0.0, timeout)
    while t.is_alive() and not signals.stopped() and time.monotonic() < end:
        t.join(signals.tick(end - time.monotonic()))  # sliced: SIGINT/SIGTERM end the wait
    if t.is_alive():
        return AddrInfoResult(error=f"timeout: getaddrinfo did not return within {timeout:.1f} s")
    return box[0] if box else AddrInfoResult()
