"""The resolve rules are a pure function of recorded evidence: no network here."""

from __future__ import annotations

import json

from toolkit.dns.query import QueryError, QueryResult
from toolkit.dns.walk import AddrInfoResult, PathResult, Server, _step, path_outcome
from toolkit.model import Severity, Verdict
from toolkit.report.document import json_document
from toolkit.triage.resolve import ResolveResult
from toolkit.triage.resolve_findings import resolve_findings, resolve_report

CANDS = ("api.corp.example.wxwork.svc.alpha.pm.k8s.", "api.corp.example.svc.alpha.pm.k8s.",
         "api.corp.example.alpha.pm.k8s.", "api.corp.example.")


def q(server, transport, qname, qtype, rcode="NOERROR", answers=(), error=None, latency=1.0, flags=("qr", "rd", "ra")):
    return QueryResult(server=server, port=53, transport=transport, qname=qname, qtype=qtype,
                       rcode=rcode if error is None else None, answers=tuple(answers),
                       ttl=30 if answers else None, latency_ms=latency if error is None else None,
                       flags=flags if error is None else (), error=QueryError(error) if error else None)


def walked(server, role, transport, final_a, final_aaaa=(), nx_before=3, outcome="answer"):
    qs = []
    for c in CANDS[:nx_before]:
        qs += [q(server, transport, c, "A", "NXDOMAIN"), q(server, transport, c, "AAAA", "NXDOMAIN")]
    hit = CANDS[nx_before]
    qs += [q(server, transport, hit, "A", answers=final_a), q(server, transport, hit, "AAAA", answers=final_aaaa)]
    return PathResult(
        server=server, role=role, transport=transport, queries=tuple(qs),
        hit=hit if outcome == "answer" else None, outcome=path_outcome(outcome))


def failed(server, role, transport, error):
    qs = (q(server, transport, CANDS[0], "A", error=error), q(server, transport, CANDS[0], "AAAA", error=error))
    return PathResult(
        server=server, role=role, transport=transport, queries=qs, hit=None, outcome=path_outcome(error))


def result(*paths, system=None):
    servers = tuple({(p.server, p.role): Server(p.server, p.role) for p in paths}.values())
    return ResolveResult(
        name="api.corp.example", candidates=CANDS, servers=servers, paths=tuple(paths), system=system,
        resolv_conf_path="/etc/resolv.conf")


def codes(findings):
    return [f.code for f in findings]


def test_stale_stub_answer_differs_from_reference():
    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.77"]),
                 walked("169.254.25.10", "resolv.conf", "tcp", ["192.168.50.77"]),
                 walked("192.168.60.53", "reference", "udp", ["192.168.50.20"]),
                 walked("192.168.60.53", "reference", "tcp", ["192.168.50.20"]))
    fs = resolve_findings(res)
    f = next(f for f in fs if f.code == "answer-differs-from-reference")
    assert f.severity is Severity.CRITICAL and f.verdict is Verdict.BAD_ANSWER
    assert "169.254.25.10" in f.summary and "192.168.50.77" in f.summary and "192.168.50.20" in f.summary
    assert f.data["server"] == "169.254.25.10"
    report = resolve_report(res)
    assert report.verdict is Verdict.BAD_ANSWER
    doc = json.loads(json.dumps(json_document(report)))
    assert doc["verdict"] == "bad-answer"
    for key in ("name", "candidates", "results", "findings", "schema_version"):
        assert key in doc
    row = doc["results"][0]
    for key in ("server", "transport", "qtype", "qname", "rcode", "answers", "ttl", "latency_ms", "flags", "error"):
        assert key in row


def test_agreeing_servers_are_ok_but_chain_is_reported():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["192.168.50.20"]),
                 walked("10.0.0.10", "resolv.conf", "tcp", ["192.168.50.20"]))
    fs = resolve_findings(res)
    assert codes(fs) == ["search-nxdomain-chain"]
    assert fs[0].data["nxdomain"] == 6
    assert resolve_report(res).verdict is Verdict.OK


def test_disagreement_among_path_servers():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["10.1.1.1"]),
                 walked("10.0.0.11", "resolv.conf", "udp", ["10.2.2.2"]))
    f = next(f for f in resolve_findings(res) if f.code == "answers-disagree")
    assert f.severity is Severity.CRITICAL


def test_overlapping_sets_are_only_a_warning():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["10.1.1.1", "10.1.1.2"]),
                 walked("10.0.0.11", "resolv.conf", "udp", ["10.1.1.1"]))
    f = next(f for f in resolve_findings(res) if f.code == "answers-disagree")
    assert f.severity is Severity.WARNING


def test_timeout_is_dns_unavailable_naming_server_and_transport():
    res = result(failed("169.254.25.10", "resolv.conf", "udp", "timeout"),
                 failed("169.254.25.10", "resolv.conf", "tcp", "timeout"))
    fs = resolve_findings(res)
    assert fs[0].code == "server-timeout"
    assert "169.254.25.10" in fs[0].summary and "udp" in fs[0].summary and "tcp" in fs[0].summary
    assert resolve_report(res).verdict is Verdict.DNS_UNAVAILABLE


def test_refused_is_named_as_such():
    res = result(failed("169.254.25.10", "resolv.conf", "udp", "port-unreachable"),
                 failed("169.254.25.10", "resolv.conf", "tcp", "refused"))
    assert resolve_findings(res)[0].code == "server-refused"


def test_tcp_blocked_udp_works():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["10.1.1.1"]),
                 failed("10.0.0.10", "resolv.conf", "tcp", "timeout"))
    fs = resolve_findings(res)
    assert "tcp-fails-udp-works" in codes(fs)


def test_nxdomain_only_from_the_stub_path():
    nx = PathResult(
        server="169.254.25.10", role="resolv.conf", transport="udp",
        queries=tuple(q("169.254.25.10", "udp", c, t, "NXDOMAIN") for c in CANDS for t in ("A", "AAAA")),
        hit=None, outcome="nxdomain")
    res = result(nx, walked("192.168.60.53", "reference", "udp", ["192.168.50.20"]))
    f = next(f for f in resolve_findings(res) if f.code == "rcode-disagreement")
    assert f.verdict is Verdict.DNS_ERROR and "169.254.25.10" in " ".join(f.evidence)


def test_everyone_says_nxdomain():
    nx = PathResult(
        server="10.0.0.10", role="resolv.conf", transport="udp",
        queries=tuple(q("10.0.0.10", "udp", c, "A", "NXDOMAIN") for c in CANDS), hit=None,
        outcome="nxdomain")
    fs = resolve_findings(result(nx))
    assert codes(fs) == ["nxdomain"] and fs[0].verdict is Verdict.DNS_ERROR


def test_reserved_answer():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["127.0.0.1"]))
    assert "reserved-answer" in codes(resolve_findings(res))


def test_hosts_override_seen_through_getaddrinfo():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["10.1.1.1"]),
                 system=AddrInfoResult(("10.9.9.9",), None, 1.0))
    assert "system-differs" in codes(resolve_findings(res))


def test_glibc_stop_rules():
    ans = q("s", "udp", "x.", "A", answers=["1.2.3.4"])
    nx = q("s", "udp", "x.", "A", "NXDOMAIN")
    sf = q("s", "udp", "x.", "A", "SERVFAIL")
    ref = q("s", "udp", "x.", "A", "REFUSED")
    nodata = q("s", "udp", "x.", "AAAA")
    to = q("s", "udp", "x.", "A", error="timeout")
    assert _step([ans, nodata]) == "answer"
    assert _step([nx, nx]) is None  # NXDOMAIN: next candidate
    assert _step([sf, nx]) is None  # SERVFAIL: next candidate (glibc got_servfail)
    assert _step([nodata, nodata]) is None
    assert _step([ref, nx]) == "refused"  # REFUSED: glibc gives up (NO_RECOVERY)
    assert _step([to, nx]) == "timeout"


def test_renderers_do_not_crash():
    import io

    from toolkit.report import OutputFormat, render

    res = result(walked("169.254.25.10", "resolv.conf", "udp", ["192.168.50.77"]),
                 walked("192.168.60.53", "reference", "udp", ["192.168.50.20"]))
    report = resolve_report(res)
    for fmt in OutputFormat:
        buf = io.StringIO()
        render(report, fmt, buf)
        assert "bad-answer" in buf.getvalue()
    buf = io.StringIO()
    render(report, OutputFormat.ndjson, buf)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert lines[-1]["event"] == "summary" and lines[0]["event"] == "query"


def test_aaaa_dropped_is_its_own_finding_not_an_rcode():
    qs = (q("169.254.25.10", "udp", CANDS[3], "A", answers=["192.168.50.20"]),
          q("169.254.25.10", "udp", CANDS[3], "AAAA", error="timeout"))
    path = PathResult(
        server="169.254.25.10", role="resolv.conf", transport="udp", queries=qs, hit=CANDS[3],
        outcome="answer")
    fs = resolve_findings(result(path))
    assert [f.code for f in fs if f.severity is not Severity.INFO] == ["aaaa-unanswered"]
    assert fs[0].verdict is Verdict.DNS_UNAVAILABLE
