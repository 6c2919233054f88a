"""DNS wire format (RFC 1035 4.1): the header, names with compression pointers, the first
question, on a fast path of our own; and, for responses, the record sections read the way
a stub resolver reads them (``inspect_response``): the A/AAAA answers glibc would take, the
EDNS OPT record's extended rcode (RFC 6891 6.1.3), and damage that makes the answer unusable.

DESIGN.md measured dnspython's ``from_wire`` at ~4k packets/s and scapy's DNS layer at
~1.5k: both far below a busy resolver's rate. The header and the question are read with
``struct``-free byte indexing (about ten times faster); answer records are decoded only on
demand and only for A/AAAA (``DnsEvent.addresses``).

Nothing here guesses: damage raises ``DnsParseError``, which the decoder turns into a
``Malformed`` event.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Final

from toolkit.dns.transport import Transport as Transport

MAX_LABELS = 128
MAX_POINTER_JUMPS = 16

_inet_ntop = socket.inet_ntop
_AF4 = socket.AF_INET
_AF6 = socket.AF_INET6


class QType(IntEnum):
    """The question types podtriage reasons about (RFC 1035 3.2.2, RFC 3596)."""

    A = 1
    AAAA = 28


class Rcode(IntEnum):
    """Response codes (RFC 1035 4.1.1, RFC 2136 2.2)."""

    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    YXDOMAIN = 6
    YXRRSET = 7
    NXRRSET = 8
    NOTAUTH = 9
    NOTZONE = 10
    # Extended rcodes (RFC 6891 6.1.3: the OPT record's upper 8 bits above the header's 4):
    # BADVERS (RFC 6891; BADSIG in a TSIG record, RFC 8945), RFC 2930, RFC 4635, RFC 7873.
    BADVERS = 16
    BADKEY = 17
    BADTIME = 18
    BADMODE = 19
    BADNAME = 20
    BADALG = 21
    BADTRUNC = 22
    BADCOOKIE = 23


# Members as module names: the hot paths compare against these (an enum class attribute
# lookup costs ~150 ns in CPython 3.11, a global ~20 ns).
QTYPE_A, QTYPE_AAAA = QType.A, QType.AAAA
RCODE_NOERROR, RCODE_NXDOMAIN = Rcode.NOERROR, Rcode.NXDOMAIN
UDP, TCP = Transport.UDP, Transport.TCP

# Header flag bits (RFC 1035 4.1.1): the 16-bit word after the ID.
FLAG_QR = 0x8000  # a response
FLAG_AA = 0x0400
FLAG_TC = 0x0200
RCODE_MASK = 0x000F
QTYPE_CNAME = 5
QTYPE_OPT = 41

QTYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
               33: "SRV", 35: "NAPTR", 41: "OPT", 43: "DS", 46: "RRSIG", 48: "DNSKEY", 64: "SVCB",
               65: "HTTPS", 252: "AXFR", 255: "ANY", 257: "CAA"}
RCODE_NAMES = {r.value: r.name for r in Rcode}


def qtype_name(qtype: int) -> str:
    """The mnemonic of a question type (``TYPE65280`` for one without a name, RFC 3597)."""
    return QTYPE_NAMES.get(qtype) or f"TYPE{qtype}"


def rcode_name(rcode: int) -> str:
    """The mnemonic of a response code (``RCODE12`` for one without a name)."""
    return RCODE_NAMES.get(rcode) or f"RCODE{rcode}"


class DnsParseError(ValueError):
    """The bytes on a DNS port are not a DNS message podtriage can read."""


_JSON_PROPERTIES = ("is_response", "rcode_name", "qtype_name", "tc")


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsEvent:
    """One DNS message seen on the wire (query or response)."""

    ts: float  # seconds since the epoch (capture time of the frame that completed it)
    src: str
    dst: str
    sport: int
    dport: int
    transport: Transport
    txid: int
    flags: int  # the 16-bit flags word of the header
    qname: str | None  # as on the wire (case kept), no trailing dot; "." for the root
    qtype: int
    qclass: int
    qdcount: int
    ancount: int
    records: int = 0  # records after the question: answer + authority + additional counts
    _wire: bytes = b""
    _aoff: int = 0  # offset of the answer section in _wire

    @property
    def __json_properties__(self) -> tuple[str, ...]:
        """The derived properties the JSON shows (toolkit.model.to_jsonable). A property, not
        a class attribute: mypyc makes a dataclass's class attribute, even a ClassVar, a field."""
        return _JSON_PROPERTIES

    @property
    def is_response(self) -> bool:
        """QR: a response, not a query."""
        return bool(self.flags & FLAG_QR)

    @property
    def rcode(self) -> int:
        """The header's four rcode bits (``inspect_response`` adds the EDNS extension)."""
        return self.flags & RCODE_MASK

    @property
    def rcode_name(self) -> str:
        """The response code's mnemonic, extended by an OPT record when there is one."""
        if self.qdcount <= 1 and self.is_response:
            return rcode_name(self.inspect(addresses=False).rcode)
        return rcode_name(self.flags & RCODE_MASK)

    @property
    def qtype_name(self) -> str:
        """The question type's mnemonic."""
        return qtype_name(self.qtype)

    @property
    def opcode(self) -> int:
        """The header's OPCODE (0: a standard query)."""
        return (self.flags >> 11) & 0xF

    @property
    def tc(self) -> bool:
        """TC: the answer was truncated (retry over TCP, RFC 7766)."""
        return bool(self.flags & FLAG_TC)

    @property
    def aa(self) -> bool:
        """AA: an authoritative answer."""
        return bool(self.flags & FLAG_AA)

    def addresses(self, limit: int = 32) -> tuple[str, ...]:
        """The A and AAAA addresses a stub resolver takes from this response (owner: the
        question's name or its CNAME chain), decoded on demand."""
        if not self.ancount or not self._wire:
            return ()
        return self.inspect(limit=limit).addresses

    def inspect(self, *, addresses: bool = True, limit: int = 32) -> ResponseInfo:
        """The record sections read as a stub resolver reads them (``inspect_response``)."""
        return inspect_response(self._wire, self._aoff, self.qname, addresses=addresses, limit=limit)


# DnsEvent is built once per DNS packet, the hottest allocation of the capture. The frozen
# dataclass's generated __init__ sets each of its 16 fields through object.__setattr__ with
# keyword arguments: 29.6k instructions per event (callgrind, CPython 3.11), where setting
# the slots through their descriptors costs 12.4k. parse_dns does the latter; everyone
# else builds events with keywords. The field order is checked here, at import.
_EVENT_FIELDS = ("ts", "src", "dst", "sport", "dport", "transport", "txid", "flags", "qname", "qtype", "qclass",
                 "qdcount", "ancount", "records", "_wire", "_aoff")
if tuple(f.name for f in fields(DnsEvent)) != _EVENT_FIELDS:
    raise TypeError("DnsEvent's fields changed: update _EVENT_FIELDS and parse_dns")
_new_event = DnsEvent.__new__  # object.__new__ itself refuses a mypyc-compiled class
(_set_ts, _set_src, _set_dst, _set_sport, _set_dport, _set_transport, _set_txid, _set_flags, _set_qname, _set_qtype,
 _set_qclass, _set_qdcount, _set_ancount, _set_records, _set_wire, _set_aoff) = (
    vars(DnsEvent)[n].__set__ for n in _EVENT_FIELDS)
# Compiled by mypyc (scripts/build-mypyc), DnsEvent is a native class and a compiled function
# writes its fields straight into the object (100 ns for five fields, where the descriptors
# above, generic calls from compiled code, take 360 ns): _native_event. It assigns frozen
# fields, which only compiled code may do (the check is the class's __setattr__, which a
# native assignment does not go through); uncompiled, parse_dns never calls it.
_COMPILED: Final = __file__.endswith((".so", ".pyd"))


def _read_name(p: bytes, off: int) -> tuple[str, int]:
    """Decode a (possibly compressed) name at ``off``; returns (name, offset after it)."""
    n = len(p)
    labels: list[bytes] = []
    end = -1
    jumps = 0
    total = 0
    for _ in range(MAX_LABELS):
        if off >= n:
            raise DnsParseError("name runs past the end of the message")
        ln = p[off]
        if ln == 0:
            if end < 0:
                end = off + 1
            break
        if ln >= 0xC0:  # a compression pointer (RFC 1035 4.1.4): bounded, loops are damage
            if off + 1 >= n:
                raise DnsParseError("truncated compression pointer")
            if end < 0:
                end = off + 2
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                raise DnsParseError("compression pointer loop")
            off = ((ln & 0x3F) << 8) | p[off + 1]
            continue
        if ln > 63:
            raise DnsParseError(f"bad label length {ln}")
        nxt = off + 1 + ln
        if nxt > n:
            raise DnsParseError("label runs past the end of the message")
        total += ln + 1
        if total > 255:  # RFC 1035 2.3.4
            raise DnsParseError("name longer than 255 bytes")
        labels.append(p[off + 1:nxt])
        off = nxt
    else:
        raise DnsParseError("too many labels")
    if not labels:
        return ".", end
    return b".".join(labels).decode("latin-1"), end


def _skip_name(p: bytes, off: int) -> int:
    n = len(p)
    for _ in range(MAX_LABELS):
        if off >= n:
            raise DnsParseError("name runs past the end")
        ln = p[off]
        if ln == 0:
            return off + 1
        if ln >= 0xC0:
            return off + 2
        if ln > 63:
            raise DnsParseError("bad label length")
        off += ln + 1
    raise DnsParseError("too many labels")


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """A response's record sections as a stub resolver reads them."""

    rcode: int  # the header's four bits, extended by the OPT record's eight (RFC 6891 6.1.3)
    addresses: tuple[str, ...] = ()  # A/AAAA rdata owned by the question's name or its CNAME chain
    damage: str | None = None  # why the answer section cannot be read: a stub resolver fails it
    edns: bool = False  # an OPT record was read


_MIN_RR = 11  # a record is at least a root owner (1), type, class, TTL and rdlength (10)
_BARE = tuple(ResponseInfo(rcode=r) for r in range(16))  # a response without records, by rcode


def _skip_rr(p: bytes, off: int) -> int:
    off = _skip_name(p, off)
    if off + 10 > len(p):
        raise DnsParseError("record runs past the end of the message")
    off += 10 + ((p[off + 8] << 8) | p[off + 9])
    if off > len(p):
        raise DnsParseError("record data runs past the end of the message")
    return off


def _answers(p: bytes, off: int, an: int, qname: str | None, want: bool, limit: int) -> tuple[list[str], int]:
    """Walk the answer section as glibc's getanswer does: every owner name expanded (a
    pointer loop, or a pointer out of the message, is damage: ns_name_unpack fails and so
    does the lookup), A/AAAA taken only from the question's name or a name its CNAME
    records lead to (the others are skipped, as glibc skips them)."""
    n = len(p)
    owners = {qname.lower()} if qname else set()
    out: list[str] = []
    for _ in range(an):
        if off + 1 < n and p[off] == 0xC0 and p[off + 1] == 0x0C and qname:
            ok, off = True, off + 2  # a pointer to the question's name (offset 12): the usual owner
        else:
            owner, off = _read_name(p, off)
            ok = owner.lower() in owners
        if off + 10 > n:
            raise DnsParseError("answer record runs past the end of the message")
        rtype = (p[off] << 8) | p[off + 1]
        rdlen = (p[off + 8] << 8) | p[off + 9]
        off += 10
        if off + rdlen > n:
            raise DnsParseError("answer data runs past the end of the message")
        if ok:
            if rtype == QTYPE_CNAME:
                target, _end = _read_name(p, off)
                if len(owners) < 16:
                    owners.add(target.lower())
            elif want and len(out) < limit:
                if rtype == QTYPE_A and rdlen == 4:
                    out.append(_inet_ntop(_AF4, p[off:off + 4]))
                elif rtype == QTYPE_AAAA and rdlen == 16:
                    out.append(_inet_ntop(_AF6, p[off:off + 16]))
        off += rdlen
    return out, off


def inspect_response(p: bytes, off: int, qname: str | None, *, addresses: bool = True,
                     limit: int = 32) -> ResponseInfo:
    """Read a response's answer, authority and additional sections from ``off`` (the end of
    its question): the addresses a stub resolver takes, the EDNS extended rcode, and damage
    in the answer section (then no address is trusted). Damage after the answers (authority,
    additional) leaves the answers usable, as it does for glibc, which never reads them."""
    if len(p) < 12:
        return ResponseInfo(rcode=0, damage="short DNS header")
    rcode = p[3] & RCODE_MASK
    an = (p[6] << 8) | p[7]
    ns = (p[8] << 8) | p[9]
    ar = (p[10] << 8) | p[11]
    if not (an or ns or ar):
        return _BARE[rcode]
    if off < 12:
        return ResponseInfo(rcode=rcode, damage="damaged question section")
    room = len(p) - off
    if an * _MIN_RR > room:
        return ResponseInfo(rcode=rcode, damage=f"{an} answer records cannot fit in the {room} bytes after "
                            "the question")
    try:
        out, off = _answers(p, off, an, qname, addresses, limit)
    except (DnsParseError, IndexError) as exc:
        why = exc if isinstance(exc, DnsParseError) else "record runs past the end of the message"
        return ResponseInfo(rcode=rcode, damage=f"answer section: {why}")
    edns = False
    if (ns + ar) * _MIN_RR <= len(p) - off:
        try:
            for _ in range(ns):
                off = _skip_rr(p, off)
            for _ in range(ar):
                if off + 11 <= len(p) and p[off] == 0 and p[off + 1] == 0 and p[off + 2] == QTYPE_OPT:
                    rcode |= p[off + 5] << 4  # the TTL's first byte: EXTENDED-RCODE (RFC 6891 6.1.3)
                    edns = True
                    break
                off = _skip_rr(p, off)
        except DnsParseError:
            pass  # past the answers: a stub resolver never reads this far for A/AAAA
    return ResponseInfo(rcode=rcode, addresses=tuple(out), edns=edns)


# Question names repeat (a query and its response, retries, popular names): a bounded cache
# from the name's wire bytes to its text skips the label walk. Only names without
# compression pointers that end at the first zero byte are cached, so the key (the bytes up
# to that zero byte) determines the result exactly. Any length byte of 0xC0 or more is a
# pointer (RFC 1035 4.1.4: the two top bits; 0xC1 0x05 points to offset 0x105): such a name
# depends on bytes outside the key and is never cached.
_NAME_CACHE: dict[bytes, str] = {}
_NAME_CACHE_MAX = 8192


def _plain_labels(raw: bytes) -> bool:
    """``raw`` (a name's bytes up to and including its zero byte) is labels only."""
    i, n = 0, len(raw) - 1
    while i < n:
        ln = raw[i]
        if ln > 63:
            return False
        i += ln + 1
    return i == n


def _question_name(p: bytes) -> tuple[str, int]:
    z = p.find(0, 12)
    if z > 12:
        raw = p[12:z + 1]
        name = _NAME_CACHE.get(raw)
        if name is not None:
            return name, z + 1
        name, off = _read_name(p, 12)
        if off == z + 1 and _plain_labels(raw):
            if len(_NAME_CACHE) >= _NAME_CACHE_MAX:
                _NAME_CACHE.clear()
            _NAME_CACHE[raw] = name
        return name, off
    return _read_name(p, 12)


def parse_dns(p: bytes, ts: float, src: str, dst: str, sport: int, dport: int,
              transport: Transport) -> DnsEvent:
    """Header and first question of a DNS message; raises DnsParseError."""
    if len(p) < 12:
        raise DnsParseError(f"short DNS header ({len(p)} bytes)")
    qd = (p[4] << 8) | p[5]
    an = (p[6] << 8) | p[7]
    qname: str | None
    if qd:
        qname, off = _question_name(p)
        if off + 4 > len(p):
            raise DnsParseError("truncated question")
        qtype = (p[off] << 8) | p[off + 1]
        qclass = (p[off + 2] << 8) | p[off + 3]
        off += 4
        if qd > 1:  # rare (never in practice); skip the others to find the answers
            try:
                for _ in range(min(qd - 1, 64)):
                    off = _skip_name(p, off) + 4
            except DnsParseError:
                an, off = 0, -1
    else:
        qname, qtype, qclass, off = None, 0, 0, 12
    if _COMPILED:
        return _native_event(ts, src, dst, sport, dport, transport, (p[0] << 8) | p[1], (p[2] << 8) | p[3], qname,
                             qtype, qclass, qd, an, an + ((p[8] << 8) | p[9]) + ((p[10] << 8) | p[11]), p, off)
    ev: DnsEvent = _new_event(DnsEvent)  # see _EVENT_FIELDS: the same values DnsEvent(...) would set
    _set_ts(ev, ts)
    _set_src(ev, src)
    _set_dst(ev, dst)
    _set_sport(ev, sport)
    _set_dport(ev, dport)
    _set_transport(ev, transport)
    _set_txid(ev, (p[0] << 8) | p[1])
    _set_flags(ev, (p[2] << 8) | p[3])
    _set_qname(ev, qname)
    _set_qtype(ev, qtype)
    _set_qclass(ev, qclass)
    _set_qdcount(ev, qd)
    _set_ancount(ev, an)
    _set_records(ev, an + ((p[8] << 8) | p[9]) + ((p[10] << 8) | p[11]))
    _set_wire(ev, p)
    _set_aoff(ev, off)
    return ev


def _native_event(ts: float, src: str, dst: str, sport: int, dport: int, transport: Transport, txid: int,
                  flags: int, qname: str | None, qtype: int, qclass: int, qd: int, an: int, records: int, wire: bytes,
                  aoff: int) -> DnsEvent:
    """parse_dns's event when compiled (see _COMPILED): the same values DnsEvent(...) would set."""
    ev: DnsEvent = _new_event(DnsEvent)
    ev.ts = ts  # type: ignore[misc]
    ev.src = src  # type: ignore[misc]
    ev.dst = dst  # type: ignore[misc]
    ev.sport = sport  # type: ignore[misc]
    ev.dport = dport  # type: ignore[misc]
    ev.transport = transport  # type: ignore[misc]
    ev.txid = txid  # type: ignore[misc]
    ev.flags = flags  # type: ignore[misc]
    ev.qname = qname  # type: ignore[misc]
    ev.qtype = qtype  # type: ignore[misc]
    ev.qclass = qclass  # type: ignore[misc]
    ev.qdcount = qd  # type: ignore[misc]
    ev.ancount = an  # type: ignore[misc]
    ev.records = records  # type: ignore[misc]
    ev._wire = wire  # type: ignore[misc]
    ev._aoff = aoff  # type: ignore[misc]
    return ev
