"""The route the kernel picks for an address, and what the neighbour table knows about it.

rtnetlink (RTM_GETROUTE, RTM_GETNEIGH, RTM_GETADDR): the same answer as `ip route get` /
`ip neigh`, no capability needed, over a plain netlink socket (toolkit.sysinfo.netlink:
pyroute2's import alone is ~120 ms; tests/integration/test_netlink_lab.py compares every
function here with pyroute2 on the lab's real tables).

An address without a route is an observation (``Route.kind is RouteKind.UNREACHABLE``), not an
exception; exceptions mean the question could not be asked at all (bad address, no
rtnetlink).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass
from enum import StrEnum

from toolkit.errors import CannotObserve, UsageError


class RouteKind(StrEnum):
    """rtm_type of the route the kernel picked (linux/rtnetlink.h ``RTN_*``), in ip-route's
    words; ``unreachable`` also when the kernel has no route at all."""

    UNICAST = "unicast"
    LOCAL = "local"
    BROADCAST = "broadcast"
    ANYCAST = "anycast"
    MULTICAST = "multicast"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"
    THROW = "throw"
    NAT = "nat"
    UNKNOWN = "unknown"         # an rtm_type this table does not know (``detail`` has it)


# rtm_type number (linux/rtnetlink.h) -> kind
_RTN = {1: RouteKind.UNICAST, 2: RouteKind.LOCAL, 3: RouteKind.BROADCAST, 4: RouteKind.ANYCAST,
        5: RouteKind.MULTICAST, 6: RouteKind.BLACKHOLE, 7: RouteKind.UNREACHABLE,
        8: RouteKind.PROHIBIT, 9: RouteKind.THROW, 10: RouteKind.NAT}


class NeighbourState(StrEnum):
    """A neighbour-table state (linux/neighbour.h ``NUD_*``), as `ip neigh` prints it."""

    INCOMPLETE = "INCOMPLETE"
    REACHABLE = "REACHABLE"
    STALE = "STALE"
    DELAY = "DELAY"
    PROBE = "PROBE"
    FAILED = "FAILED"
    NOARP = "NOARP"
    PERMANENT = "PERMANENT"
    NONE = "NONE"


# NUD_* bits (linux/neighbour.h), in the order _nud tests them
_NUD = {0x80: NeighbourState.PERMANENT, 0x40: NeighbourState.NOARP, 0x02: NeighbourState.REACHABLE,
        0x08: NeighbourState.DELAY, 0x10: NeighbourState.PROBE, 0x04: NeighbourState.STALE,
        0x20: NeighbourState.FAILED, 0x01: NeighbourState.INCOMPLETE}
NEIGH_ALIVE = frozenset({NeighbourState.REACHABLE, NeighbourState.STALE, NeighbourState.DELAY,
                         NeighbourState.PROBE, NeighbourState.PERMANENT, NeighbourState.NOARP})
NEIGH_DEAD = frozenset({NeighbourState.FAILED, NeighbourState.INCOMPLETE})


@dataclass(frozen=True, kw_only=True)
class Route:
    """What `ip route get ADDRESS` says.

    ``kind``: see RouteKind (``unreachable`` also when the kernel has no route at all:
    ``detail`` says so).
    ``on_link``: no gateway, the address is resolved with ARP/ND on ``interface`` directly.
    """

    destination: str
    interface: str | None
    gateway: str | None
    source: str | None
    on_link: bool
    kind: RouteKind
    detail: str = ""

    def describe(self) -> str:
        """One line as `ip route get` would put it: ``via GW dev IF src ADDR`` or the kind."""
        if self.kind != RouteKind.UNICAST:
            return f"{self.kind}{': ' + self.detail if self.detail else ''}"
        via = f"via {self.gateway}" if self.gateway else "on-link"
        src = f" src {self.source}" if self.source else ""
        return f"{via} dev {self.interface or '?'}{src}"


@dataclass(frozen=True)
class Neighbour:
    """One neighbour-table entry (`ip neigh`)."""

    address: str
    interface: str | None
    lladdr: str | None
    state: NeighbourState

    @property
    def alive(self) -> bool | None:
        """True: the neighbour answered (or needs no answer); False: resolution failed;
        None: the table does not say."""
        if self.state in NEIGH_ALIVE:
            return True
        if self.state in NEIGH_DEAD:
            return False
        return None


def _check(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        raise UsageError(f"not an IP address: {address!r}") from None


def _nud(state: int) -> NeighbourState:
    for bit, name in _NUD.items():
        if state & bit:
            return name
    return NeighbourState.NONE


# Errors of RTM_GETROUTE that are an answer (the kernel's verdict on the address), not a
# failure to ask: ip-route prints them the same way.
_NO_ROUTE = {errno.ENETUNREACH: RouteKind.UNREACHABLE, errno.EHOSTUNREACH: RouteKind.UNREACHABLE,
             errno.EACCES: RouteKind.PROHIBIT, errno.EINVAL: RouteKind.BLACKHOLE}


def route_to(address: str) -> Route:
    """The route the kernel would use for ``address`` (RTM_GETROUTE, `ip route get`).

    Over a plain netlink socket (toolkit.sysinfo.netlink: pyroute2's import alone would be a
    third of a healthy diagnose); the answer is the one pyroute2 gives (tests/integration/test_netlink_lab.py)."""
    ip = _check(address)
    from toolkit.sysinfo import netlink

    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    # rtmsg (linux/rtnetlink.h): family, dst_len, src_len, tos, table, protocol, scope, type, flags
    body = _RTMSG.pack(family, ip.max_prefixlen, 0, 0, 0, 0, 0, 0, 0) + netlink.attr(_RTA_DST, ip.packed)
    try:
        with netlink.Socket(netlink.NETLINK_ROUTE) as nl:
            answers = list(nl.request(_RTM_GETROUTE, body))
    except netlink.NetlinkError as exc:
        if exc.errno in _NO_ROUTE:
            return Route(destination=str(ip), interface=None, gateway=None, source=None,
                         on_link=False, kind=_NO_ROUTE[exc.errno],
                         detail=f"no route: {errno.errorcode.get(exc.errno, exc.errno)} ({exc.strerror})")
        raise CannotObserve(f"route lookup for {ip} failed: {exc}") from None
    except OSError as exc:
        raise CannotObserve(f"rtnetlink unavailable: {exc}") from None
    msgs = [b for kind, b in answers if kind == _RTM_NEWROUTE and len(b) >= _RTMSG.size]
    if not msgs:
        return Route(destination=str(ip), interface=None, gateway=None, source=None,
                     on_link=False, kind=RouteKind.UNREACHABLE, detail="no route returned")
    return _route_of(str(ip), msgs[0])


# RTM_GETROUTE / RTM_NEWROUTE and the rtattr types read (linux/rtnetlink.h)
_RTM_NEWROUTE, _RTM_GETROUTE = 24, 26
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PREFSRC, _RTA_VIA = 1, 4, 5, 7, 18
_RTMSG = struct.Struct("=BBBBBBBBI")


def _addr(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return None


def _route_of(destination: str, body: bytes) -> Route:
    """The Route in one RTM_NEWROUTE answer's body (rtmsg and its attributes)."""
    from toolkit.sysinfo.netlink import attrs

    rtm_type = body[7]
    a = attrs(body, _RTMSG.size)
    ifname = _ifname(struct.unpack("=I", a[_RTA_OIF][:4])[0]) if _RTA_OIF in a else None
    gateway = _addr(a.get(_RTA_GATEWAY))
    if gateway is None and _RTA_VIA in a:  # IPv4 via an IPv6 next hop (RFC 5549): struct rtvia
        gateway = _addr(a[_RTA_VIA][2:])
    kind = _RTN.get(rtm_type, RouteKind.UNKNOWN)
    return Route(destination=destination, interface=ifname, gateway=gateway,
                 source=_addr(a.get(_RTA_PREFSRC)), on_link=kind is RouteKind.UNICAST and gateway is None,
                 kind=kind, detail="" if kind is not RouteKind.UNKNOWN else f"rtm_type {rtm_type}")


def neighbour(address: str, interface: str | None = None) -> Neighbour | None:
    """The neighbour-table entry for ``address`` (optionally on ``interface``), or None."""
    ip = _check(address)
    for n in neighbours(interface):
        if n.address == str(ip):
            return n
    return None


def neighbours(interface: str | None = None) -> tuple[Neighbour, ...]:
    """The neighbour table (`ip neigh show [dev IF]`): an RTM_GETNEIGH dump of both families."""
    from toolkit.sysinfo import netlink

    out: list[Neighbour] = []
    names: dict[int, str | None] = {}
    try:
        with netlink.Socket(netlink.NETLINK_ROUTE) as nl:
            body = _NDMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
            answers = list(nl.request(_RTM_GETNEIGH, body, netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP))
    except OSError as exc:
        raise CannotObserve(f"rtnetlink unavailable: {exc}") from None
    for kind, b in answers:
        if kind != _RTM_NEWNEIGH or len(b) < _NDMSG.size:
            continue
        _family, ifindex, state, _flags, _type = _NDMSG.unpack_from(b)
        if ifindex not in names:
            names[ifindex] = _ifname(ifindex)
        if interface is not None and names[ifindex] != interface:
            continue
        a = netlink.attrs(b, _NDMSG.size)
        dst = _addr(a.get(_NDA_DST))
        if dst is None:
            continue
        mac = a.get(_NDA_LLADDR)
        out.append(Neighbour(address=dst, interface=names[ifindex], lladdr=mac.hex(":") if mac else None,
                             state=_nud(state)))
    return tuple(out)


def interface_networks(interface: str) -> tuple[str, ...]:
    """The networks (CIDR) of the addresses on ``interface``, e.g. ('10.244.1.10/24',)
    (an RTM_GETADDR dump, kept for the interface's index)."""
    from toolkit.sysinfo import netlink

    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        return ()
    try:
        with netlink.Socket(netlink.NETLINK_ROUTE) as nl:
            body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
            answers = list(nl.request(_RTM_GETADDR, body, netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP))
    except OSError as exc:
        raise CannotObserve(f"rtnetlink unavailable: {exc}") from None
    out: list[str] = []
    for kind, b in answers:
        if kind != _RTM_NEWADDR or len(b) < _IFADDRMSG.size:
            continue
        _family, prefixlen, _flags, _scope, ifindex = _IFADDRMSG.unpack_from(b)
        addr = _addr(netlink.attrs(b, _IFADDRMSG.size).get(_IFA_ADDRESS))
        if ifindex == index and addr:
            out.append(f"{addr}/{prefixlen}")
    return tuple(out)


def default_gateway(family: int = 4) -> str | None:
    """The gateway of the main table's default route (no RTA_DST), if any."""
    from toolkit.sysinfo import netlink

    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    try:
        with netlink.Socket(netlink.NETLINK_ROUTE) as nl:
            body = _RTMSG.pack(fam, 0, 0, 0, 0, 0, 0, 0, 0)
            answers = list(nl.request(_RTM_GETROUTE, body, netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP))
    except OSError:
        return None
    for kind, b in answers:
        if kind != _RTM_NEWROUTE or len(b) < _RTMSG.size:
            continue
        a = netlink.attrs(b, _RTMSG.size)
        table = struct.unpack("=I", a[_RTA_TABLE][:4])[0] if len(a.get(_RTA_TABLE, b"")) >= 4 else b[4]
        gw = _addr(a.get(_RTA_GATEWAY))
        if _RTA_DST not in a and table == _RT_TABLE_MAIN and gw:
            return gw
    return None


def _ifname(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except OSError:  # gone between the dump and this question
        return None


# RTM_*NEIGH / RTM_*ADDR, ndmsg, ifaddrmsg and their attributes (linux/neighbour.h,
# linux/if_addr.h); RTA_TABLE and RT_TABLE_MAIN (linux/rtnetlink.h)
_RTM_NEWADDR, _RTM_GETADDR, _RTM_NEWNEIGH, _RTM_GETNEIGH = 20, 22, 28, 30
_NDMSG = struct.Struct("=BxxxiHBB")  # family, pad, pad, ifindex, state, flags, type
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_NDA_DST, _NDA_LLADDR, _IFA_ADDRESS, _RTA_TABLE, _RT_TABLE_MAIN = 1, 2, 1, 15, 254
