"""Where a probe goes: the route the kernel picks, the source address it would use, and the
control address whose answer tells "path fine, host absent" from "path broken"."""

from __future__ import annotations

import ipaddress
import socket

from toolkit.errors import best_effort
from toolkit.sysinfo.routes import Route
from toolkit.sysinfo.routes import RouteKind

DISCARD_PORT = 9  # any port: connect() on a UDP socket only asks the kernel for a route


def route_of(address: str) -> Route | None:
    """The kernel's route to ``address`` (None when it cannot be read: the probes still run)."""
    from toolkit.sysinfo.routes import route_to

    route: Route | None = None
    with best_effort(None, "route lookup"):
        route = route_to(address)
    return route


def source_of(address: str, route: Route | None) -> str | None:
    """The source address for probes of ``address``: the route's, else the kernel's choice
    (a connected UDP socket sends nothing)."""
    if route is not None and route.source:
        return route.source
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((address, DISCARD_PORT))
            return str(s.getsockname()[0])
    except OSError:
        return None


def control_address(address: str, route: Route | None) -> str | None:
    """The control probe's target: the route's gateway; for an on-link address, the
    default gateway when it is on the same link, else a live neighbour on that link."""
    if route is None or route.kind is not RouteKind.UNICAST:
        return None
    if route.gateway:
        return route.gateway if route.gateway != address else None
    if not route.interface:
        return None
    # No control is a weaker report, not a failure; a ValueError is an address the kernel
    # listed in a form ipaddress does not take.
    found: str | None = None
    with best_effort(None, "control address", also=(ValueError,)):
        found = _on_link_control(address, route.interface)
    return found


def _on_link_control(address: str, interface: str) -> str | None:
    from toolkit.sysinfo.routes import default_gateway, interface_networks, neighbours

    ip = ipaddress.ip_address(address)
    nets = [ipaddress.ip_interface(n).network for n in interface_networks(interface)]
    nets = [n for n in nets if n.version == ip.version and ip in n]
    gw = default_gateway(ip.version)
    if gw and gw != address and any(ipaddress.ip_address(gw) in n for n in nets):
        return gw
    for n in neighbours(interface):
        if n.address != address and n.alive and n.state != "NOARP" and any(
                ipaddress.ip_address(n.address) in net for net in nets):
            return n.address
    return None
