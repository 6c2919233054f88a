"""The decision table of toolkit/triage/DECISIONS.md, row by row, from keyword-built Evidence
(no network, no root). Each row: the paths' answers, each address's state, the references,
and the expected verdict, confidence and deciding finding."""

from __future__ import annotations

import pytest

from toolkit.dns.walk import PathResult, path_outcome
from toolkit.model import Severity, Verdict
from toolkit.triage.classify import classify, grade
from toolkit.triage.table import RULES

from tests.unit.evidence_kit import CANDS, addr, evidence, failed, q, result, walked

NL, REFS, CORE = "169.254.25.10", "192.168.60.53", "10.233.0.3"
WRONG, RIGHT = "192.168.50.77", "192.168.50.20"


def both(server, role, addrs):
    return [walked(server, role, "udp", addrs), walked(server, role, "tcp", addrs)]


def nx_path(server, role, transport, rcode="NXDOMAIN"):
    return PathResult(
        server=server, role=role, transport=transport,
        queries=tuple(q(server, transport, c, "A", rcode) for c in CANDS), hit=None, outcome=path_outcome(rcode.lower()))


def stale(state, *, ref=True, ref_state="up"):
    paths = both(NL, "resolv.conf", [WRONG]) + (both(REFS, "reference", [RIGHT]) if ref else [])
    return evidence(result(*paths), addr(WRONG, state), *( [addr(RIGHT, ref_state)] if ref else []))


def top(c):
    return c.findings[0]


# --- the path answers differ from a reference -------------------------------------------

@pytest.mark.parametrize("state", ["host-unreachable", "port-closed", "filtered", "silent", "routing"])
def test_differs_from_reference_and_does_not_serve_is_bad_answer_high(state):
    c = classify(stale(state))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.BAD_ANSWER, "high", "stale_answer")
    t = top(c)
    assert t.code == "stale-answer" and t.data["addresses"] == [WRONG]
    assert t.data["reference_addresses"] == [RIGHT] and t.data["servers"] == [NL]
    assert WRONG in t.summary and RIGHT in t.summary and NL in t.summary
    # The symptom on the wrong address is never a verdict of its own.
    assert not any(f.verdict in (Verdict.PORT_CLOSED, Verdict.FILTERED) for f in c.findings)


def test_stale_answer_names_the_corefile_block_and_upstream():
    from toolkit.model import Finding

    stub = Finding(code="corefile-stub-forward", severity=Severity.WARNING, summary="s", evidence=(), remedy="", verdict=None,
                   data={"corefile": "coredns", "block": "corp.example:53", "line": 7, "file_line": 12,
                    "upstreams": ["192.168.50.53"]})
    e = stale("port-closed")
    e = evidence(e.resolve, *e.probes, corefile_findings=(stub,), corefile_hops=("coredns corp.example:53",))
    c = classify(e)
    t = top(c)
    assert "corp.example:53" in t.remedy and "192.168.50.53" in t.remedy
    assert t.data["corefile"]["block"] == "corp.example:53" and "corefile" in c.support


def test_differs_from_reference_both_serve_is_a_warning_and_the_rest_decides():
    c = classify(stale("up"))
    assert c.verdict is Verdict.OK and c.confidence == "high"
    f = next(f for f in c.findings if f.code == "answer-differs-both-serve")
    assert f.severity is Severity.WARNING and f.data["addresses"] == [WRONG]


def test_differs_from_reference_that_is_dead_too_is_still_bad_answer_when_wrong_is_dead():
    c = classify(stale("host-unreachable", ref_state="host-unreachable"))
    assert c.verdict is Verdict.BAD_ANSWER


def test_differs_from_reference_wrong_alive_but_reference_address_not_serving_is_not_bad_answer():
    # Nothing singles the answer out: the reference's own address does not serve either.
    c = classify(stale("port-closed", ref_state="port-closed"))
    assert c.verdict is Verdict.PORT_CLOSED


# --- the paths disagree among themselves ------------------------------------------------

def test_wrong_answer_only_over_tcp_without_reference_is_bad_answer():
    res = result(walked(NL, "resolv.conf", "udp", [RIGHT]), walked(NL, "resolv.conf", "tcp", [WRONG]))
    c = classify(evidence(res, addr(RIGHT, "up"), addr(WRONG, "host-unreachable")))
    assert (c.verdict, c.rule) == (Verdict.BAD_ANSWER, "dead_answer_from_some_servers")
    assert c.confidence == "high"
    assert top(c).data["paths"] == [f"{NL}/tcp"]


def test_wrong_answer_only_over_tcp_with_reference_is_stale_answer():
    res = result(walked(NL, "resolv.conf", "udp", [RIGHT]), walked(NL, "resolv.conf", "tcp", [WRONG]),
                 *both(REFS, "reference", [RIGHT]))
    c = classify(evidence(res, addr(RIGHT, "up"), addr(WRONG, "port-closed")))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.BAD_ANSWER, "high", "stale_answer")


def test_servers_disagree_one_refuses_the_port_other_serves():
    res = result(walked("10.0.0.10", "resolv.conf", "udp", ["10.1.1.1"]),
                 walked("10.0.0.11", "resolv.conf", "udp", ["10.9.9.9"]))
    c = classify(evidence(res, addr("10.1.1.1", "up"), addr("10.9.9.9", "port-closed")))
    assert c.verdict is Verdict.BAD_ANSWER and top(c).data["dead_from"] == ["10.0.0.11"]


# --- every path agrees -----------------------------------------------------------------

def test_agree_and_serve_is_ok():
    c = classify(evidence(result(*both(NL, "resolv.conf", [RIGHT])), addr(RIGHT, "up")))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.OK, "high", None)


@pytest.mark.parametrize("state,verdict,rule", [
    ("port-closed", Verdict.PORT_CLOSED, "port_closed"),
    ("filtered", Verdict.FILTERED, "port_filtered"),
])
def test_agree_address_symptom_with_reference_is_high(state, verdict, rule):
    res = result(*both(NL, "resolv.conf", [RIGHT]), *both(REFS, "reference", [RIGHT]))
    c = classify(evidence(res, addr(RIGHT, state)))
    assert (c.verdict, c.confidence, c.rule) == (verdict, "high", rule)


@pytest.mark.parametrize("state,verdict", [("port-closed", Verdict.PORT_CLOSED), ("filtered", Verdict.FILTERED)])
def test_agree_address_symptom_without_reference_is_medium_and_says_what_settles_it(state, verdict):
    c = classify(evidence(result(*both(NL, "resolv.conf", [RIGHT])), addr(RIGHT, state)))
    assert (c.verdict, c.confidence) == (verdict, "medium")
    assert "--reference" in (c.settle or "")


def test_port_refused_on_default_ports_only_proves_the_host_is_up():
    c = classify(evidence(result(*both(NL, "resolv.conf", [RIGHT])), addr(RIGHT, "port-closed"),
                          ports=(443, 80), ports_given=False))
    assert c.verdict is Verdict.OK


@pytest.mark.parametrize("state", ["host-unreachable", "silent", "routing"])
def test_agree_dead_with_reference_agreeing_is_unreachable_host_high(state):
    res = result(*both(NL, "resolv.conf", [RIGHT]), *both(REFS, "reference", [RIGHT]))
    c = classify(evidence(res, addr(RIGHT, state)))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.UNREACHABLE_HOST, "high", "host_down")


@pytest.mark.parametrize("state", ["host-unreachable", "silent"])
def test_agree_dead_without_reference_is_indeterminate_low_with_settle(state):
    c = classify(stale(state, ref=False))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.INDETERMINATE, "low", "dead_answer_unconfirmed")
    assert "--reference" in (c.settle or "")


def test_some_members_dead_others_serve_is_a_warning_level_unreachable_host():
    res = result(*both(NL, "resolv.conf", [RIGHT, "192.168.50.101"]))
    c = classify(evidence(res, addr(RIGHT, "up"), addr("192.168.50.101", "host-unreachable")))
    assert c.verdict is Verdict.UNREACHABLE_HOST and top(c).severity is Severity.WARNING


def test_unverifiable_address_is_indeterminate():
    c = classify(evidence(result(*both(NL, "resolv.conf", [RIGHT])), addr(RIGHT, "unknown")))
    assert (c.verdict, c.confidence) == (Verdict.INDETERMINATE, "low")


# --- references ------------------------------------------------------------------------

@pytest.mark.parametrize("error", ["timeout", "host-unreachable", "port-unreachable"])
def test_dead_reference_on_a_healthy_name_is_ok_with_a_note(error):
    res = result(*both(NL, "resolv.conf", [RIGHT]), failed(REFS, "reference", "udp", error),
                 failed(REFS, "reference", "tcp", error))
    c = classify(evidence(res, addr(RIGHT, "up")))
    assert c.verdict is Verdict.OK
    assert any(REFS in n and "not a fault of the path" in n for n in c.notes)
    assert any(f.code == "reference-unavailable" and f.verdict is None for f in c.findings)


def test_dead_reference_and_dead_address_stays_indeterminate():
    res = result(*both(NL, "resolv.conf", [WRONG]), failed(REFS, "reference", "udp", "timeout"))
    c = classify(evidence(res, addr(WRONG, "host-unreachable")))
    assert (c.verdict, c.confidence) == (Verdict.INDETERMINATE, "low")


# --- nameservers -----------------------------------------------------------------------

@pytest.mark.parametrize("error,code", [("timeout", "server-timeout"), ("port-unreachable", "server-refused"),
                                        ("refused", "server-refused"), ("host-unreachable", "server-unreachable")])
def test_pod_nameserver_silent_refusing_or_unreachable_is_dns_unavailable(error, code):
    res = result(failed(NL, "resolv.conf", "udp", error), failed(NL, "resolv.conf", "tcp", error))
    c = classify(evidence(res))
    assert (c.verdict, c.confidence) == (Verdict.DNS_UNAVAILABLE, "high")
    assert top(c).code == code and top(c).data["server"] == NL
    assert "--server" in (c.settle or "")


def test_pod_nameserver_down_server_behind_answers_is_cache_broken_hop():
    res = result(failed(NL, "resolv.conf", "udp", "port-unreachable"),
                 failed(NL, "resolv.conf", "tcp", "refused"), walked(CORE, "server", "udp", [RIGHT]))
    c = classify(evidence(res))
    assert (c.verdict, c.rule) == (Verdict.DNS_UNAVAILABLE, "cache_broken_hop")
    assert top(c).data == {"failing": [NL], "behind": [CORE]}


def test_one_transport_failing_is_dns_unavailable_from_the_rest_of_the_evidence():
    res = result(walked(NL, "resolv.conf", "udp", [RIGHT]), failed(NL, "resolv.conf", "tcp", "timeout"))
    c = classify(evidence(res, addr(RIGHT, "up")))
    assert (c.verdict, c.rule) == (Verdict.DNS_UNAVAILABLE, "other_evidence")
    assert top(c).code == "tcp-fails-udp-works"


@pytest.mark.parametrize("rcode,code", [("NXDOMAIN", "nxdomain"), ("SERVFAIL", "servfail"), ("REFUSED", "refused")])
def test_nameserver_error_everywhere_is_dns_error(rcode, code):
    res = result(nx_path(NL, "resolv.conf", "udp", rcode), nx_path(NL, "resolv.conf", "tcp", rcode))
    c = classify(evidence(res))
    assert (c.verdict, c.rule) == (Verdict.DNS_ERROR, "dns_error") and top(c).code == code


def test_error_only_on_path_while_reference_resolves():
    res = result(nx_path(NL, "resolv.conf", "udp"), *both(REFS, "reference", [RIGHT]))
    c = classify(evidence(res, addr(RIGHT, "up")))
    assert (c.verdict, c.rule) == (Verdict.DNS_ERROR, "error_only_on_path")


def test_reserved_answer_is_bad_answer():
    res = result(*both(NL, "resolv.conf", ["0.0.0.0"]))
    c = classify(evidence(res, addr("0.0.0.0", "routing")))
    assert (c.verdict, c.rule) == (Verdict.BAD_ANSWER, "reserved_answer")


# --- the table itself ------------------------------------------------------------------

def test_rule_priorities_are_unique_and_every_rule_is_documented():
    from pathlib import Path

    assert len({r.priority for r in RULES}) == len(RULES)
    doc = (Path(__file__).resolve().parents[2] / "toolkit" / "triage" / "DECISIONS.md").read_text()
    for row in RULES:
        assert f"`{row.rule.__name__}`" in doc, row.rule.__name__


def test_grade():
    assert grade(Verdict.INDETERMINATE, ("reference", "paths")) == "low"
    assert grade(Verdict.PORT_CLOSED, ("paths", "probes")) == "medium"
    assert grade(Verdict.PORT_CLOSED, ("reference", "probes")) == "high"
    assert grade(Verdict.BAD_ANSWER, ("paths", "probes")) == "high"
    assert grade(Verdict.OK, ()) == "low"


# --- the deadline ended the walks before any answer (issue 10) ---------------------------

def test_deadline_before_any_answer_is_indeterminate_not_dns_unavailable():
    c = classify(evidence(result(failed(NL, "resolv.conf", "udp", "deadline"),
                                 failed(NL, "resolv.conf", "tcp", "deadline"))))
    assert (c.verdict, c.confidence, c.rule) == (Verdict.INDETERMINATE, "low", "dns_not_asked")
    assert top(c).code == "dns-not-asked" and "--deadline" in c.settle


def test_a_timeout_is_still_the_server_s_fault():
    c = classify(evidence(result(failed(NL, "resolv.conf", "udp", "timeout"),
                                 failed(NL, "resolv.conf", "tcp", "deadline"))))
    assert c.verdict is Verdict.DNS_UNAVAILABLE
