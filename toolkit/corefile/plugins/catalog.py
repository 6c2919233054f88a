"""Known CoreDNS plugin names and the order CoreDNS really runs them in.

CoreDNS chains the plugins of a server block in the order of its build-time ``plugin.cfg``
(generated into ``core/dnsserver/zdirectives.go``), never in the order they are written in
the Corefile.

Source of EXECUTION_ORDER (names only, in order):
- coredns/coredns ``core/dnsserver/zdirectives.go`` as stored at commit 1086d54f795a (root ...
  view, including rrl, geoip, timeouts, tsig, header);
- the plugins added to plugin.cfg later (proxyproto, quic, grpc_server, https, https3,
  multisocket, nomad) placed where the newer upstream plugin.cfg lists them;
- ``shed`` is in the CoreDNS tree the parser corpus was taken from (commit 4b26cce), its exact
  slot is not in the stored plugin.cfg: it is placed with the other request-admission plugins
  right after ``cancel``.
"""

from __future__ import annotations

import difflib

EXECUTION_ORDER: tuple[str, ...] = (
    "root",
    "metadata",
    "rrl",
    "geoip",
    "cancel",
    "shed",
    "tls",
    "proxyproto",
    "quic",
    "grpc_server",
    "https",
    "https3",
    "timeouts",
    "multisocket",
    "reload",
    "nsid",
    "bufsize",
    "bind",
    "debug",
    "trace",
    "ready",
    "health",
    "pprof",
    "prometheus",
    "errors",
    "log",
    "dnstap",
    "local",
    "dns64",
    "acl",
    "any",
    "chaos",
    "loadbalance",
    "tsig",
    "cache",
    "rewrite",
    "header",
    "dnssec",
    "autopath",
    "minimal",
    "template",
    "transfer",
    "hosts",
    "route53",
    "azure",
    "clouddns",
    "k8s_external",
    "kubernetes",
    "file",
    "auto",
    "secondary",
    "etcd",
    "loop",
    "forward",
    "grpc",
    "erratic",
    "whoami",
    "on",
    "sign",
    "view",
    "nomad",
)

# Plugins that distributions compile into their own CoreDNS builds, with where they slot in.
# ocp_dnsnameresolver: openshift/coredns carries it in plugin.cfg right before `cache`
# (its carry instructions; the DNS operator writes it into every server block when the
# DNSNameResolver feature is on: cluster-dns-operator controller_dns_configmap.go).
DISTRIBUTION: dict[str, str] = {
    "ocp_dnsnameresolver": "OpenShift's CoreDNS build (openshift/coredns)",
}
_DISTRIBUTION_BEFORE = {"ocp_dnsnameresolver": "cache"}

_EXTENDED_ORDER: tuple[str, ...] = tuple(
    name for p in EXECUTION_ORDER
    for name in ([d for d, before in _DISTRIBUTION_BEFORE.items() if before == p] + [p]))
_ORDER_INDEX = {name: i for i, name in enumerate(_EXTENDED_ORDER)}

# Plugins that were part of CoreDNS once and were removed, with what replaced them.
REMOVED: dict[str, str] = {
    "proxy": "forward (proxy was removed in CoreDNS 1.6)",
    "federation": "the external federation plugin (removed from CoreDNS in 1.7)",
    "upstream": "nothing: upstream is implicit since CoreDNS 1.6",
    "resolve": "nothing (never a CoreDNS plugin)",
}

# Widely used external plugins (not in the default build): not typos, but need a custom build.
EXTERNAL: frozenset[str] = frozenset({
    "fanout", "alternate", "redis", "k8s_gateway", "gathersrv", "ads", "unbound", "netbox",
    "kubernetai", "records", "mdns", "dnsredir", "alias", "wgsd", "finalize",
})

KNOWN: frozenset[str] = frozenset(EXECUTION_ORDER)

# Plugins that may legitimately be given more than once in one server block (forward: several
# stanzas, each for its own FROM zone, since CoreDNS 1.9.4; forward/setup.go chains them).
REPEATABLE: frozenset[str] = frozenset({
    "template", "rewrite", "log", "acl", "header", "bind", "dnstap", "on", "sign", "file",
    "import", "metadata", "forward",
})

# Plugins whose setup returns plugin.ErrOnce when given twice in a block: CoreDNS refuses to
# start ("this plugin can only be used once per Server Block"; grep plugin.ErrOnce in
# coredns@v1.12.1 and v1.14.7 plugin/*/setup.go; metrics is the prometheus directive).
ONCE: frozenset[str] = frozenset({
    "cache", "dnssec", "errors", "grpc", "hosts", "kubernetes", "loop", "prometheus", "nsid",
    "pprof", "ready", "shed", "tsig", "view",
})

# Plugins that send queries elsewhere (their arguments are upstreams).
FORWARDERS: frozenset[str] = frozenset({"forward", "grpc", "fanout", "alternate"})

# Plugins that produce answers themselves (a query ends here unless they fall through).
ANSWERERS: frozenset[str] = frozenset({
    "forward", "grpc", "file", "auto", "secondary", "etcd", "kubernetes", "k8s_external",
    "hosts", "template", "whoami", "erratic", "route53", "azure", "clouddns", "nomad",
    "chaos", "fanout",
})


def order_index(name: str) -> int | None:
    """Position of NAME in CoreDNS's execution order (None: not a built-in plugin)."""
    return _ORDER_INDEX.get(name)


def is_known(name: str) -> bool:
    """A plugin some CoreDNS build has: built in, external, or a distribution's."""
    return name in _ORDER_INDEX or name in EXTERNAL or name in DISTRIBUTION


def nearest(name: str) -> str | None:
    """The known plugin name closest to NAME (a likely typo target), or None."""
    candidates = list(EXECUTION_ORDER) + sorted(EXTERNAL) + sorted(DISTRIBUTION)
    got = difflib.get_close_matches(name.lower(), candidates, n=1, cutoff=0.6)
    return got[0] if got else None
