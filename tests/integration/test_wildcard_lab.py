"""Answers that belong to another name (issue 28), against the lab's real servers: a wildcard
under the pod's namespace domain (the real CoreDNS: its kubernetes plugin falls through to a
`file` zone holding the wildcard), under the node's domain (bind9, the node's domain at the end
of the pod's search list as the kubelet copies it), a wildcard whose address is dead, one whose
address serves the port, and an upstream that rewrites NXDOMAIN (bind9's redirect zone). Each
asserts the verdict and the confidence, with and without --reference (tests/lab/wildcard.py)."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_diagnose_lab import REF, codes, diagnose
from tests.integration.test_resolve_lab import pt
from tests.lab import STALE_ADDRESS, wildcard

pytestmark = pytest.mark.lab
NAME = "www.example.org"       # the upstream answers it right: 192.168.50.20, which serves :80
RIGHT = "192.168.50.20"
NS_CANDIDATE = "www.example.org.wxwork.svc.alpha.pm.k8s."
NODE_CANDIDATE = "www.example.org.dc1.example.net."
CODE = "wildcard-search-domain"


def _both(lab):
    """diagnose NAME --port 80 without, then with, --reference."""
    return [diagnose(lab, NAME, "--port", "80", *extra)[0] for extra in ((), REF)]


def _another_name(doc, *, candidate, domain, wrong_state, kind="wildcard"):
    assert doc["verdict"] == "bad-answer" and doc["confidence"] == "high", (doc["verdict"], codes(doc))
    top = doc["findings"][0]
    assert top["code"] == CODE and top["severity"] == "critical", codes(doc)
    d = top["data"]
    assert d["candidate"] == candidate and d["domain"] == domain and d["kind"] == kind
    assert d["addresses"] == [STALE_ADDRESS] and d["itself"] == [RIGHT] and d["itself_as"] == NAME + "."
    assert d["states"] == {STALE_ADDRESS: wrong_state} and d["itself_states"] == {RIGHT: "up"}
    assert "wildcard-probe" in d["confirmed_by"] and "wildcard-probe" in doc["support"]
    assert any(e.startswith("wildcard probe (a random name nobody created") for e in top["evidence"])
    # the wrong address's own symptom decides nothing (no port-closed, no indeterminate dead answer)
    assert not any(f["verdict"] in ("port-closed", "indeterminate") for f in doc["findings"]), codes(doc)
    assert doc["search_hits"]["hits"][0]["candidate"] == candidate
    return top


@pytest.mark.parametrize("holder", ["live-refusing", "dead"])
def test_namespace_wildcard(clean_lab, holder):
    """The issue's own case: podtriage said port-closed (medium) for the wildcard's live host."""
    wildcard.namespace_wildcard(clean_lab, STALE_ADDRESS)
    if holder == "live-refusing":
        clean_lab.stale_alive()
    state = "port-closed" if holder == "live-refusing" else "host-unreachable"
    for doc in _both(clean_lab):
        top = _another_name(doc, candidate=NS_CANDIDATE, domain="wxwork.svc.alpha.pm.k8s.", wrong_state=state)
        # the namespace domain is the kubelet's own: no --resolv-conf step
        assert "--resolv-conf" not in top["remedy"] and top["remedy"].startswith("1) write the name with a trailing dot")
    assert "reference" in doc["findings"][0]["data"]["confirmed_by"]
    assert doc["findings"][0]["data"]["reference_denies"] == ["192.168.60.53"]
    assert not any(f["code"] == "rcode-disagreement" for f in doc["findings"])


def test_namespace_wildcard_leaves_the_namespace_s_services_alone(clean_lab):
    # backend.wxwork.svc.alpha.pm.k8s is a Service: the kubernetes plugin answers it first.
    wildcard.namespace_wildcard(clean_lab, STALE_ADDRESS)
    doc, _ = diagnose(clean_lab, "backend", "--port", "80")
    assert doc["verdict"] == "ok", codes(doc)
    assert not any(f["code"] in (CODE, "answered-by-search-candidate") for f in doc["findings"])
    probe = doc["search_hits"]["probes"][0]     # the wildcard is there, and is not the answer
    assert probe["resolves"] and probe["addresses"] == [STALE_ADDRESS]


def test_node_domain_wildcard_dead_address(clean_lab):
    """OpenShift and k3s: the node's domain in the pod's search list holds a wildcard."""
    wildcard.node_domain(clean_lab, wildcard=STALE_ADDRESS)
    for doc in _both(clean_lab):
        top = _another_name(doc, candidate=NODE_CANDIDATE, domain="dc1.example.net.", wrong_state="host-unreachable")
        r = top["remedy"]
        assert r.index("trailing dot") < r.index("ndots") < r.index("--resolv-conf") < r.index("*.dc1.example.net")


def test_wildcard_whose_address_serves_works_by_accident(clean_lab):
    wildcard.namespace_wildcard(clean_lab, STALE_ADDRESS)
    clean_lab.stale_alive(serve=True)
    for doc in _both(clean_lab):
        assert doc["verdict"] == "ok" and doc["confidence"] == "high", codes(doc)
        w = next(f for f in doc["findings"] if f["code"] == CODE)
        assert w["severity"] == "warning" and w["verdict"] is None and "works by accident" in w["summary"]
        assert w["data"]["states"] == {STALE_ADDRESS: "up"}


def test_upstream_rewriting_nxdomain(clean_lab):
    """The upstream answers every name that does not exist (bind9's redirect zone): the
    node's domain in the search list turns every external name into NAME.dc1.example.net."""
    wildcard.node_domain(clean_lab)
    wildcard.rewrite_nxdomain(clean_lab, STALE_ADDRESS)
    for doc in _both(clean_lab):
        top = _another_name(doc, candidate=NODE_CANDIDATE, domain="dc1.example.net.", wrong_state="host-unreachable",
                            kind="nxdomain-rewrite")
        assert "rewrites NXDOMAIN" in top["summary"] and "rewriting NXDOMAIN" in top["remedy"]


def test_resolve_and_resolvconf_point_the_shape_out(clean_lab):
    wildcard.namespace_wildcard(clean_lab, STALE_ADDRESS)
    wildcard.node_domain(clean_lab, wildcard=STALE_ADDRESS)
    p = pt(clean_lab, "resolve", NAME, *REF, "-o", "json")
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "bad-answer", codes(doc)
    f = next(f for f in doc["findings"] if f["code"] == CODE)
    assert f["severity"] == "critical" and f["data"]["candidate"] == NS_CANDIDATE
    assert f["data"]["reference_itself"] == [RIGHT]
    # before any query: the shape, with the node's domain named
    p = pt(clean_lab, "resolvconf", "--name", NAME, "-o", "json")
    doc = json.loads(p.stdout)
    f = next(f for f in doc["findings"] if f["code"] == "name-searched-first")
    assert f["data"]["node_domains"] == ["dc1.example.net"] and "wildcard_probes" not in doc
    # the opt-in probes: both wildcards, and which candidate answers the name
    p = pt(clean_lab, "resolvconf", "--name", NAME, "--probe-wildcards", "-o", "json")
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    found = {f["data"]["domain"]: f for f in doc["findings"] if f["code"] == "search-domain-wildcard"}
    assert set(found) == {"wxwork.svc.alpha.pm.k8s", "dc1.example.net"}
    assert NS_CANDIDATE in found["wxwork.svc.alpha.pm.k8s"]["summary"]
    assert len(doc["wildcard_probes"]) == 5          # four domains, then the root
