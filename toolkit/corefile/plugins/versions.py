"""Which CoreDNS runs a Corefile: the plugin order and the plugins compiled in, per version.

CoreDNS chains a server block's plugins in the order of its build's ``plugin.cfg`` (generated
into core/dnsserver/zdirectives.go), and that order changed during 1.14: 1.14.2 moved ``acl``
after ``rewrite``; 1.14.7 runs ``rewrite``, ``autopath`` and ``acl`` before ``cache`` and
moved ``tls`` after ``dnssec``. Each table below is the ``plugin.cfg`` of that release, names
only, in order (github.com/coredns/coredns@vX/plugin.cfg in the Go module cache;
tests/data/coredns/ keeps the pinned ones and tests/unit/test_corefile_versions.py checks
them). A version between two tables takes the newest table at or below it.

node-cache (NodeLocal DNSCache, k8s.io/dns cmd/node-cache) is CoreDNS with a fixed plugin
set: its 1.26.4 requires CoreDNS v1.11.3 and imports only the plugins in NODE_CACHE_PLUGINS
(a Corefile naming another plugin listed in plugin.cfg does not load: "No action found for
directive ... (missing a plugin?)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_V1_11_3 = ("root metadata geoip cancel tls timeouts reload nsid bufsize bind debug trace ready "
            "health pprof prometheus errors log dnstap local dns64 acl any chaos loadbalance tsig "
            "cache rewrite header dnssec autopath minimal template transfer hosts route53 azure "
            "clouddns k8s_external kubernetes file auto secondary etcd loop forward grpc erratic "
            "whoami on sign view")
_V1_12_1 = _V1_11_3.replace("tls timeouts", "tls timeouts multisocket")
_V1_13_2 = _V1_12_1.replace("tls timeouts", "tls quic timeouts") + " nomad"
_V1_14_1 = _V1_13_2.replace("quic timeouts", "quic grpc_server https https3 timeouts")
_V1_14_2 = _V1_14_1.replace("dns64 acl any", "dns64 any").replace("rewrite header",
                                                                   "rewrite acl header")
_V1_14_3 = _V1_14_2.replace("tls quic", "tls proxyproto quic")
_V1_14_7 = (_V1_14_3.replace("cancel tls proxyproto", "cancel proxyproto")
            .replace("pprof prometheus", "pprof shed prometheus")
            .replace("tsig cache rewrite acl header dnssec autopath minimal",
                     "tsig rewrite autopath acl cache header dnssec tls minimal"))

# (version, plugin.cfg order) from oldest to newest.
ORDERS: tuple[tuple[tuple[int, int, int], tuple[str, ...]], ...] = (
    ((1, 11, 3), tuple(_V1_11_3.split())),
    ((1, 12, 1), tuple(_V1_12_1.split())),
    ((1, 13, 2), tuple(_V1_13_2.split())),
    ((1, 14, 0), tuple(_V1_14_1.split())),
    ((1, 14, 2), tuple(_V1_14_2.split())),
    ((1, 14, 3), tuple(_V1_14_3.split())),
    ((1, 14, 7), tuple(_V1_14_7.split())),
)

# The CoreDNS releases the project builds and tests against (tests/lab/components.py).
PINNED = ("1.12.1", "1.14.7")
DEFAULT_VERSION = PINNED[-1]
NODE_CACHE_VERSION = "1.26.4"
NODE_CACHE_ENGINE = "1.11.3"
# k8s.io/dns cmd/node-cache/main.go imports (node-cache 1.26.4).
NODE_CACHE_PLUGINS = frozenset({
    "bind", "bufsize", "cache", "debug", "dns64", "errors", "forward", "health", "hosts",
    "loadbalance", "log", "loop", "prometheus", "pprof", "reload", "rewrite", "template",
    "trace", "whoami", "metadata", "dnstap",
})

_VERSION_RE = re.compile(r"v?(\d{1,3})\.(\d{1,3})(?:\.(\d{1,3}))?")


@dataclass(frozen=True)
class Build:
    """One CoreDNS build: its version, the plugin order of its plugin.cfg, the plugins it has
    (all of plugin.cfg, or node-cache's subset) and how the version was chosen."""

    version: str
    order: tuple[str, ...]
    compiled: frozenset[str]
    engine: str = "coredns"   # coredns or node-cache
    why: str = ""

    def index(self, plugin: str) -> int | None:
        """Position of PLUGIN in this build's plugin.cfg (None: not listed)."""
        try:
            return self.order.index(plugin)
        except ValueError:
            return None

    @property
    def label(self) -> str:
        """How reports name it."""
        if self.engine == "node-cache":
            return f"node-cache {NODE_CACHE_VERSION} (CoreDNS {self.version})"
        return f"CoreDNS {self.version}"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of '1.14.7', 'v1.12', None when TEXT is no version."""
    m = _VERSION_RE.fullmatch(text.strip())
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _table(v: tuple[int, int, int]) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    best = ORDERS[0]
    for known in ORDERS:
        if known[0] <= v:
            best = known
    return best


def coredns_build(version: str | None = None, why: str = "") -> Build:
    """The build of CoreDNS VERSION (default: the newest pinned). Raises ValueError for a
    string that is not a version."""
    text = version or DEFAULT_VERSION
    v = parse_version(text)
    if v is None:
        raise ValueError(f"{text!r} is not a CoreDNS version (e.g. 1.12.1)")
    known, order = _table(v)
    shown = ".".join(map(str, v))
    note = why or ("the newest pinned version" if version is None else "given")
    if known != v:
        note += f"; plugin order of {'.'.join(map(str, known))}, the nearest table at or below it"
    return Build(version=shown, order=order, compiled=frozenset(order), why=note)


def node_cache_build(why: str = "") -> Build:
    """NodeLocal DNSCache's node-cache: CoreDNS 1.11.3 with node-cache's plugins."""
    v = parse_version(NODE_CACHE_ENGINE)
    assert v is not None
    _, order = _table(v)
    return Build(version=NODE_CACHE_ENGINE, order=order,
                 compiled=frozenset(p for p in order if p in NODE_CACHE_PLUGINS),
                 engine="node-cache", why=why or "a node cache runs node-cache's CoreDNS")


_IMAGE_RE = re.compile(r"(?:^|/)coredns(?:/coredns)?:v?(\d{1,3}\.\d{1,3}(?:\.\d{1,3})?)\b")
_NODE_CACHE_IMAGE_RE = re.compile(r"k8s-dns-node-cache:v?(\d{1,3}\.\d{1,3}\.\d{1,3})\b")


def version_from_image(image: str) -> str | None:
    """The CoreDNS version an image reference names (registry.k8s.io/coredns/coredns:v1.12.1,
    coredns/coredns:1.11.3, mirror/coredns:v1.14.7@sha256:...), None for other images."""
    m = _IMAGE_RE.search(image.strip())
    return m.group(1) if m else None


def is_node_cache_image(image: str) -> bool:
    """Whether IMAGE is NodeLocal DNSCache's node-cache."""
    return _NODE_CACHE_IMAGE_RE.search(image) is not None


def choose(version: str | None, images: list[str]) -> tuple[Build, Build]:
    """(the CoreDNS build, the node-cache build) for a Corefile command: VERSION when given
    (--coredns-version), else the version of a CoreDNS image among IMAGES (a Deployment given
    with the ConfigMaps), else the newest pinned. Raises ValueError for a bad VERSION."""
    if version:
        return coredns_build(version, "--coredns-version"), node_cache_build()
    for image in images:
        v = version_from_image(image)
        if v is not None:
            return coredns_build(v, f"the image {image}"), node_cache_build()
    return coredns_build(), node_cache_build()
