"""The live endpoints of the cluster's DNS Service, read from its EndpointSlices with the
user's kubectl and handed to ``podtriage conntrack`` and ``podtriage diagnose`` as
``--dns-endpoints A,B`` (issue 26): a conntrack entry DNATed to an address that is not
among them is a flow to a CoreDNS pod that is gone.

``kubectl get endpointslices -n NS -l kubernetes.io/service-name=NAME`` (the label the
EndpointSlice controller puts on every slice of a Service). The Service is kube-system/kube-dns
by default (kubeadm, kubespray, k3s, EKS, GKE, AKS); ``--dns-service NS/NAME`` names another
(OpenShift: openshift-dns/dns-default).

An endpoint is live when its ``ready`` condition is true or absent (discovery/v1
EndpointConditions: "a nil value indicates an unknown state. In most cases consumers should
interpret this unknown state as ready"), or when it is terminating but ``serving``: such a pod
still answers the flows kube-proxy steered at it, so they are not dead yet. FQDN slices carry
no address a DNAT can target and are skipped.

A read that fails (RBAC: no ``list`` on endpointslices in the Service's namespace; no such
Service) is a note on stderr, and podtriage runs without the flag (on a node it then reads
kube-proxy's own rules): never a failed run.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.kube.argv import Usage, shown
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError
from toolkit.kube.output import progress, say

FLAG = "--dns-endpoints"
SERVICE_LABEL = "kubernetes.io/service-name"
DEFAULT_SERVICE = "kube-system/kube-dns"
# What clusters name their DNS Service (completion offers these).
KNOWN_SERVICES = (DEFAULT_SERVICE, "openshift-dns/dns-default")
# The commands that take the flag (conntrack's race-test subcommand does not use it).
_COMMANDS = ("conntrack", "diagnose")
_SUBCOMMANDS = ("race-test",)
READ_TIMEOUT_S = 20.0


@dataclass(frozen=True, kw_only=True)
class DnsService:
    """The Service whose endpoints are the live DNS backends."""

    namespace: str = "kube-system"
    name: str = "kube-dns"

    def __str__(self) -> str:
        return "%s/%s" % (self.namespace, self.name)

    @classmethod
    def parse(cls, text: str | None) -> DnsService:
        """``NS/NAME`` (``--dns-service``); Usage when it is not two DNS labels."""
        if text is None:
            return cls()
        ns, sep, name = text.partition("/")
        if not sep or not _label(ns) or not _label(name):
            raise Usage("--dns-service must be NAMESPACE/NAME (e.g. openshift-dns/dns-default), "
                        "not %s" % shown(repr(text)))
        return cls(namespace=ns, name=name)


def _label(text: str) -> bool:
    """An RFC 1123 label, as Kubernetes names namespaces and Services."""
    return 0 < len(text) <= 63 and text.isascii() and text[0].isalnum() and \
        text[-1].isalnum() and all(c.isalnum() and not c.isupper() or c == "-" for c in text)


def _live(endpoint: JsonObject) -> bool:
    cond = endpoint.get("conditions")
    cond = cond if isinstance(cond, dict) else {}
    return cond.get("ready") is not False or cond.get("serving") is True


def live_addresses(slices: JsonObject) -> list[str]:
    """The addresses of the live endpoints in a ``kubectl get endpointslices -o json`` list
    (IPv4 and IPv6 slices; FQDN skipped; anything that is not an IP address ignored)."""
    out: list[str] = []
    for s in slices.get("items") or []:
        if not isinstance(s, dict) or s.get("addressType") not in ("IPv4", "IPv6"):
            continue
        for ep in s.get("endpoints") or []:
            if not isinstance(ep, dict) or not _live(ep):
                continue
            for a in ep.get("addresses") or []:
                try:
                    addr = str(ipaddress.ip_address(a))
                except ValueError:
                    continue
                if addr not in out:
                    out.append(addr)
    return out


def takes_flag(args: Sequence[str]) -> bool:
    """Whether podtriage ``args`` run a command that takes --dns-endpoints and the user did
    not give it already."""
    if not args or args[0] not in _COMMANDS:
        return False
    if any(a == FLAG or a.startswith(FLAG + "=") for a in args):
        return False
    return not (args[0] == "conntrack" and any(a in _SUBCOMMANDS for a in args[1:]))


def with_endpoints(args: Sequence[str], endpoints: Sequence[str]) -> tuple[str, ...]:
    """``args`` with ``--dns-endpoints A,B`` right after the command word (before any
    ``--`` or positional the user wrote)."""
    if not endpoints:
        return tuple(args)
    return (args[0], FLAG, ",".join(endpoints), *args[1:])


def read_endpoints(k: Kubectl, service: DnsService, timeout: float = READ_TIMEOUT_S) -> list[str] | None:
    """The live endpoint addresses of ``service``, or None (said on stderr) when they
    cannot be read or there are none."""
    argv = ["get", "endpointslices", "-n", service.namespace, "-l",
            "%s=%s" % (SERVICE_LABEL, service.name)]
    try:
        slices = k.json(argv, timeout=timeout)
    except KubectlError as e:
        say("cannot read the EndpointSlices of Service %s (%s): podtriage runs without "
            "--dns-endpoints (on a node it reads kube-proxy's rules instead)" % (service, e.message))
        return None
    if not slices.get("items"):
        say("no EndpointSlice for Service %s (--dns-service NS/NAME names your cluster's DNS "
            "Service): podtriage runs without --dns-endpoints" % service)
        return None
    live = live_addresses(slices)
    if not live:
        say("Service %s has no ready endpoint: every conntrack entry to a DNS backend is dead; "
            "podtriage runs without --dns-endpoints" % service)
        return None
    return live


def add_dns_endpoints(k: Kubectl, args: Sequence[str], service: DnsService,
                      timeout: float = READ_TIMEOUT_S) -> tuple[str, ...]:
    """podtriage ``args`` with the DNS Service's live endpoints when the command takes them
    (read once; a failed read leaves ``args`` as they are)."""
    if not takes_flag(args):
        return tuple(args)
    live = read_endpoints(k, service, timeout)
    if live is None:
        return tuple(args)
    progress("live endpoints of Service %s: %s (--dns-endpoints)" % (service, ", ".join(live)))
    return with_endpoints(args, live)
