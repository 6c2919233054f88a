"""The route the kernel picks for an address, and what the neighbour table knows about it.

rtnetlink through pyroute2 (RTM_GETROUTE, RTM_GETNEIGH, RTM_GETADDR): the same answer as
`ip route get` / `ip neigh`, no capability needed. pyroute2 is imported inside the functions
so that importing this module stays free.

An address without a route is an observation (``Route.kind == "unreachable"``), not an
exception; exceptions mean the question could not be asked at all (bad address, no
rtnetlink).
"""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass

from toolkit.errors import CannotObserve, UsageError

# rtm_type (linux/rtnetlink.h) -> our words
_RTN = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
        6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw", 10: "nat"}

# NUD_* bits (linux/neighbour.h)
_NUD = {0x01: "INCOMPLETE", 0x02: "REACHABLE", 0x04: "STALE", 0x08: "DELAY", 0x10: "PROBE",
        0x20: "FAILED", 0x40: "NOARP", 0x80: "PERMANENT", 0x00: "NONE"}
NEIGH_ALIVE = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"})
NEIGH_DEAD = frozenset({"FAILED", "INCOMPLETE"})


@dataclass(frozen=True)
class Route:
    """What `ip route get ADDRESS` says.

    ``kind``: unicast | local | unreachable | blackhole | prohibit | broadcast | multicast | ...
    (``unreachable`` also when the kernel has no route at all: ``detail`` says so).
    ``on_link``: no gateway, the address is resolved with ARP/ND on ``interface`` directly.
    """

    destination: str
    interface: str | None
    gateway: str | None
    source: str | None
    on_link: bool
    kind: str
    detail: str = ""

    def describe(self) -> str:
        if self.kind != "unicast":
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
    state: str  # REACHABLE, STALE, DELAY, PROBE, FAILED, INCOMPLETE, PERMANENT, NOARP, NONE

    @property
    def alive(self) -> bool | None:
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


def _nud(state: int) -> str:
    for bit in (0x80, 0x40, 0x02, 0x08, 0x10, 0x04, 0x20, 0x01):
        if state & bit:
            return _NUD[bit]
    return "NONE"


def route_to(address: str) -> Route:
    """The route the kernel would use for ``address`` (RTM_GETROUTE)."""
    ip = _check(address)
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with IPRoute() as ipr:
            try:
                msgs = ipr.route("get", dst=str(ip))
            except NetlinkError as exc:
                if exc.code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EACCES, errno.EINVAL):
                    kind = {errno.EACCES: "prohibit", errno.EINVAL: "blackhole"}.get(exc.code, "unreachable")
                    return Route(str(ip), None, None, None, False, kind,
                                 f"no route: {errno.errorcode.get(exc.code, exc.code)} ({exc})")
                raise CannotObserve(f"route lookup for {ip} failed: {exc}") from None
            if not msgs:
                return Route(str(ip), None, None, None, False, "unreachable", "no route returned")
            m = msgs[0]
            oif = m.get("RTA_OIF")
            ifname = None
            if oif:
                links = ipr.link("get", index=oif)
                ifname = links[0].get("IFLA_IFNAME") if links else None
            gateway = m.get("RTA_GATEWAY")
            if gateway is None:
                via = m.get("RTA_VIA")  # IPv4 via an IPv6 next hop (RFC 5549)
                if isinstance(via, dict):
                    gateway = via.get("addr")
            kind = _RTN.get(m.get("type", 1), str(m.get("type")))
            source = m.get("RTA_PREFSRC")
            return Route(str(ip), ifname, gateway, source, kind == "unicast" and gateway is None, kind)
    except (CannotObserve, UsageError):
        raise
    except OSError as exc:
        raise CannotObserve(f"rtnetlink unavailable: {exc}") from None


def neighbour(address: str, interface: str | None = None) -> Neighbour | None:
    """The neighbour-table entry for ``address`` (optionally on ``interface``), or None."""
    ip = _check(address)
    for n in neighbours(interface):
        if n.address == str(ip):
            return n
    return None


def neighbours(interface: str | None = None) -> tuple[Neighbour, ...]:
    """The neighbour table (`ip neigh show [dev IF]`)."""
    from pyroute2 import IPRoute

    out: list[Neighbour] = []
    try:
        with IPRoute() as ipr:
            names = {l["index"]: l.get("IFLA_IFNAME") for l in ipr.get_links()}
            for m in ipr.get_neighbours():
                ifname = names.get(m.get("ifindex"))
                if interface is not None and ifname != interface:
                    continue
                dst = m.get("NDA_DST")
                if dst is None:
                    continue
                out.append(Neighbour(str(dst), ifname, m.get("NDA_LLADDR"), _nud(m.get("state", 0))))
    except OSError as exc:
        raise CannotObserve(f"rtnetlink unavailable: {exc}") from None
    return tuple(out)


def interface_networks(interface: str) -> tuple[str, ...]:
    """The networks (CIDR) of the addresses on ``interface``, e.g. ('10.244.1.10/24',)."""
    from pyroute2 import IPRoute

    out: list[str] = []
    try:
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=interface)
            if not idx:
                return ()
            for m in ipr.get_addr(index=idx[0]):
                addr = m.get("IFA_ADDRESS")
                if addr:
                    out.append(f"{addr}/{m.get('prefixlen')}")
    except OSError as exc:
        raise CannotObserve(f"rtnetlink unavailable: {exc}") from None
    return tuple(out)


def default_gateway(family: int = 4) -> str | None:
    """The gateway of the main table's default route, if any."""
    from pyroute2 import IPRoute

    try:
        with IPRoute() as ipr:
            fam = 2 if family == 4 else 10
            for m in ipr.get_default_routes(family=fam):
                gw = m.get("RTA_GATEWAY")
                if gw:
                    return gw
    except OSError:
        return None
    return None
