"""A cache answering past its upstream (issue 26 item 2): the Corefile trace's caching hops
(the lab's real ConfigMaps, and serve_stale Corefiles as CoreDNS 1.12.1 and 1.14.7 accept
them), the rotation rule, and the diagnose row from keyword-built Evidence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from toolkit.corefile.cachechain import CacheHop, trace_cache_hops
from toolkit.dns.query import QueryError, QueryResult, Transport
from toolkit.model import Severity, Verdict
from toolkit.triage.classify import classify
from toolkit.triage.stalecache import CacheCheck, Staleness

from tests.unit.evidence_kit import addr, evidence, result, walked

LAB = Path(__file__).resolve().parents[1] / "lab" / "corefiles"
NL, CORE, UP = "169.254.25.10", "10.233.0.3", "192.168.60.53"
OLD, NEW, NEW2 = "192.168.50.77", "192.168.50.20", "192.168.50.21"
QNAME = "api.corp.example."
HOP = CacheHop(corefile="nodelocaldns", block=".:53", line=50, cache=True, cache_line=52, cache_text="cache 30",
               serve_stale=False, upstream=CORE, upstream_port=53, node_cache=True)


def ans(server, addrs=(), ttl=30, rcode="NOERROR", error=None):
    return QueryResult(server=server, port=53, transport=Transport.UDP, qname=QNAME, qtype="A",
                       rcode=None if error else rcode, answers=tuple(addrs), ttl=ttl if addrs else None,
                       error=QueryError(error) if error else None, error_detail=error)


def check(cache, *ups, cache_ttl=12, hop=HOP):
    return CacheCheck(hop=hop, cache=NL, qname=QNAME, cache_answer=ans(NL, cache, cache_ttl), upstream_answers=ups)


def test_the_lab_configmaps_give_nodelocal_then_coredns_each_with_its_upstream():
    hops = trace_cache_hops("www.example.org", [str(LAB / "nodelocaldns-configmap.yaml"),
                                                 str(LAB / "coredns-configmap.yaml")])
    assert [(h.cache, h.upstream, h.node_cache, h.serve_stale) for h in hops] == [
        (True, CORE, True, False), (True, UP, False, False)]
    assert hops[0].cache_text == "cache 30" and hops[0].cache_line == 52  # the ConfigMap's file line
    assert hops[0].max_ttl == 30


def test_a_placeholder_target_ends_the_chain():
    # the upstream manifest's NodeLocal forwards to __PILLAR__ placeholders node-cache fills at start
    data = LAB.parents[1] / "data" / "corefiles"
    hops = trace_cache_hops("www.example.org", [str(data / "k8s-addons" / "nodelocaldns-applied.yaml"),
                                                 str(data / "k8s-addons" / "coredns.yaml")])
    assert hops == ()


@pytest.mark.parametrize(("body", "cap"), [("cache", 3600), ("cache 30", 30), ("cache example.org", 3600),
                                           ("cache 30 {\n success 9984 10\n }", 10),
                                           ("cache 30 {\n keepttl\n }", None)])
def test_the_ttl_cap_of_cache_as_coredns_reads_it(tmp_path, body, cap):
    cf = tmp_path / "Corefile"
    cf.write_text(".:53 {\n    %s\n    forward . 127.0.0.54\n}\n" % body)
    (hop,) = trace_cache_hops("www.example.org", [str(cf)])
    assert hop.max_ttl == cap


@pytest.mark.parametrize("line", ["cache 30 {\n        serve_stale\n    }",
                                  "cache 30 {\n        serve_stale 1h immediate\n    }"])
def test_serve_stale_is_read_from_the_cache_block(tmp_path, line):
    cf = tmp_path / "Corefile"
    cf.write_text(".:53 {\n    bind 127.0.0.53\n    %s\n    forward . 127.0.0.54:53\n}\n" % line)
    (hop,) = trace_cache_hops("www.example.org", [str(cf)])
    assert hop.serve_stale is True and hop.upstream == "127.0.0.54" and hop.cache_line == 3
    assert hop.cache_text is not None and hop.cache_text.startswith("cache 30 { serve_stale")


def test_rotation_is_not_staleness():
    # the upstream gives subsets of a pool; the cache holds one that shares an address
    assert check([OLD, NEW], ans(CORE, [NEW, NEW2]), ans(CORE, [OLD, NEW2])).staleness is None
    # ... one disjoint from both answers is stale
    c = check([OLD], ans(CORE, [NEW]), ans(CORE, [NEW2]))
    assert c.rotating and c.staleness is Staleness.DIFFERS and c.stale_addresses == (OLD,)


def test_stable_upstream_set():
    assert check([OLD], ans(CORE, [NEW]), ans(CORE, [NEW])).staleness is Staleness.DIFFERS
    assert check([NEW], ans(CORE, [NEW]), ans(CORE, [NEW])).staleness is None
    # the cache gives fewer addresses than the upstream now has: the upstream grew, nothing stale
    assert check([NEW], ans(CORE, [NEW, NEW2]), ans(CORE, [NEW, NEW2])).staleness is None


@pytest.mark.parametrize("up", [ans(CORE, rcode="SERVFAIL"), ans(CORE, rcode="NXDOMAIN"), ans(CORE),
                                ans(CORE, error="timeout")])
def test_an_upstream_that_gives_no_address_while_the_cache_answers(up):
    c = check([OLD], up, cache_ttl=0)
    assert c.staleness is Staleness.UPSTREAM_FAILS and c.stale_addresses == (OLD,)
    assert check([], up).staleness is None  # the cache fails too: nothing stale to tell


@pytest.mark.parametrize("up", [ans(CORE, rcode="REFUSED"), ans(CORE, error="timeout")])
def test_an_upstream_the_pod_cannot_ask_is_no_staleness_without_the_ttl_0_marker(up):
    # an upstream that admits only the nodes: the cache, fed by it, counts its TTL down
    assert check([OLD], up, cache_ttl=17).staleness is None
    assert check([OLD], up, cache_ttl=0).staleness is Staleness.UPSTREAM_FAILS


def _diagnose(c, state, **kw):
    paths = [walked(NL, "resolv.conf", "udp", c.cache_addresses), walked(NL, "resolv.conf", "tcp", c.cache_addresses)]
    e = evidence(result(*paths), addr(OLD, state), cache_checks=(c,),
                 corefile_hops=("nodelocal -> 10.233.0.3", "coredns -> 192.168.60.53"), **kw)
    return classify(e)


def test_stale_cache_with_a_dead_address_is_bad_answer_high():
    c = _diagnose(check([OLD], ans(CORE, [NEW], ttl=30), ans(CORE, [NEW], ttl=30)), "host-unreachable")
    assert (c.verdict, c.confidence, c.rule) == (Verdict.BAD_ANSWER, "high", "stale_cache_answer")
    t = c.findings[0]
    assert t.code == "stale-cache-answer" and t.severity is Severity.CRITICAL
    d = t.data
    assert (d["cache"], d["upstream"], d["cache_answer"], d["upstream_answer"]) == (NL, CORE, [OLD], [NEW])
    assert (d["cache_ttl"], d["upstream_ttl"], d["serve_stale"]) == (12, 30, False)
    assert "NodeLocal DNSCache 169.254.25.10" in t.summary and "counts down" in t.summary
    assert "restart the NodeLocal DNSCache pod" in t.remedy and "`cache 30` at nodelocaldns line 52" in t.remedy
    # the lower rule about the same address is not a second verdict
    assert not any(f.code == "dead-answer-unconfirmed" for f in c.findings)


def test_serve_stale_past_a_dead_upstream_names_the_ttl_0_marker():
    hop = replace(HOP, serve_stale=True, cache_text="cache 30 { serve_stale }", node_cache=False)
    c = _diagnose(check([OLD], ans(CORE, error="timeout"), cache_ttl=0, hop=hop), "host-unreachable")
    assert (c.verdict, c.confidence, c.rule) == (Verdict.BAD_ANSWER, "high", "stale_cache_answer")
    t = c.findings[0]
    assert t.data["serve_stale"] is True and t.data["cache_ttl"] == 0 and t.data["upstream_answer"] == []
    assert t.data["staleness"] == "upstream-fails" and "TTL 0" in t.summary
    assert t.remedy.startswith("1) fix the upstream") and "rollout restart deployment coredns" in t.remedy
    assert "serve_stale" in t.remedy


def test_a_ttl_above_the_cache_cap_says_the_answer_is_no_cache_entry():
    hop = replace(HOP, max_ttl=30)
    c = _diagnose(check([OLD], ans(CORE, [NEW]), ans(CORE, [NEW]), cache_ttl=3600, hop=hop), "host-unreachable")
    t = c.findings[0]
    assert "above its `cache 30` cap of 30" in t.summary and t.data["cache_max_ttl"] == 30


def test_a_stale_address_that_serves_is_a_warning_without_verdict():
    c = _diagnose(check([OLD], ans(CORE, [NEW]), ans(CORE, [NEW])), "up")
    assert c.verdict is Verdict.OK
    t = next(f for f in c.findings if f.code == "stale-cache-answer")
    assert t.severity is Severity.WARNING and t.verdict is None


def test_no_checks_no_row():
    c = _diagnose(check([NEW], ans(CORE, [NEW]), ans(CORE, [NEW])), "up")
    assert c.verdict is Verdict.OK and not any(f.code == "stale-cache-answer" for f in c.findings)
