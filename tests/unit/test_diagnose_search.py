"""The rows of toolkit/triage/DECISIONS.md for answers that belong to another name (issue 28)
and for a pod nameserver that is alive while its upstream is silent or TCP to it is blocked
(issue 21 item 5): keyword-built evidence, no network."""

from __future__ import annotations

import pytest

from toolkit.dns.query import Soa
from toolkit.dns.walk import PathResult, Server, path_outcome
from toolkit.dns.wildcard import PROBE_LABEL, WildcardProbe
from toolkit.model import Severity, Verdict
from toolkit.sysinfo.resolvconf.wildcards import cluster_domain
from toolkit.triage.another_name import AnswerKind, analyze
from toolkit.triage.classify import Support, classify, grade
from toolkit.triage.resolve import ResolveResult
from toolkit.triage.resolve_findings import resolve_findings
from toolkit.triage.searchhits import SearchEvidence, SearchHit, gather_search, search_domain

from tests.unit.evidence_kit import addr, evidence, failed, q

NL, REFS, CORE = "169.254.25.10", "192.168.60.53", "10.233.0.3"
WILD, RIGHT = "192.168.50.77", "192.168.50.20"
CLUSTER = ("wxwork.svc.alpha.pm.k8s", "svc.alpha.pm.k8s", "alpha.pm.k8s")
NODE = "dc1.example.net"


def cands(name, search):
    return tuple(f"{name}.{d}." for d in search) + (f"{name}.",)


def walk(server, role, transport, candidates, answers, hit_at, final_rcode="NOERROR"):
    """A walk NXDOMAIN up to ``hit_at``, where ``answers`` come (none: the walk ends there)."""
    qs = []
    for c in candidates[:hit_at]:
        qs += [q(server, transport, c, "A", "NXDOMAIN"), q(server, transport, c, "AAAA", "NXDOMAIN")]
    c = candidates[hit_at]
    qs += [q(server, transport, c, "A", final_rcode, answers=answers), q(server, transport, c, "AAAA", final_rcode)]
    ok = bool(answers)
    return PathResult(server=server, role=role, transport=transport, queries=tuple(qs),
                      hit=c if ok else None, outcome=path_outcome(
                          "answer" if ok else "nodata" if final_rcode == "NOERROR" else final_rcode.lower()))


def probe(domain, addrs):
    qname = f"{PROBE_LABEL}-0123abcd.{domain.strip('.')}." if domain != "." else f"{PROBE_LABEL}-0123abcd."
    return WildcardProbe(domain=domain if domain.endswith(".") else domain + ".",
                         result=q(NL, "udp", qname, "A", "NOERROR" if addrs else "NXDOMAIN", answers=addrs))


def scenario(*, name="api.corp.example", search=CLUSTER, hit_at=0, wrong=(WILD,), itself=(RIGHT,),
             probe_addrs=(WILD,), root_addrs=(), ref=None, ref_itself=(RIGHT,)):
    """A pod path answered by candidate ``hit_at``; the rest of its walk resolves ``itself``;
    the wildcard probe of that domain (and of the root) resolves to the given addresses; with
    ``ref`` ("nxdomain" or "answer"), a reference asked the candidate and the name itself."""
    cs = cands(name, search)
    paths = [walk(NL, "resolv.conf", t, cs, list(wrong), hit_at) for t in ("udp", "tcp")]
    rest_cands = cs[hit_at + 1:]
    hits = tuple(SearchHit(server=NL, role=p.role, transport=p.transport, candidate=cs[hit_at],
                           domain=search[hit_at] + ".", addresses=tuple(wrong),
                           rest=walk(NL, "resolv.conf", p.transport, rest_cands, list(itself), len(rest_cands) - 1,
                                     "NOERROR" if itself else "NXDOMAIN")
                           if rest_cands else None) for p in paths)
    meant_refs: tuple[PathResult, ...] = ()
    if ref is not None:
        paths += [walk(REFS, "reference", t, (cs[hit_at],), list(wrong) if ref == "answer" else [], 0,
                       "NOERROR" if ref == "answer" else "NXDOMAIN") for t in ("udp", "tcp")]
        meant_refs = tuple(walk(REFS, "reference", t, (f"{name}.",), list(ref_itself), 0) for t in ("udp", "tcp"))
    probes = (probe(search[hit_at], list(probe_addrs)),) + ((probe(".", list(root_addrs)),) if probe_addrs else ())
    found = SearchEvidence(name=name, search=tuple(search), hits=hits, probes=probes, meant_refs=meant_refs)
    servers = tuple({(p.server, p.role): Server(p.server, p.role) for p in paths}.values())
    return ResolveResult(name=name, candidates=cs, servers=servers, paths=tuple(paths), system=None,
                         resolv_conf_path="/etc/resolv.conf", search=found)


def diag(res, wrong_state, right_state="up", *, name="api.corp.example"):
    reps = [addr(WILD, wrong_state)] + ([addr(RIGHT, right_state)] if right_state else [])
    return classify(evidence(res, *reps, name=name))


# --- the rows -----------------------------------------------------------------------------

@pytest.mark.parametrize("ref", [None, "nxdomain"])
def test_namespace_wildcard_live_host_refusing_is_bad_answer_high(ref):
    c = diag(scenario(ref=ref), "port-closed")
    assert (c.verdict, c.confidence, c.rule) == (Verdict.BAD_ANSWER, "high", "answered_by_search_candidate")
    t = c.findings[0]
    assert t.code == "wildcard-search-domain" and t.severity is Severity.CRITICAL
    d = t.data
    assert d["addresses"] == [WILD] and d["candidate"] == "api.corp.example.wxwork.svc.alpha.pm.k8s."
    assert d["domain"] == "wxwork.svc.alpha.pm.k8s." and d["kind"] == "wildcard" and d["itself"] == [RIGHT]
    assert d["states"] == {WILD: "port-closed"} and d["itself_states"] == {RIGHT: "up"}
    assert "wildcard-probe" in d["confirmed_by"] and Support.WILDCARD_PROBE in c.support
    assert ("reference" in d["confirmed_by"]) == (ref is not None)
    assert any(e.startswith("wildcard probe (a random name nobody created") for e in t.evidence)
    # the port-closed of the wildcard's address is no verdict of its own
    assert not any(f.code == "port-closed" for f in c.findings) and c.settle is None
    # remedies, in order; the namespace domain is the kubelet's own: no --resolv-conf step
    r = t.remedy
    assert r.index("trailing dot") < r.index("ndots") < r.index("remove the wildcard")
    assert "--resolv-conf" not in r and 'value: "2"' in r


def test_node_domain_wildcard_dead_address_is_bad_answer_high_and_names_the_kubelet():
    search = CLUSTER + (NODE,)
    c = diag(scenario(search=search, hit_at=3), "host-unreachable")
    assert (c.verdict, c.confidence) == (Verdict.BAD_ANSWER, "high")
    t = c.findings[0]
    assert t.data["domain"] == "dc1.example.net." and t.data["kind"] == "wildcard"
    r = t.remedy
    assert r.index("trailing dot") < r.index("ndots") < r.index("--resolv-conf") < r.index("wildcard *.dc1")
    # the dead wildcard address is no indeterminate dead-answer of its own
    assert not any(f.code == "dead-answer-unconfirmed" for f in c.findings)


def test_nxdomain_rewriting_resolver_is_the_same_row():
    search = CLUSTER + (NODE,)
    c = diag(scenario(search=search, hit_at=3, root_addrs=(WILD,), ref="answer"), "host-unreachable")
    assert (c.verdict, c.confidence) == (Verdict.BAD_ANSWER, "high")
    t = c.findings[0]
    assert t.code == "wildcard-search-domain" and t.data["kind"] == "nxdomain-rewrite"
    assert "rewrites NXDOMAIN" in t.summary and "rewriting NXDOMAIN" in t.remedy
    # the rewriting reference answers the candidate too (no denial), but gives the name itself
    # another address: both confirm
    assert t.data["reference_denies"] == [] and t.data["confirmed_by"] == ["wildcard-probe", "reference"]


@pytest.mark.parametrize("ref", [None, "nxdomain"])
def test_wildcard_address_serving_works_by_accident_ok_with_a_warning(ref):
    c = diag(scenario(ref=ref), "up")
    assert (c.verdict, c.confidence) == (Verdict.OK, "high")
    w = next(f for f in c.findings if f.code == "wildcard-search-domain")
    assert w.severity is Severity.WARNING and w.verdict is None and "works by accident" in w.summary


def test_own_record_of_the_candidate_without_reference_is_medium_and_says_what_settles_it():
    c = diag(scenario(probe_addrs=()), "host-unreachable")
    assert (c.verdict, c.confidence) == (Verdict.BAD_ANSWER, "medium")
    t = c.findings[0]
    assert t.code == "answered-by-search-candidate" and t.data["kind"] == "candidate"
    assert "--reference" in (c.settle or "") and "remove the record" in t.remedy


def test_own_record_denied_by_the_reference_is_high():
    c = diag(scenario(probe_addrs=(), ref="nxdomain"), "host-unreachable")
    assert (c.verdict, c.confidence) == (Verdict.BAD_ANSWER, "high")
    assert c.findings[0].data["confirmed_by"] == ["reference"]
    assert c.findings[0].data["reference_denies"] == [REFS]


def test_a_short_name_answered_by_its_cluster_candidate_is_what_it_means():
    # backend -> backend.wxwork.svc.alpha.pm.k8s: nothing after it resolves, no wildcard, and
    # the reference knows nothing of the cluster's zone.
    res = scenario(name="backend", itself=(), probe_addrs=(), ref="nxdomain", ref_itself=(), wrong=(RIGHT,))
    c = classify(evidence(res, addr(RIGHT, "up"), name="backend"))
    assert c.verdict is Verdict.OK
    assert not any(f.code in ("wildcard-search-domain", "answered-by-search-candidate") for f in c.findings)


def test_the_name_as_written_gathers_nothing():
    p = walk(NL, "resolv.conf", "udp", ("api.corp.example.",), [RIGHT], 0)
    assert gather_search("api.corp.example.", ("api.corp.example.",), CLUSTER, [p], (), None) is None  # type: ignore[arg-type]
    assert search_domain("api.corp.example.", "api.corp.example", CLUSTER) is None
    assert search_domain("api.corp.example.svc.alpha.pm.k8s.", "api.corp.example", CLUSTER) == "svc.alpha.pm.k8s."
    # x.svc + alpha.pm.k8s is not x + svc.alpha.pm.k8s
    assert search_domain("x.svc.alpha.pm.k8s.", "x.svc", CLUSTER) == "alpha.pm.k8s."
    assert cluster_domain(CLUSTER + (NODE,)) == "alpha.pm.k8s"
    assert cluster_domain(("corp.example",)) is None


def test_resolve_reports_the_shape_before_any_probe_and_the_reference_s_nxdomain_is_its_evidence():
    res = scenario(ref="nxdomain")
    fs = resolve_findings(res)
    f = next(f for f in fs if f.code == "wildcard-search-domain")
    assert f.severity is Severity.CRITICAL and f.verdict is Verdict.BAD_ANSWER
    assert any("does not exist (NXDOMAIN)" in e for e in f.evidence)
    # the references' NXDOMAIN for the candidate is that finding's evidence, not a disagreement
    assert not any(f.code == "rcode-disagreement" for f in fs)
    (a,) = analyze(res.search, res.paths)
    assert a.kind is AnswerKind.WILDCARD and a.fires


def test_resolve_without_confirmation_is_a_warning():
    fs = resolve_findings(scenario(probe_addrs=()))
    f = next(f for f in fs if f.code == "answered-by-search-candidate")
    assert f.severity is Severity.WARNING


def test_grade_of_a_row_that_needs_confirmation():
    assert grade(Verdict.BAD_ANSWER, ("paths", "probes"), needs_confirmation=True) == "medium"
    assert grade(Verdict.BAD_ANSWER, ("wildcard-probe",), needs_confirmation=True) == "high"
    assert grade(Verdict.BAD_ANSWER, ("reference",), needs_confirmation=True) == "high"


# --- the pod's nameserver alive, its upstream silent (issue 21 item 5b) -------------------

CS = cands("www.example.org", CLUSTER)


def part_way(server, transport, error="timeout"):
    """NXDOMAIN for the cluster's candidates (answered by CoreDNS's kubernetes plugin), then
    no answer for the name that must go upstream."""
    qs = []
    for c in CS[:3]:
        qs += [q(server, transport, c, "A", "NXDOMAIN"), q(server, transport, c, "AAAA", "NXDOMAIN")]
    qs += [q(server, transport, CS[3], "A", error=error), q(server, transport, CS[3], "AAAA", error=error)]
    return PathResult(server=server, role="resolv.conf", transport=transport, queries=tuple(qs), hit=None,
                      outcome=path_outcome(error))


def res_of(*paths):
    servers = tuple({(p.server, p.role): Server(p.server, p.role) for p in paths}.values())
    return ResolveResult(name="www.example.org", candidates=CS, servers=servers, paths=tuple(paths), system=None,
                         resolv_conf_path="/etc/resolv.conf")


def test_alive_cache_with_a_silent_upstream_is_upstream_silent_not_a_dead_cache():
    patient = q(NL, "udp", CS[3], "A", "SERVFAIL", latency=6004.0)
    res = res_of(part_way(NL, "udp"), part_way(NL, "tcp"), failed(REFS, "reference", "udp", "timeout"),
                 failed(REFS, "reference", "tcp", "timeout"))
    c = classify(evidence(res, name="www.example.org", patient=patient))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.DNS_UNAVAILABLE, "high", "cache_upstream_silent")
    t = c.findings[0]
    assert t.code == "upstream-silent" and t.data["servers"] == [NL] and t.data["alive_answers"] == 12
    assert "SERVFAIL after 6.0 s" in t.summary and t.data["silent_references"] == [REFS]
    assert any(e.startswith("asked once more, patiently") for e in t.evidence)


def test_a_cache_that_answers_nothing_at_all_is_still_a_dead_cache():
    res = res_of(failed(NL, "resolv.conf", "udp", "timeout"), failed(NL, "resolv.conf", "tcp", "timeout"))
    patient = q(NL, "udp", CS[0], "A", error="timeout")
    c = classify(evidence(res, name="www.example.org", patient=patient))
    assert (c.verdict, c.rule) == (Verdict.DNS_UNAVAILABLE, "pod_dns_silent")


# --- TCP blocked at the upstream, the cache forwards over TCP (issue 21 item 5c) -----------

def test_tcp_block_at_the_upstream_names_the_tcp_propagation_and_the_reference_vouches_over_udp():
    ref_udp = walk(REFS, "reference", "udp", ("www.example.org.",), [RIGHT], 0)
    res = res_of(part_way(NL, "udp"), part_way(NL, "tcp"), ref_udp, failed(REFS, "reference", "tcp", "timeout"))
    c = classify(evidence(res, addr(RIGHT, "up"), name="www.example.org"))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.DNS_UNAVAILABLE, "high", "tcp_forward_blocked")
    t = c.findings[0]
    assert t.code == "forward-tcp-blocked" and t.data["tcp_blocked"] == [REFS]
    assert "force_tcp" in t.summary and "prefer_udp" in t.remedy
    assert not any(f.code == "reference-unavailable" for f in c.findings)
    ref = next(f for f in c.findings if f.code == "tcp-fails-udp-works")
    assert ref.verdict is None and "[reference]" in ref.summary
    assert not any(f.code == "upstream-silent" for f in c.findings)


def test_tcp_block_seen_through_the_server_behind_the_cache_is_not_a_broken_cache():
    behind = (walk(CORE, "server", "udp", CS, [RIGHT], 3), part_way(CORE, "tcp"))
    behind = (behind[0], PathResult(server=CORE, role="server", transport="tcp", queries=behind[1].queries,
                                    hit=None, outcome=behind[1].outcome))
    res = res_of(part_way(NL, "udp"), part_way(NL, "tcp"))
    hops = ("nodelocal block .:53 (line 50): forward -> 10.233.0.3:53 over tcp",
            "coredns block .:53 (line 12): forward -> 192.168.60.53:53 over tcp")
    c = classify(evidence(res, name="www.example.org", behind=behind, corefile_hops=hops))
    assert c.rule == "tcp_forward_blocked"
    t = c.findings[0]
    assert t.data["tcp_blocked"] == [CORE] and t.data["last_tcp_hop"] == "192.168.60.53:53"
    assert "192.168.60.53:53" in t.remedy
    assert not any(f.code == "cache-broken-hop" for f in c.findings)


def test_soa_evidence_is_the_answered_name_s_zone_not_the_cluster_s():
    cluster_soa = Soa("alpha.pm.k8s.", "ns.dns.alpha.pm.k8s.", 1796426834, 30, 5)
    stale, fresh = (Soa("corp.example.", "ns1.corp.example.", s, 86400, 300) for s in (2017010101, 2026110101))
    cs = cands("api.corp.example", CLUSTER)

    def path(server, role, soas, answer, ref=False):
        from dataclasses import replace

        qs = [] if ref else [replace(q(server, "udp", c, t, "NXDOMAIN"), soa=cluster_soa)
                             for c in cs[:3] for t in ("A", "AAAA")]
        qs += [q(server, "udp", cs[3], "A", answers=[answer]), replace(q(server, "udp", cs[3], "AAAA"), soa=soas)]
        return PathResult(server=server, role=role, transport="udp", queries=tuple(qs), hit=cs[3],
                          outcome=path_outcome("answer"))

    res = ResolveResult(name="api.corp.example", candidates=cs, servers=(Server(NL, "resolv.conf"),
                        Server(REFS, "reference")), paths=(path(NL, "resolv.conf", stale, WILD),
                        path(REFS, "reference", fresh, RIGHT, ref=True)), system=None, resolv_conf_path="x")
    f = next(f for f in resolve_findings(res) if f.code == "answer-differs-from-reference")
    soa = [e for e in f.evidence if e.startswith("SOA")]
    assert soa == [f"SOA seen via {NL}: zone corp.example. serial 2017010101 mname ns1.corp.example.",
                   f"SOA seen via {REFS}: zone corp.example. serial 2026110101 mname ns1.corp.example."]


def test_tcp_block_after_the_caches_kept_the_servfail():
    # A few seconds later the caches answer the SERVFAIL they kept (CoreDNS's cache plugin):
    # the pod's paths end in SERVFAIL at once, the server behind too over TCP.
    def servfail(server, role, transport):
        return walk(server, role, transport, CS, [], 3, "SERVFAIL")

    ref_udp = walk(REFS, "reference", "udp", ("www.example.org.",), [RIGHT], 0)
    res = res_of(servfail(NL, "resolv.conf", "udp"), servfail(NL, "resolv.conf", "tcp"), ref_udp,
                 failed(REFS, "reference", "tcp", "timeout"))
    c = classify(evidence(res, addr(RIGHT, "up"), name="www.example.org"))
    assert (c.verdict, c.rule) == (Verdict.DNS_UNAVAILABLE, "tcp_forward_blocked")
    # an NXDOMAIN from the pod's path is no TCP block
    res = res_of(walk(NL, "resolv.conf", "udp", CS, [], 3, "NXDOMAIN"), ref_udp,
                 failed(REFS, "reference", "tcp", "timeout"))
    assert classify(evidence(res, addr(RIGHT, "up"), name="www.example.org")).rule != "tcp_forward_blocked"


def test_a_cache_that_answered_nothing_but_servfail_when_asked_patiently_is_alive():
    res = res_of(failed(NL, "resolv.conf", "udp", "timeout"), failed(NL, "resolv.conf", "tcp", "timeout"))
    patient = q(NL, "udp", CS[0], "A", "SERVFAIL", latency=4000.0)
    c = classify(evidence(res, name="www.example.org", patient=patient))
    assert (c.verdict, c.rule) == (Verdict.DNS_UNAVAILABLE, "cache_upstream_silent")
    assert c.findings[0].data["alive_answers"] == 0 and "SERVFAIL after 4.0 s" in c.findings[0].summary


def test_what_confirms_an_answer_is_a_kind_of_support():
    from toolkit.triage.another_name import ConfirmedBy

    assert {c.value for c in ConfirmedBy} <= {s.value for s in Support}
