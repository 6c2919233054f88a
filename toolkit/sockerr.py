"""ICMP errors read from a socket's error queue, without raw sockets.

With IP_RECVERR (IPV6_RECVERR) set, the kernel queues every ICMP error about a socket's
traffic as a ``struct sock_extended_err`` followed by the offender's address (ip(7),
"IP_RECVERR"). That turns a bare errno into the exact ICMP type/code and the router that
sent it, unprivileged. Without the option an *unconnected* UDP socket never sees ICMP at
all, and a connected one sees only ECONNREFUSED for port-unreachable (RFC 1122 4.1.3.3);
``connect()`` returns the same EHOSTUNREACH for host-unreachable and admin-prohibited.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass
from enum import StrEnum

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)

SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3


class IcmpOrigin(StrEnum):
    """Who queued an extended error (ee_origin, linux/errqueue.h): an ICMP or ICMPv6
    message from the network, or the local stack."""

    ICMP = "icmp"
    ICMP6 = "icmp6"
    LOCAL = "local"


class NetError(StrEnum):
    """What the socket layer saw instead of an answer: the one ICMP/errno table's words,
    shared by DNS queries (toolkit.dns.query.QueryError) and probes (ProbeOutcome)."""

    PORT_UNREACHABLE = "port-unreachable"
    PROTOCOL_UNREACHABLE = "protocol-unreachable"
    HOST_UNREACHABLE = "host-unreachable"
    NET_UNREACHABLE = "net-unreachable"
    ADMIN_PROHIBITED = "admin-prohibited"
    TTL_EXCEEDED = "ttl-exceeded"
    FRAG_NEEDED = "frag-needed"
    UNREACHABLE = "unreachable"  # other ICMP unreachable codes
    RESET = "reset"
    TIMEOUT = "timeout"
    LOCAL_ERROR = "local-error"


_EE = struct.Struct("=IBBBBII")  # ee_errno, ee_origin, ee_type, ee_code, ee_pad, ee_info, ee_data


@dataclass(frozen=True)
class IcmpError:
    """One ICMP error as the kernel reported it to the socket."""

    errno: int
    origin: IcmpOrigin
    icmp_type: int
    icmp_code: int
    offender: str | None  # the router or host that sent the ICMP error

    @property
    def kind(self) -> NetError:
        """A stable classification shared by DNS queries and probes."""
        return classify_icmp(self.origin, self.icmp_type, self.icmp_code, self.errno)

    def describe(self) -> str:
        """One line for a query's or probe's detail: the ICMP type/code and who sent it."""
        who = f" from {self.offender}" if self.offender else ""
        if self.origin == IcmpOrigin.LOCAL:
            return f"{errno.errorcode.get(self.errno, self.errno)} (local){who}"
        version = "v6" if self.origin == IcmpOrigin.ICMP6 else ""
        return f"ICMP{version} type {self.icmp_type} code {self.icmp_code} ({self.kind}){who}"


_ICMP_UNREACHABLE = {
    0: NetError.NET_UNREACHABLE, 1: NetError.HOST_UNREACHABLE, 2: NetError.PROTOCOL_UNREACHABLE,
    3: NetError.PORT_UNREACHABLE, 4: NetError.FRAG_NEEDED, 6: NetError.NET_UNREACHABLE,
    7: NetError.HOST_UNREACHABLE, 9: NetError.ADMIN_PROHIBITED, 10: NetError.ADMIN_PROHIBITED,
    11: NetError.NET_UNREACHABLE, 12: NetError.HOST_UNREACHABLE, 13: NetError.ADMIN_PROHIBITED,
}
_ICMP6_UNREACHABLE = {
    0: NetError.NET_UNREACHABLE, 1: NetError.ADMIN_PROHIBITED, 3: NetError.HOST_UNREACHABLE,
    4: NetError.PORT_UNREACHABLE, 5: NetError.ADMIN_PROHIBITED, 6: NetError.ADMIN_PROHIBITED,
}


def classify_icmp(origin: IcmpOrigin, icmp_type: int, code: int, err: int = 0) -> NetError:
    """ICMP type/code -> one of: port-unreachable, protocol-unreachable, host-unreachable,
    net-unreachable, admin-prohibited, ttl-exceeded, frag-needed, unreachable (other codes),
    local-error. The one ICMP table of podtriage: DNS queries and probes both use it."""
    if origin == IcmpOrigin.ICMP:
        if icmp_type == 3:  # destination unreachable, RFC 792 / RFC 1812 5.2.7.1
            return _ICMP_UNREACHABLE.get(code, NetError.UNREACHABLE)
        if icmp_type == 11:
            return NetError.TTL_EXCEEDED
        return NetError.UNREACHABLE
    if origin == IcmpOrigin.ICMP6:
        if icmp_type == 1:  # RFC 4443 3.1
            return _ICMP6_UNREACHABLE.get(code, NetError.UNREACHABLE)
        if icmp_type == 3:
            return NetError.TTL_EXCEEDED
        if icmp_type == 2:
            return NetError.FRAG_NEEDED
        return NetError.UNREACHABLE
    return errno_kind(err)


def errno_kind(err: int) -> NetError:
    """What a bare errno can tell (no ICMP details): used when the queue is empty."""
    return {
        errno.ECONNREFUSED: NetError.PORT_UNREACHABLE,
        errno.EHOSTUNREACH: NetError.HOST_UNREACHABLE,
        errno.ENETUNREACH: NetError.NET_UNREACHABLE,
        errno.ECONNRESET: NetError.RESET,
        errno.ETIMEDOUT: NetError.TIMEOUT,
        errno.EACCES: NetError.ADMIN_PROHIBITED,
        errno.EPERM: NetError.ADMIN_PROHIBITED,
    }.get(err, NetError.LOCAL_ERROR)


def enable_recverr(sock: socket.socket) -> bool:
    """Ask the kernel to queue ICMP errors for this socket. Best effort."""
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        return True
    except OSError:
        return False


def _offender(raw: bytes) -> str | None:
    if len(raw) < 2:
        return None
    family = struct.unpack_from("=H", raw)[0]
    try:
        if family == socket.AF_INET and len(raw) >= 8:
            return str(ipaddress.IPv4Address(raw[4:8]))
        if family == socket.AF_INET6 and len(raw) >= 24:
            return str(ipaddress.IPv6Address(raw[8:24]))
    except ValueError:
        return None
    return None


def parse_extended_err(data: bytes) -> IcmpError | None:
    """One ``struct sock_extended_err`` (and the offender's address after it), or None
    when the control message is too short."""
    if len(data) < _EE.size:
        return None
    ee_errno, origin, itype, icode, _pad, _info, _data = _EE.unpack_from(data)
    name = {SO_EE_ORIGIN_ICMP: IcmpOrigin.ICMP, SO_EE_ORIGIN_ICMP6: IcmpOrigin.ICMP6}.get(origin, IcmpOrigin.LOCAL)
    return IcmpError(ee_errno, name, itype, icode, _offender(data[_EE.size:]))


def read_errqueue(sock: socket.socket, limit: int = 8) -> list[IcmpError]:
    """Drain the socket's error queue (non-blocking). Never raises."""
    out: list[IcmpError] = []
    for _ in range(limit):
        try:
            _data, ancdata, _flags, _addr = sock.recvmsg(512, 1024, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        for level, ctype, cdata in ancdata:
            if (level, ctype) in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
                err = parse_extended_err(cdata)
                if err is not None:
                    out.append(err)
    return out
