"""Answers that belong to another name (issue 28), made by the lab's real servers (stdlib only).

Three switches, each undone by ``Lab.clear_faults()``:

    wildcard.namespace_wildcard(lab, "192.168.50.77")
        A wildcard under the pod's namespace domain, served by the real CoreDNS: its
        ``kubernetes`` plugin falls through for ``wxwork.svc.alpha.pm.k8s`` (kubernetes plugin
        ``fallthrough ZONES``: a name it does not know goes to the next plugin) to a ``file``
        zone that holds ``*.wxwork.svc.alpha.pm.k8s`` (RFC 4592 wildcard). Services of the
        namespace still resolve (the kubernetes plugin answers them first); every other name
        under the domain, ``api.corp.example.wxwork.svc.alpha.pm.k8s`` included, gets the
        wildcard's address.

    wildcard.node_domain(lab, wildcard="192.168.50.77")
        The node's own domain in the pod's search list, as the kubelet puts it there when the
        node's resolv.conf searches it (OpenShift, k3s: openshift/origin#17316, k3s-io/k3s#2801):
        ``search wxwork.svc.alpha.pm.k8s svc.alpha.pm.k8s alpha.pm.k8s dc1.example.net``. With
        ``wildcard`` the upstream (bind9) serves the zone dc1.example.net with
        ``*.dc1.example.net``; CoreDNS forwards it there like any external name.

    wildcard.rewrite_nxdomain(lab, "192.168.50.77")
        The upstream rewrites NXDOMAIN into an address (an ISP's or enterprise resolver's
        "search page"): bind9's ``type redirect`` zone for ``.`` with ``*.`` (BIND 9 ARM,
        "Redirect zones"), so every name that does not exist resolves, authoritative answers
        included. Use it with ``node_domain(lab)``: the cluster's own candidates are answered
        by CoreDNS's kubernetes plugin and never reach the upstream.
"""
from __future__ import annotations

import re

from . import configs

NAMESPACE_DOMAIN = "wxwork.svc.alpha.pm.k8s"
NODE_DOMAIN = "dc1.example.net"
KEY = "wildcard"             # the lab's fault-state key (faults.json)


def _zone(origin: str, body: str, ns: str) -> str:
    """A zone file; its nameserver ``ns`` is outside the zone (no glue needed)."""
    return ("$TTL 30\n$ORIGIN %s.\n@ IN SOA %s hostmaster.%s. 2026112701 3600 600 604800 30\n"
            "@ IN NS %s\n%s\n") % (origin, ns, origin, ns, body)


def _set(lab, **values) -> dict:
    st = lab._state()
    st.setdefault(KEY, {}).update(values)
    lab._save(st)
    return st[KEY]


def namespace_wildcard(lab, address: str) -> None:
    """``*.wxwork.svc.alpha.pm.k8s`` -> ``address`` in the real CoreDNS (see the module doc)."""
    (lab.rundir / "coredns" / ("%s.db" % NAMESPACE_DOMAIN)).write_text(
        _zone(NAMESPACE_DOMAIN, "* IN A %s" % address, "ns.dns.alpha.pm.k8s."))
    _set(lab, namespace=address)
    lab.flush("coredns")


def node_domain(lab, wildcard: str | None = None) -> None:
    """The node's domain dc1.example.net at the end of the pod's search list; with
    ``wildcard`` the upstream serves ``*.dc1.example.net`` -> that address."""
    zd = lab.rundir / "named"
    zd.mkdir(exist_ok=True)
    body = "node IN A %s" % "192.168.50.1" + ("\n* IN A %s" % wildcard if wildcard else "")
    (zd / ("%s.zone" % NODE_DOMAIN)).write_text(_zone(NODE_DOMAIN, body, "ns1.upstream.lab."))
    _set(lab, node_domain=NODE_DOMAIN, node_wildcard=wildcard)
    (lab._etc("pod") / "resolv.conf").write_text(resolv_conf())
    lab.flush("upstream")


def rewrite_nxdomain(lab, address: str) -> None:
    """The upstream answers ``address`` for every name that does not exist (see the module doc)."""
    zd = lab.rundir / "named"
    zd.mkdir(exist_ok=True)
    (zd / "redirect.zone").write_text(
        "$TTL 300\n@ IN SOA ns1.upstream.lab. hostmaster.upstream.lab. 1 3600 600 604800 60\n"
        "@ IN NS ns1.upstream.lab.\n*. IN A %s\n" % address)
    _set(lab, rewrite=address)
    lab.flush("upstream")


def resolv_conf() -> str:
    """The pod's resolv.conf with the node's domain searched last, as the kubelet writes it
    (the cluster's three domains, then the node's own search list)."""
    return configs.RESOLV_CONF.replace("alpha.pm.k8s\n", "alpha.pm.k8s %s\n" % NODE_DOMAIN, 1)


def render(lab, server: str, text: str) -> str:
    """A server's config with the switches that are on (Lab._render_config calls it)."""
    st = lab._state().get(KEY) or {}
    if server == "coredns" and st.get("namespace"):
        text, n = re.subn(r"(?m)^(\s*fallthrough in-addr\.arpa ip6\.arpa)$",
                          r"\1 %s" % NAMESPACE_DOMAIN, text, count=1)
        text, m = re.subn(r"(?m)^(\s*)(prometheus :9153)$", r"\1file %s %s\n\1\2" % (
            lab.rundir / "coredns" / ("%s.db" % NAMESPACE_DOMAIN), NAMESPACE_DOMAIN), text, count=1)
        if n != 1 or m != 1:
            raise ValueError("coredns-configmap.yaml: no kubernetes fallthrough / prometheus line")
    if server == "upstream":
        zd = lab.rundir / "named"
        extra = ""
        if st.get("node_domain"):
            extra += 'zone "%s" { type primary; file "%s/%s.zone"; };\n' % (NODE_DOMAIN, zd, NODE_DOMAIN)
        if st.get("rewrite"):
            extra += 'zone "." { type redirect; file "%s/redirect.zone"; };\n' % zd
        text += extra
    return text


def cleared(lab, st: dict) -> None:
    """After Lab.clear_faults() saved the clean state: the pod's resolv.conf back, and the
    upstream stopped when its config changed (clear_faults starts it again, clean)."""
    mine = st.get(KEY) or {}
    if mine.get("node_domain") and lab._etc("pod").is_dir():
        (lab._etc("pod") / "resolv.conf").write_text(configs.RESOLV_CONF)
    if mine.get("node_domain") or mine.get("rewrite"):
        lab._kill("upstream")
