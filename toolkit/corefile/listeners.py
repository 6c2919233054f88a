"""Which given Corefile listens where: the addresses each binds (and the Service address
given for one), which ones another forwards to, the one a client asks first, and the port a
Service's port reaches."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from toolkit.corefile.document import Corefile
from toolkit.corefile.names import same_ip
from toolkit.corefile.plugins.forward import TargetKind, forward_spec
from toolkit.corefile.roles import Assembly, CorefileRole


def listen_map(corefiles: Sequence[Corefile], service_ips: Mapping[str, int]) -> dict[str, int]:
    """Address -> index of the Corefile that listens there: ``bind`` addresses (the first
    Corefile wins), then SERVICE_IPS (a Service ClusterIP given for one)."""
    out: dict[str, int] = {}
    for i, cf in enumerate(corefiles):
        for b in cf.blocks:
            for ip in b.bind:
                try:
                    out.setdefault(str(ipaddress.ip_address(ip)), i)
                except ValueError:
                    pass
    for ip, i in service_ips.items():
        out[str(ipaddress.ip_address(ip))] = i
    return out


def downstream(corefiles: Sequence[Corefile], listen: Mapping[str, int]) -> set[int]:
    """Indexes of the Corefiles another given Corefile forwards to."""
    targets: set[int] = set()
    for i, cf in enumerate(corefiles):
        for b in cf.blocks:
            for d in b.directives:
                if d.name in ("forward", "grpc"):
                    for t in forward_spec(d).targets:
                        j = listen.get(t.host) if t.kind is TargetKind.IP else None
                        if j is not None and j != i:
                            targets.add(j)
    return targets


def _accepts(cf: Corefile, address: str) -> bool:
    """Whether some block of CF listens on ADDRESS (no ``bind``: every address)."""
    for b in cf.blocks:
        binds = [x for x in b.bind if not x.upper().startswith("__PILLAR__")]
        if not binds or any(same_ip(address, x) for x in binds):
            return True
    return False


def start_index(corefiles: Sequence[Corefile], assembly: Assembly, listen: Mapping[str, int],
                nameserver: str | None) -> int:
    """The Corefile a pod asks first: the one that listens on --nameserver (by ``bind``, else
    one that can receive it: the cluster DNS behind its Service address rather than a node
    cache bound elsewhere); else the node cache (NodeLocal sits in front of the cluster DNS);
    else the one no other forwards to."""
    if nameserver:
        try:
            j = listen.get(str(ipaddress.ip_address(nameserver)))
        except ValueError:
            j = None
        if j is not None:
            return j
        can = [i for i, cf in enumerate(corefiles) if _accepts(cf, nameserver)]
        cd = assembly.first(CorefileRole.CLUSTER_DNS)
        if cd is not None and cd in can:
            return cd
        if can:
            return can[0]
    nc = assembly.first(CorefileRole.NODE_CACHE)
    if nc is not None:
        return nc
    behind = downstream(corefiles, listen)
    cands = [i for i in range(len(corefiles)) if i not in behind]
    cd = assembly.first(CorefileRole.CLUSTER_DNS)
    if cd is not None and cd in cands:
        return cd
    return cands[0] if cands else 0


def service_port(cf: Corefile, port: int) -> int | None:
    """The port a query sent to a Service's port PORT reaches in CF: PORT itself when a block
    listens there, else CF's one listen port (a Service maps port -> targetPort; OpenShift's
    dns-default Service maps 53 to CoreDNS's 5353: cluster-dns-operator
    pkg/manifests/assets/dns/service.yaml). None when that is ambiguous."""
    ports = {a.port for b in cf.blocks for a in b.addresses if a.port is not None}
    if port in ports or len(ports) != 1:
        return None
    return next(iter(ports))
