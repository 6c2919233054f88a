"""Link layers that wrap an IP packet in metadata: NFLOG, PKTAP, PPP and Cisco HDLC.

``peel`` reads one such frame and says where the IP packet (or the inner frame) starts and,
where the header holds it, who saw the packet: the NFLOG group and the rule's prefix string
(``iptables -j NFLOG --nflog-group 5 --nflog-prefix dns-drop`` shows which rule copied it),
or PKTAP's interface and process. The decoder keeps that per origin (``Decoder.origins``).

Nothing here raises on packet content: damage is returned as a reason string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

_Order = Literal["little", "big"]

LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50
LINKTYPE_C_HDLC = 104
LINKTYPE_USER2_PKTAP = 149  # Apple's DLT_PKTAP is DLT_USER2; libpcap on macOS writes 149
LINKTYPE_PKTAP = 258
LINKTYPE_NFLOG = 239
LINKTYPES = {
    LINKTYPE_PPP: "ppp", LINKTYPE_PPP_HDLC: "ppp-hdlc", LINKTYPE_C_HDLC: "cisco-hdlc",
    LINKTYPE_USER2_PKTAP: "pktap", LINKTYPE_PKTAP: "pktap", LINKTYPE_NFLOG: "nflog",
}

# PPP protocol numbers (RFC 1332 IPCP/IPv4, RFC 5072 IPv6, RFC 3032 MPLS) -> ethertype
_PPP_PROTO = {0x0021: 0x0800, 0x0057: 0x86DD, 0x0281: 0x8847, 0x0283: 0x8848}

# NFLOG TLV types (linux include/uapi/linux/netfilter/nfnetlink_log.h, enum nfulnl_attr_type)
_NFULA_PAYLOAD = 9
_NFULA_PREFIX = 10
_NFULA_UID = 11
_NFLOG_TLV_TYPE_MASK = 0x3FFF  # NLA_F_NESTED / NLA_F_NET_BYTEORDER are the top two bits
_NFLOG_MAX_TYPE = 0x40  # far above the last attribute defined (NFULA_L2HDR = 21)

# struct pktap_header (Apple xnu bsd/net/pktap.h; libpcap pcap/pktap.h): fields in the
# writer's byte order, which is little-endian on every Mac that writes them.
_PKTAP_MIN = 108  # the v1 header (up to pth_ecomm) as libpcap writes it
_PKTAP_DLT, _PKTAP_IFNAME, _PKTAP_PID, _PKTAP_COMM = 8, 12, 52, 56
_IFNAMSIZ, _COMMSIZ = 24, 17


@dataclass(frozen=True, slots=True)
class Peeled:
    """Where the payload of a wrapped frame starts: an ethertype's payload at ``off``
    (``et``; 0 = not IP) or an inner frame of link type ``inner`` (PKTAP), and who saw it."""

    et: int
    off: int
    inner: int | None = None
    origin: str | None = None


def peel(linktype: int, d: bytes) -> Peeled | str:
    """The payload's start in a frame of one of ``LINKTYPES``, or why it has none."""
    if linktype == LINKTYPE_NFLOG:
        return nflog(d)
    if linktype in (LINKTYPE_PKTAP, LINKTYPE_USER2_PKTAP):
        return pktap(d)
    if linktype == LINKTYPE_PPP:
        return ppp(d)
    return hdlc(d)


def ppp(d: bytes, off: int = 0) -> Peeled | str:
    """LINKTYPE_PPP: an optional FF 03 address/control pair (RFC 1662 framing), then the
    protocol, one octet when compressed (RFC 1661 section 6.5: an odd first octet)."""
    n = len(d)
    if off + 2 <= n and d[off] == 0xFF and d[off + 1] == 0x03:
        off += 2
    if off >= n:
        return "short PPP header"
    if d[off] & 1:
        proto, off = d[off], off + 1
    elif off + 2 <= n:
        proto, off = (d[off] << 8) | d[off + 1], off + 2
    else:
        return "short PPP header"
    return Peeled(_PPP_PROTO.get(proto, 0), off)


def hdlc(d: bytes) -> Peeled | str:
    """LINKTYPE_PPP_HDLC (PPP in HDLC-like framing, first octet FF; or Cisco PPP with HDLC
    framing, first octet 0F/8F, RFC 1547 section 4.3.1) and LINKTYPE_C_HDLC: Cisco's
    address/control octets are followed by an ethertype."""
    if len(d) < 4:
        return "short HDLC header"
    if d[0] == 0xFF:
        return ppp(d)
    if d[0] in (0x0F, 0x8F):
        return Peeled((d[2] << 8) | d[3], 4)
    return "unknown HDLC address"


def nflog(d: bytes) -> Peeled | str:
    """LINKTYPE_NFLOG: a 4-octet header (address family, version, the group in network
    order) and netlink TLVs, each padded to 4 octets. The TLV lengths and types are in
    the byte order of the host that captured: guessed from the first TLV."""
    n = len(d)
    if n < 8:
        return "short NFLOG header"
    group = (d[2] << 8) | d[3]
    order = _tlv_order(d)
    p = 4
    payload: int | None = None
    prefix = ""
    uid: int | None = None
    while p + 4 <= n:
        ln = int.from_bytes(d[p:p + 2], order)
        tp = int.from_bytes(d[p + 2:p + 4], order) & _NFLOG_TLV_TYPE_MASK
        if ln < 4:
            return "bad NFLOG TLV length"
        if tp == _NFULA_PAYLOAD:
            payload = p + 4  # the last TLV; the snap length may cut it, the IP header bounds it
        elif tp == _NFULA_PREFIX:
            prefix = _cstr(d[p + 4:min(n, p + ln)])
        elif tp == _NFULA_UID and ln >= 8 and p + 8 <= n:
            uid = int.from_bytes(d[p + 4:p + 8], "big")  # __be32 (nfnetlink_log.c)
        p += (ln + 3) & ~3
    if payload is None:
        return "NFLOG frame without a payload"
    v = d[payload] >> 4 if payload < n else 0
    et = 0x0800 if v == 4 else 0x86DD if v == 6 else 0
    origin = f"NFLOG group {group}" + (f", prefix {prefix!r}" if prefix else "")
    if uid is not None:
        origin += f", socket uid {uid}"
    return Peeled(et, payload, origin=origin)


def _tlv_order(d: bytes) -> _Order:
    """The byte order that makes the first TLV plausible (a length within the frame and a
    known attribute type); little-endian when both or neither do (x86, arm64 nodes)."""
    order: _Order
    for order in ("little", "big"):
        ln = int.from_bytes(d[4:6], order)
        tp = int.from_bytes(d[6:8], order) & _NFLOG_TLV_TYPE_MASK
        if 4 <= ln <= len(d) - 4 and 0 < tp < _NFLOG_MAX_TYPE:
            return order
    return "little"


def pktap(d: bytes) -> Peeled | str:
    """LINKTYPE_PKTAP / USER2: Apple's header (its own length first), then a frame of the
    link type in ``pth_dlt``; the interface and, when the kernel knew it, the process."""
    n = len(d)
    if n < _PKTAP_MIN:
        return "short PKTAP header"
    order: _Order = "little"
    hl = int.from_bytes(d[0:4], order)
    if not _PKTAP_MIN <= hl <= n:
        order = "big"
        hl = int.from_bytes(d[0:4], order)
        if not _PKTAP_MIN <= hl <= n:
            return "bad PKTAP header length"
    inner = int.from_bytes(d[_PKTAP_DLT:_PKTAP_DLT + 4], order)
    if inner in (LINKTYPE_PKTAP, LINKTYPE_USER2_PKTAP):
        return "PKTAP inside PKTAP"
    ifname = _cstr(d[_PKTAP_IFNAME:_PKTAP_IFNAME + _IFNAMSIZ])
    pid = int.from_bytes(d[_PKTAP_PID:_PKTAP_PID + 4], order, signed=True)
    comm = _cstr(d[_PKTAP_COMM:_PKTAP_COMM + _COMMSIZ])
    origin = f"PKTAP {ifname or '?'}"
    if comm:
        origin += f", process {comm} (pid {pid})" if pid > 0 else f", process {comm}"
    return Peeled(0, hl, inner=inner, origin=origin)


def _cstr(b: bytes) -> str:
    """A NUL-terminated string field, printable or escaped."""
    s = b.split(b"\0", 1)[0].decode("utf-8", "replace")
    return s if s.isprintable() else s.encode("unicode_escape").decode("ascii")
