"""A cache answering past its upstream (issue 26 items 2 and 4), on the real components.

(a) node2's real NodeLocal DNSCache (node-cache) serves an old address for www.example.org
    (ClusterLab.stale_cache); diagnose from pod2a, given the lab's two ConfigMaps as the plugin
    hands them over, asks node-cache and the kube-dns Service behind it directly.
(b) a real CoreDNS (1.12.1 and 1.14.7) with ``cache 30 { serve_stale }`` forwarding to a real
    CoreDNS upstream: the upstream answers, then dies or answers SERVFAIL; the cache keeps
    answering the old address with TTL 0 (1.12.1 with a SERVFAIL upstream: SERVFAIL after about a
    second, measured); after the remedy (restarting the cache) the failure is honest, and once
    the upstream answers the new address, the answer is fresh.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_resolve_lab import PODTRIAGE
from tests.lab import STALE_ADDRESS, components
from tests.lab.cluster import ClusterLab

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
COREFILES = ROOT / "tests" / "lab" / "corefiles"
CONFIGMAPS = ("--corefile", str(COREFILES / "nodelocaldns-configmap.yaml"),
              "--corefile", str(COREFILES / "coredns-configmap.yaml"))
FRESH = "192.168.50.20"  # the lab's app: serves port 80
NAME = "www.example.org"


def _cmd():
    return [PODTRIAGE] if PODTRIAGE else [sys.executable, "-m", "toolkit"]


def diagnose(run, *args, timeout=60):
    p = run(*_cmd(), "diagnose", *args, "-o", "json", timeout=timeout)
    assert p.returncode in (0, 1, 5), (p.returncode, p.stdout, p.stderr)
    doc = json.loads(p.stdout)
    assert (p.returncode == 0) == (doc["verdict"] == "ok")
    return doc


def stale(doc):
    return [f for f in doc["findings"] if f["code"] == "stale-cache-answer"]


# ------------------------------------------------------------------ (a) node2's NodeLocal

@pytest.fixture
def cluster(lab):
    cl = ClusterLab(lab).up()
    try:
        yield cl
    finally:
        cl.down()


def test_nodelocal_serving_an_old_address_is_a_stale_cache_answer(cluster):
    cluster.stale_cache(NAME, STALE_ADDRESS)

    def run(*cmd, timeout):
        return cluster.exec("pod2a", *cmd, timeout=timeout)

    doc = diagnose(run, NAME, "--port", "80", *CONFIGMAPS)
    assert (doc["verdict"], doc["confidence"]) == ("bad-answer", "high"), doc["findings"][:2]
    top = doc["findings"][0]
    assert top["code"] == "stale-cache-answer" and top["severity"] == "critical"
    d = top["data"]
    assert (d["cache"], d["upstream"]) == ("169.254.25.10", "10.233.0.3")
    assert (d["cache_answer"], d["upstream_answer"]) == ([STALE_ADDRESS], [FRESH])
    assert d["serve_stale"] is False and d["node_cache"] is True and d["cache_line"] == 52
    # the lab's stale node-cache is a hosts block (TTL 3600) the ConfigMap lacks: above the
    # `cache 30` cap, so not one of the cache's entries, and diagnose says so
    assert d["cache_ttl"] == 3600 and d["cache_max_ttl"] == 30 and 0 < d["upstream_ttl"] <= 30
    assert "above its `cache 30` cap of 30" in top["summary"]
    assert d["states"] == {STALE_ADDRESS: "host-unreachable"}
    assert "restart the NodeLocal DNSCache pod" in top["remedy"] and "`cache 30`" in top["remedy"]
    # CoreDNS behind it agrees with the final upstream: only node2's cache is named
    assert [c["cache"] for c in doc["cache_checks"]] == ["169.254.25.10", "10.233.0.3"]
    assert doc["cache_checks"][1]["staleness"] is None
    assert "corefile" in doc["support"] and "probes" in doc["support"]

    cluster.clear()  # the remedy: node2's node-cache restarted from the clean ConfigMap
    doc = diagnose(run, NAME, "--port", "80", *CONFIGMAPS)
    assert (doc["verdict"], doc["confidence"]) == ("ok", "high") and not stale(doc), doc["findings"]
    assert all(c["cache_answer"] == [FRESH] for c in doc["cache_checks"])


# ------------------------------------------------------------------ (b) serve_stale

CACHE_IP, UPSTREAM_IP = "127.0.0.53", "127.0.0.54"
QNAME = "stale.podtriage.test"
CACHE_COREFILE = """\
.:53 {
    bind %s
    cache 30 {
        serve_stale
    }
    forward . %s:53
}
""" % (CACHE_IP, UPSTREAM_IP)
SERVFAIL_COREFILE = """\
.:53 {
    bind %s
    template ANY ANY {
        rcode SERVFAIL
    }
}
""" % UPSTREAM_IP
UPSTREAM_COREFILE = """\
.:53 {
    bind %s
    hosts {
        %%s %s
        ttl 2
    }
}
""" % (UPSTREAM_IP, QNAME)


class ServeStale:
    """A serve_stale CoreDNS cache and its CoreDNS upstream on the lab pod's loopback."""

    def __init__(self, lab, key: str, tmp: Path):
        self.lab, self.key = lab, key
        self.dir = lab.rundir / ("servestale-" + key)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cache_conf = self.dir / "cache.Corefile"
        self.cache_conf.write_text(CACHE_COREFILE)
        self.resolv = tmp / "resolv.conf"  # the pod asks the cache, names as written
        self.resolv.write_text("nameserver %s\noptions ndots:1 timeout:1 attempts:1\n" % CACHE_IP)

    def _start(self, what: str, conf: Path) -> None:
        self.lab._spawn("servestale-" + what, "pod", [components.path(self.key), "-conf", conf],
                        cwd=self.dir, pidfile=self.dir / (what + ".pid"))

    def stop(self, what: str) -> None:
        self.lab._kill("servestale-" + what, pidfile=self.dir / (what + ".pid"))

    def upstream(self, address: str) -> None:
        conf = self.dir / "upstream.Corefile"
        conf.write_text(UPSTREAM_COREFILE % address)
        self._start("upstream", conf)
        self.wait(UPSTREAM_IP, lambda out: address in out)

    def servfail(self) -> None:
        """The upstream, restarted, answers SERVFAIL for everything (its backend is broken)."""
        self.stop("upstream")
        conf = self.dir / "upstream.Corefile"
        conf.write_text(SERVFAIL_COREFILE)
        self._start("upstream", conf)
        self.wait(UPSTREAM_IP, lambda out: "status: SERVFAIL" in out)

    def cache(self) -> None:
        self._start("cache", self.cache_conf)

    def dig(self, server: str) -> str:
        return self.lab.exec("pod", "dig", "+time=1", "+tries=1", "+noall", "+answer", "+comments",
                             "@" + server, QNAME, timeout=5).stdout

    def wait(self, server: str, ok, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while True:
            out = self.dig(server)
            if ok(out):
                return out
            if time.monotonic() > end:
                raise AssertionError("%s never answered as expected: %s" % (server, out))
            time.sleep(0.3)

    def diagnose(self):
        def run(*cmd, timeout):
            return self.lab.exec("pod", *cmd, timeout=timeout)
        return diagnose(run, QNAME, "--port", "80", "--file", str(self.resolv),
                        "--corefile", str(self.cache_conf))

    def down(self) -> None:
        self.stop("cache")
        self.stop("upstream")


def _ttl0(out: str) -> bool:
    return any(line.split()[1:2] == ["0"] and STALE_ADDRESS in line for line in out.splitlines()
               if line.startswith(QNAME))


@pytest.mark.parametrize("fails", ["dies", "servfail"])
@pytest.mark.parametrize("key", ["coredns-1.12", "coredns-1.14"])
def test_serve_stale_past_a_failing_upstream_then_the_remedy(lab, tmp_path, key, fails):
    s = ServeStale(lab, key, tmp_path)
    try:
        s.upstream(STALE_ADDRESS)
        s.cache()
        s.wait(CACHE_IP, lambda out: STALE_ADDRESS in out)  # the cache holds it
        if fails == "dies":
            s.stop("upstream")
        else:
            s.servfail()
        if (key, fails) == ("coredns-1.12", "servfail"):
            _servfail_on_1_12(s)
            return
        # past the entry's TTL (ttl 2, CoreDNS's cache keeps it at least 5 s): served stale, TTL 0
        s.wait(CACHE_IP, _ttl0, timeout=30)
        doc = s.diagnose()
        assert (doc["verdict"], doc["confidence"]) == ("bad-answer", "high"), (doc["cache_checks"], doc["answers"])
        top = doc["findings"][0]
        assert top["code"] == "stale-cache-answer" and top["severity"] == "critical"
        d = top["data"]
        assert (d["cache"], d["upstream"], d["cache_answer"], d["upstream_answer"]) == (
            CACHE_IP, UPSTREAM_IP, [STALE_ADDRESS], [])
        assert (d["cache_ttl"], d["upstream_ttl"], d["serve_stale"]) == (0, None, True)
        assert d["upstream_outcome"] == ("SERVFAIL" if fails == "servfail" else d["upstream_outcome"])
        assert d["staleness"] == "upstream-fails" and "TTL 0" in top["summary"]
        assert top["remedy"].startswith("1) fix the upstream 127.0.0.54") and "serve_stale" in top["remedy"]

        # the remedy: restart the cache (its entries live in memory); the upstream still dead
        s.stop("cache")
        s.cache()
        s.wait(CACHE_IP, lambda out: "status: SERVFAIL" in out)
        doc = s.diagnose()
        assert doc["verdict"] in ("dns-error", "dns-unavailable") and not stale(doc), doc["findings"][:2]
        assert doc["confidence"] == "high"

        _fresh_again(s)
    finally:
        s.down()


def _fresh_again(s: ServeStale) -> None:
    """The upstream back, the record moved: the answer is fresh, nothing stale."""
    s.stop("upstream")
    s.upstream(FRESH)
    s.wait(CACHE_IP, lambda out: FRESH in out)
    doc = s.diagnose()
    assert (doc["verdict"], doc["confidence"]) == ("ok", "high") and not stale(doc), doc["findings"][:2]
    assert doc["cache_checks"][0]["cache_answer"] == [FRESH]


def _servfail_on_1_12(s: ServeStale) -> None:
    """Measured: CoreDNS 1.12.1 serves the stale entry for about a second, then SERVFAIL for good:
    its background refresh's SERVFAIL goes into the negative cache, which getIgnoreTTL reads
    first and serves stale in turn (plugin/cache/handler.go; 1.14 prefers the positive entry
    over a cached SERVFAIL). After that the failure is honest: dns-error, nothing stale."""
    s.wait(CACHE_IP, lambda out: "status: SERVFAIL" in out, timeout=30)
    time.sleep(1.0)
    assert "status: SERVFAIL" in s.dig(CACHE_IP)  # for good, not a flip
    doc = s.diagnose()
    assert (doc["verdict"], doc["confidence"]) == ("dns-error", "high") and not stale(doc), doc["findings"][:2]
    _fresh_again(s)


def test_through_the_plugin_reading_the_configmaps(cluster, tmp_path):
    """kubectl podtriage --corefiles: the plugin reads kube-system's ConfigMaps with the user's
    kubectl and hands them to diagnose in an ephemeral container of pod2a (on node2)."""
    from tests.kube.labkube import PluginRunner, Workloads

    cluster.stale_cache(NAME, STALE_ADDRESS)
    kube = PluginRunner(cluster.lab, tmp_path)
    w = Workloads(cluster.lab)
    try:
        p = kube.run("pod2a", "-n", "wxwork", "--corefiles", "--", "diagnose", NAME, "--port", "80", "-o", "json")
        doc = json.loads(p.stdout)
        assert (doc["verdict"], doc["confidence"]) == ("bad-answer", "high"), (
            [(f["code"], f["summary"]) for f in doc["findings"]], doc["cache_checks"], doc["notes"], doc["answers"])
        top = doc["findings"][0]
        assert top["code"] == "stale-cache-answer"
        assert (top["data"]["cache"], top["data"]["upstream"]) == ("169.254.25.10", "10.233.0.3")
        assert "kube-system/nodelocaldns:Corefile" in top["data"]["corefile"]
    finally:
        w.close()
