"""One DNS question to one server over one transport, under a deadline.

Failures are data: a QueryResult with ``error`` set ("timeout", "port-unreachable",
"host-unreachable", ...) rather than an exception. UDP goes out on a *connected* socket with
IP_RECVERR, so an ICMP port-unreachable (nothing on 53) or host-unreachable (ARP failed at
the last router) is seen at once with the router that sent it, instead of looking like
silence (see toolkit.sockerr). TCP uses RFC 1035 4.2.2 / RFC 7766 length-prefixed framing.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import TypedDict

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from toolkit import signals
from toolkit.dns.transport import Transport as Transport
from toolkit.sockerr import IcmpError, NetError, enable_recverr, errno_kind, read_errqueue

# DNS Flag Day 2020: advertise 1232 bytes so answers never need IP fragmentation.
EDNS_PAYLOAD = 1232


class Rcode(StrEnum):
    """The response codes podtriage reasons about, spelled as dnspython's ``rcode.to_text``
    spells them (RFC 1035 4.1.1). ``QueryResult.rcode`` keeps any other code as text."""

    NOERROR = "NOERROR"
    FORMERR = "FORMERR"
    SERVFAIL = "SERVFAIL"
    NXDOMAIN = "NXDOMAIN"
    NOTIMP = "NOTIMP"
    REFUSED = "REFUSED"


class QueryError(StrEnum):
    """Why a query got no DNS answer. Every toolkit.sockerr.NetError word is one (a test
    checks it), plus what only a DNS exchange can meet."""

    PORT_UNREACHABLE = NetError.PORT_UNREACHABLE.value
    PROTOCOL_UNREACHABLE = NetError.PROTOCOL_UNREACHABLE.value
    HOST_UNREACHABLE = NetError.HOST_UNREACHABLE.value
    NET_UNREACHABLE = NetError.NET_UNREACHABLE.value
    ADMIN_PROHIBITED = NetError.ADMIN_PROHIBITED.value
    TTL_EXCEEDED = NetError.TTL_EXCEEDED.value
    FRAG_NEEDED = NetError.FRAG_NEEDED.value
    UNREACHABLE = NetError.UNREACHABLE.value
    RESET = NetError.RESET.value
    TIMEOUT = NetError.TIMEOUT.value
    LOCAL_ERROR = NetError.LOCAL_ERROR.value
    REFUSED = "refused"  # TCP RST to our SYN (not the REFUSED rcode, which is an answer)
    MALFORMED = "malformed"  # a reply that does not decode or does not match the question
    DEADLINE = "deadline"  # not sent: the deadline had passed

    @property
    def server_down(self) -> bool:
        """Nothing listens there: the host said so (ICMP port-unreachable, RST)."""
        return self in _SERVER_DOWN

    @property
    def unreachable(self) -> bool:
        """The network said the server cannot be reached."""
        return self in _UNREACHABLE


_SERVER_DOWN = frozenset({QueryError.PORT_UNREACHABLE, QueryError.REFUSED, QueryError.RESET})
_UNREACHABLE = frozenset({QueryError.HOST_UNREACHABLE, QueryError.NET_UNREACHABLE,
                          QueryError.ADMIN_PROHIBITED, QueryError.TTL_EXCEEDED})


@dataclass(frozen=True)
class Soa:
    """The authority SOA of a negative answer: which zone, which serial, said so."""

    owner: str
    mname: str
    serial: int
    minimum: int
    ttl: int


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    """What one server said (or did not say) to one question."""

    server: str
    port: int
    transport: Transport
    qname: str
    qtype: str
    rcode: str | None = None  # None: no DNS answer at all (see ``error``)
    answers: tuple[str, ...] = ()  # rdata of the qtype, after following CNAMEs
    ttl: int | None = None  # smallest TTL of those rrsets
    latency_ms: float | None = None
    flags: tuple[str, ...] = ()
    error: QueryError | None = None  # None: a DNS answer came (see ``rcode``)
    error_detail: str | None = None
    icmp_from: str | None = None  # who sent the ICMP error, when there was one
    cnames: tuple[str, ...] = ()
    soa: Soa | None = None  # authority SOA of a negative answer: which zone answered
    nsid: str | None = None  # EDNS NSID (RFC 5001): which backend instance answered
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    __json_properties__ = ("answered", "nodata")

    @property
    def answered(self) -> bool:
        """A DNS answer came (any rcode)."""
        return self.rcode is not None

    @property
    def nodata(self) -> bool:
        """NOERROR without a record of the type (RFC 2308 2.2)."""
        return self.rcode == Rcode.NOERROR and not self.answers

    @property
    def has_answers(self) -> bool:
        """NOERROR with records of the type."""
        return self.rcode == Rcode.NOERROR and bool(self.answers)

    @property
    def truncated(self) -> bool:
        """The TC bit: the answer did not fit the UDP payload (RFC 1035 4.1.1)."""
        return "tc" in self.flags

    def outcome(self) -> str:
        """One word for tables: the rcode, NODATA, or the error."""
        if self.rcode is None:
            return self.error or "no-answer"
        if self.nodata:
            return "NODATA"
        return self.rcode


def _flags(msg: dns.message.Message) -> tuple[str, ...]:
    text = dns.flags.to_text(msg.flags).lower().split()
    return tuple(text)


class _Question(TypedDict):
    """The fields every QueryResult of one question shares."""

    server: str
    port: int
    transport: Transport
    qname: str
    qtype: str


def _extract(msg: dns.message.Message, qname: dns.name.Name,
             rdtype: int) -> tuple[tuple[str, ...], int | None, tuple[str, ...], Soa | None]:
    """Follow the CNAME chain in the answer section (RFC 1034 3.6.2) and collect the
    rdata of the asked type at its end."""
    answers: list[str] = []
    cnames: list[str] = []
    ttls: list[int] = []
    owner = qname
    seen = set()
    for _ in range(16):  # bounded: a CNAME loop in a hostile answer must not spin
        if owner in seen:
            break
        seen.add(owner)
        target = None
        for rrset in msg.answer:
            if rrset.name != owner:
                continue
            if rrset.rdtype == rdtype:
                answers.extend(r.to_text() for r in rrset)
                ttls.append(rrset.ttl)
            elif rrset.rdtype == dns.rdatatype.CNAME and rdtype != dns.rdatatype.CNAME:
                target = rrset[0].target
                cnames.append(target.to_text())
                ttls.append(rrset.ttl)
        if answers or target is None:
            break
        owner = target
    soa = None
    for rrset in msg.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            r = rrset[0]
            soa = Soa(rrset.name.to_text(), r.mname.to_text(), int(r.serial), int(r.minimum), rrset.ttl)
            break
    return tuple(answers), (min(ttls) if ttls else None), tuple(cnames), soa


def _nsid(msg: dns.message.Message) -> str | None:
    for opt in msg.options or ():
        if opt.otype == dns.edns.OptionType.NSID:
            raw = opt.to_wire() if not hasattr(opt, "data") else opt.data
            try:
                text = bytes(raw).decode("ascii")
                return text if text.isprintable() else bytes(raw).hex()
            except UnicodeDecodeError:
                return bytes(raw).hex()
    return None


def make_query(qname: str, qtype: str, *, edns: bool = True) -> dns.message.QueryMessage:
    """A recursive query for QNAME/QTYPE; with EDNS (1232 bytes) asking for the NSID."""
    options: list[dns.edns.Option] | None = [dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")] \
        if edns else None
    return dns.message.make_query(qname, qtype, use_edns=0 if edns else False,
                                  payload=EDNS_PAYLOAD, options=options)


def query(server: str, qname: str, qtype: str, transport: Transport, timeout: float, *,
          port: int = 53, edns: bool = True) -> QueryResult:
    """Ask once. Never raises for network outcomes; ``timeout`` bounds the whole call."""
    base = _Question(server=server, port=port, transport=transport, qname=qname, qtype=qtype)
    if timeout <= 0:
        return QueryResult(**base, error=QueryError.DEADLINE, error_detail="not sent: the deadline had passed")
    q = make_query(qname, qtype, edns=edns)
    if transport == Transport.TCP:
        res = _query_tcp(q, server, port, timeout, base)
    else:
        res = _query_udp(q, server, port, timeout, base)
    # RFC 6891 7: a server that does not know EDNS may answer FORMERR; ask again without.
    if edns and res.rcode == Rcode.FORMERR:
        spent = (res.latency_ms or 0.0) / 1000.0
        return query(server, qname, qtype, transport, timeout - spent, port=port, edns=False)
    return res


def _interrupted(base: _Question, t0: float) -> QueryResult:
    """A query cut by SIGINT/SIGTERM is not the server's fault: it is reported like one the
    deadline cut ("deadline"), which no rule counts against the server."""
    return QueryResult(**base, error=QueryError.DEADLINE,
                       error_detail=f"interrupted ({signals.describe()}) {time.monotonic() - t0:.1f} s "
                                    "after sending, before an answer")


def _wait(sock: socket.socket, end: float, *, write: bool = False) -> bool | None:
    """Wait until ``sock`` is readable (writable) or ``end``, in slices so that a stop
    request is seen within signals.TICK_S. True: ready; False: timed out; None: stopped."""
    while True:
        if signals.stopped():
            return None
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, w, _ = select.select([] if write else [sock], [sock] if write else [], [], signals.tick(left))
        if r or w:
            return True


def _send_all(sock: socket.socket, data: bytes, end: float) -> bool:
    """All of ``data`` on a non-blocking TCP socket by ``end``; False when stopped; raises
    dns.exception.Timeout at the end."""
    sent = 0
    while sent < len(data):
        try:
            sent += sock.send(data[sent:])
            continue
        except BlockingIOError:
            pass
        ready = _wait(sock, end, write=True)
        if ready is None:
            return False
        if not ready:
            raise dns.exception.Timeout
    return True


def _recv_exact(sock: socket.socket, n: int, end: float) -> bytes | None:
    """n bytes from a non-blocking TCP socket by ``end``; None when stopped; raises
    dns.exception.Timeout at the end, EOFError when the peer closes early."""
    buf = bytearray()
    while len(buf) < n:
        ready = _wait(sock, end)
        if ready is None:
            return None
        if not ready:
            raise dns.exception.Timeout
        try:
            chunk = sock.recv(n - len(buf))
        except BlockingIOError:
            continue
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _family(server: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(server.split("%")[0]).version == 6 else socket.AF_INET


def _sockaddr(server: str, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
    """The socket address for ``server``. A link-local IPv6 nameserver (``fe80::1%eth0``,
    as NodeLocal DNSCache may listen in IPv6 clusters) needs its scope as the numeric
    sin6_scope_id: a bare 2-tuple connect() fails with EINVAL. AI_NUMERICHOST: no lookup."""
    if "%" in server:
        try:
            addr = socket.getaddrinfo(server, port, socket.AF_INET6, socket.SOCK_DGRAM, 0,
                                      socket.AI_NUMERICHOST)[0][4]
            if len(addr) == 4:  # (host, port, flowinfo, scope_id)
                return (str(addr[0]), int(addr[1]), int(addr[2]), int(addr[3]))
        except socket.gaierror:
            pass  # an unknown interface: connect() reports it as a local error
    return (server, port)


def _from_icmp(base: _Question, t0: float, errs: list[IcmpError], err: int) -> QueryResult:
    latency = (time.monotonic() - t0) * 1000.0
    if errs:
        e = errs[0]
        return QueryResult(**base, error=QueryError(e.kind), error_detail=e.describe(), icmp_from=e.offender,
                           latency_ms=latency)
    return QueryResult(**base, error=QueryError(errno_kind(err)),
                       error_detail=f"{errno.errorcode.get(err, err)}: {os.strerror(err)}",
                       latency_ms=latency)


def _answer(base: _Question, q: dns.message.Message, r: dns.message.Message, latency: float) -> QueryResult:
    rdtype = q.question[0].rdtype
    answers, ttl, cnames, soa = _extract(r, q.question[0].name, rdtype)
    return QueryResult(**base, rcode=dns.rcode.to_text(r.rcode()), answers=answers, ttl=ttl,
                       latency_ms=latency, flags=_flags(r), cnames=cnames, soa=soa, nsid=_nsid(r))


def _query_udp(q: dns.message.Message, server: str, port: int, timeout: float, base: _Question) -> QueryResult:
    wire = q.to_wire()
    t0 = time.monotonic()
    end = t0 + timeout
    sock = socket.socket(_family(server), socket.SOCK_DGRAM)
    try:
        enable_recverr(sock)
        sock.setblocking(False)
        try:
            sock.connect(_sockaddr(server, port))
            sock.send(wire)
        except OSError as exc:
            return _from_icmp(base, t0, read_errqueue(sock), exc.errno or 0)
        mismatched = 0
        while True:
            ready = _wait(sock, end)
            if ready is None:
                return _interrupted(base, t0)
            if not ready:
                detail = "no answer within %.1f s" % timeout
                if mismatched:
                    detail += f" ({mismatched} unrelated datagrams ignored)"
                return QueryResult(**base, error=QueryError.TIMEOUT, error_detail=detail)
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                continue
            except OSError as exc:
                # With IP_RECVERR even soft errors (host/net unreachable, RFC 1122
                # 4.2.3.9) surface here; glibc, without it, would wait out its timeout.
                return _from_icmp(base, t0, read_errqueue(sock), exc.errno or 0)
            latency = (time.monotonic() - t0) * 1000.0
            try:
                r = dns.message.from_wire(data, ignore_trailing=True)
            except dns.exception.DNSException as exc:
                return QueryResult(**base, error=QueryError.MALFORMED, error_detail=f"undecodable reply: {exc}",
                                   latency_ms=latency)
            if not q.is_response(r):
                mismatched += 1  # a late answer to someone else's id: keep waiting
                continue
            return _answer(base, q, r, latency)
    finally:
        sock.close()


def _query_tcp(q: dns.message.Message, server: str, port: int, timeout: float, base: _Question) -> QueryResult:
    t0 = time.monotonic()
    end = t0 + timeout
    sock = socket.socket(_family(server), socket.SOCK_STREAM)
    try:
        enable_recverr(sock)
        sock.setblocking(False)
        err = sock.connect_ex(_sockaddr(server, port))
        if err not in (0, errno.EINPROGRESS):
            return _from_icmp(base, t0, read_errqueue(sock), err)
        writable = _wait(sock, end, write=True)
        if writable is None:
            return _interrupted(base, t0)
        if not writable:
            return QueryResult(**base, error=QueryError.TIMEOUT,
                               error_detail=f"TCP connect: no SYN-ACK within {timeout:.1f} s")
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            errs = read_errqueue(sock)
            if err == errno.ECONNREFUSED and not errs:
                return QueryResult(**base, error=QueryError.REFUSED, error_detail="TCP connect refused (RST)",
                                   latency_ms=(time.monotonic() - t0) * 1000.0)
            return _from_icmp(base, t0, errs, err)
        try:
            # RFC 1035 4.2.2 framing written and read here rather than by dns.query's
            # send_tcp/receive_tcp: receive_tcp's one blocking wait would not notice
            # SIGINT/SIGTERM until the whole timeout ran out, and importing dns.query (ssl,
            # QUIC, HTTP) costs ~8 ms of every diagnose for a two-byte length prefix.
            if not _send_all(sock, q.to_wire(prepend_length=True), end):
                return _interrupted(base, t0)
            head = _recv_exact(sock, 2, end)
            body = _recv_exact(sock, struct.unpack("!H", head)[0], end) if head is not None else None
            if body is None:
                return _interrupted(base, t0)
            r = dns.message.from_wire(body, ignore_trailing=True)
        except dns.exception.Timeout:
            return QueryResult(**base, error=QueryError.TIMEOUT,
                               error_detail=f"TCP connected but no answer within {timeout:.1f} s")
        except EOFError:
            return QueryResult(**base, error=QueryError.RESET,
                               error_detail="server closed the TCP connection without answering",
                               latency_ms=(time.monotonic() - t0) * 1000.0)
        except ConnectionResetError:
            return QueryResult(**base, error=QueryError.RESET,
                               error_detail="TCP connection reset (RST) before an answer",
                               latency_ms=(time.monotonic() - t0) * 1000.0)
        except OSError as exc:
            return _from_icmp(base, t0, read_errqueue(sock), exc.errno or 0)
        except dns.exception.DNSException as exc:
            return QueryResult(**base, error=QueryError.MALFORMED, error_detail=f"undecodable reply: {exc}",
                               latency_ms=(time.monotonic() - t0) * 1000.0)
        latency = (time.monotonic() - t0) * 1000.0
        if not q.is_response(r):
            return QueryResult(**base, error=QueryError.MALFORMED, error_detail="reply does not match the question",
                               latency_ms=latency)
        return _answer(base, q, r, latency)
    finally:
        sock.close()
