"""classify() is a pure function of the evidence: every verdict rule from recorded inputs."""

from __future__ import annotations

from toolkit.model import Verdict
from toolkit.report.document import json_document
from toolkit.triage.diagnose import Evidence, classify

from tests.unit.evidence_kit import addr, evidence
from tests.unit.test_resolve_findings import CANDS, failed, q, result, walked
from toolkit.dns.walk import PathResult, path_outcome


def FakeAddr(address, state, summary=""):  # noqa: N802 - kept for the tests below
    return addr(address, state)


def ev(res, *addrs, ports=(80,), ports_given=True, **kw):
    return evidence(res, *addrs, ports=ports, ports_given=ports_given, **kw)


def seed_paths(with_ref=True):
    paths = [walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.77"]),
             walked("169.254.25.10", "resolv.conf", "tcp", ["192.168.50.77"])]
    if with_ref:
        paths.append(walked("192.168.60.53", "reference", "udp", ["192.168.50.20"]))
    return result(*paths)


def test_seed_with_reference_is_bad_answer_naming_the_server():
    c = classify(ev(seed_paths(), FakeAddr("192.168.50.77", "host-unreachable", "host-unreachable from 10.244.1.1"),
                    FakeAddr("192.168.50.20", "up", "open")))
    assert c.verdict is Verdict.BAD_ANSWER and c.confidence == "high"
    top = c.findings[0]
    assert top.code == "stale-answer" and "169.254.25.10" in top.summary
    assert top.data["reference_addresses"] == ["192.168.50.20"]


def test_seed_without_reference_is_not_a_confident_verdict():
    c = classify(ev(seed_paths(with_ref=False), FakeAddr("192.168.50.77", "host-unreachable", "x")))
    assert c.verdict is Verdict.INDETERMINATE and c.confidence == "low"
    assert "--reference" in (c.settle or "")


def test_host_down_with_agreeing_reference():
    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.20"]),
                 walked("192.168.60.53", "reference", "udp", ["192.168.50.20"]))
    c = classify(ev(res, FakeAddr("192.168.50.20", "host-unreachable", "x")))
    assert c.verdict is Verdict.UNREACHABLE_HOST and c.confidence == "high"


def test_port_closed():
    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.20"]))
    c = classify(ev(res, FakeAddr("192.168.50.20", "port-closed", "port 81 closed (RST)")))
    assert c.verdict is Verdict.PORT_CLOSED


def test_filtered():
    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.20"]))
    c = classify(ev(res, FakeAddr("192.168.50.20", "filtered", "admin-prohibited from 10.244.1.1")))
    assert c.verdict is Verdict.FILTERED


def test_healthy():
    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.20"]),
                 walked("169.254.25.10", "resolv.conf", "tcp", ["192.168.50.20"]))
    c = classify(ev(res, FakeAddr("192.168.50.20", "up", "open")))
    assert c.verdict is Verdict.OK


def test_nodelocal_down_coredns_answers_names_cache():
    res = result(failed("169.254.25.10", "resolv.conf", "udp", "port-unreachable"),
                 failed("169.254.25.10", "resolv.conf", "tcp", "refused"),
                 walked("10.233.0.3", "server", "udp", ["192.168.50.20"]))
    c = classify(ev(res))
    assert c.verdict is Verdict.DNS_UNAVAILABLE
    assert c.findings[0].code == "cache-broken-hop"
    assert "169.254.25.10" in c.findings[0].summary and "10.233.0.3" in c.findings[0].summary


def test_nodelocal_silent():
    res = result(failed("169.254.25.10", "resolv.conf", "udp", "timeout"),
                 failed("169.254.25.10", "resolv.conf", "tcp", "timeout"))
    c = classify(ev(res))
    assert c.verdict is Verdict.DNS_UNAVAILABLE
    assert any(f.code == "server-timeout" for f in c.findings)


def test_nxdomain_only_from_stub_path():
    nx = PathResult(
        server="169.254.25.10", role="resolv.conf", transport="udp",
        queries=tuple(q("169.254.25.10", "udp", c, "A", "NXDOMAIN") for c in CANDS), hit=None,
        outcome=path_outcome("nxdomain"))
    res = result(nx, walked("192.168.60.53", "reference", "udp", ["192.168.50.20"]))
    c = classify(ev(res, FakeAddr("192.168.50.20", "up", "open")))
    assert c.verdict is Verdict.DNS_ERROR
    assert c.findings[0].code == "error-only-on-path"


def test_differing_but_alive_answers_are_not_bad_answer():
    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["10.1.1.1"]),
                 walked("192.168.60.53", "reference", "udp", ["10.1.1.2"]))
    c = classify(ev(res, FakeAddr("10.1.1.1", "up", "open"), FakeAddr("10.1.1.2", "up", "open")))
    assert c.verdict is Verdict.OK


def test_dead_only_from_some_servers():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["10.1.1.1"]),
                 walked("10.0.0.11", "resolv.conf", "udp", ["10.9.9.9"]))
    c = classify(ev(res, FakeAddr("10.1.1.1", "up", "open"), FakeAddr("10.9.9.9", "host-unreachable", "x")))
    assert c.verdict is Verdict.BAD_ANSWER
    assert c.findings[0].data["dead_from"] == ["10.0.0.11"]


def test_silence_part_way_is_dns_unavailable_not_dns_error():
    qs = (q("169.254.25.10", "udp", CANDS[0], "A", "NXDOMAIN"),
          q("169.254.25.10", "udp", CANDS[0], "AAAA", error="timeout"))
    res = result(PathResult(
        server="169.254.25.10", role="resolv.conf", transport="udp", queries=qs, hit=None, outcome=path_outcome("timeout")))
    assert classify(ev(res)).verdict is Verdict.DNS_UNAVAILABLE


def test_more_addresses_than_probed_do_not_crash_and_are_not_evidence():
    """Issue 10: 12 answers, 8 probed: the 4 others are 'not probed', never a KeyError."""
    from toolkit.triage.diagnose import MAX_PROBED_ADDRESSES, diagnose_report, probe_order

    addrs = [f"10.1.1.{i}" for i in range(1, 13)]
    res = result(walked("169.254.25.10", "resolv.conf", "udp", addrs))
    probed, unprobed = probe_order(res)
    assert len(probed) == MAX_PROBED_ADDRESSES and len(unprobed) == 4
    assert probed[:2] == ["10.1.1.1", "10.1.1.2"]  # numeric order, not text (.10 after .9)
    for state in ("up", "host-unreachable"):
        e = ev(res, *(FakeAddr(a, state, "x") for a in probed))
        c = classify(e)
        assert not any(set(unprobed) & set(f.data.get("addresses", ())) for f in c.findings)
        doc = json_document(diagnose_report(e))
        assert {a["address"]: a["state"] for a in doc["addresses"]}["10.1.1.12"] == "not-probed"
