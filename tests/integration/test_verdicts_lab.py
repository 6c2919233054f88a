"""The verdict rows of toolkit/triage/DECISIONS.md in the lab: the stale address held by a
live host, filtered or dropped; a dead reference; a wrong answer over one transport only;
both addresses serving; a name with more addresses than diagnose probes."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_diagnose_lab import COREFILES, REF, codes, diagnose
from tests.lab import STALE_ADDRESS

pytestmark = pytest.mark.lab
RIGHT = "192.168.50.20"


def _stale_bad_answer(doc):
    assert doc["verdict"] == "bad-answer" and doc["confidence"] == "high", (doc["verdict"], codes(doc))
    top = doc["findings"][0]
    assert top["verdict"] == "bad-answer" and top["severity"] == "critical"
    assert top["data"]["addresses"] == [STALE_ADDRESS]
    assert top["data"]["reference_addresses"] == [RIGHT]
    assert "169.254.25.10" in top["data"]["servers"]
    assert STALE_ADDRESS in top["summary"] and RIGHT in top["summary"]
    right = next(a for a in doc["addresses"] if a["address"] == RIGHT)
    assert right["state"] == "up"
    return top


def _state(doc, address):
    return next(a["state"] for a in doc["addresses"] if a["address"] == address)


def test_stale_address_alive_port_closed_is_bad_answer(clean_lab):
    clean_lab.stale_alive()
    doc, _ = diagnose(clean_lab, "api.corp.example", "--port", "80", *REF)
    _stale_bad_answer(doc)
    assert _state(doc, STALE_ADDRESS) == "port-closed"
    # The refusal on the wrong address is not the story: no port-closed verdict finding.
    assert not any(f["verdict"] == "port-closed" for f in doc["findings"])


def test_stale_address_alive_with_corefiles_names_block_and_upstream(clean_lab):
    clean_lab.stale_alive()
    doc, _ = diagnose(clean_lab, "api.corp.example", "--port", "80", *REF,
                      "--corefile", str(COREFILES / "nodelocaldns-configmap.yaml"),
                      "--corefile", str(COREFILES / "coredns-configmap.yaml"))
    top = _stale_bad_answer(doc)
    text = json.dumps(top)
    assert "corp.example" in text and "192.168.50.53" in text


def test_stale_address_filtered_is_bad_answer(clean_lab):
    clean_lab.stale_alive()
    clean_lab.reject_admin(STALE_ADDRESS)
    doc, _ = diagnose(clean_lab, "api.corp.example", "--port", "80", *REF)
    _stale_bad_answer(doc)
    assert _state(doc, STALE_ADDRESS) == "filtered"


def test_stale_address_silent_is_bad_answer(clean_lab):
    clean_lab.stale_alive()
    clean_lab.drop_forward(STALE_ADDRESS)
    doc, _ = diagnose(clean_lab, "api.corp.example", "--port", "80", *REF)
    _stale_bad_answer(doc)
    assert _state(doc, STALE_ADDRESS) == "silent"


def test_more_addresses_than_probed_never_crash_nor_count(lab):
    doc, _ = diagnose(lab, "dozen.example.org", "--port", "80", *REF)
    states = {a["address"]: a["state"] for a in doc["addresses"]}
    assert len(states) == 12
    unprobed = [a for a, s in states.items() if s == "not-probed"]
    assert len(unprobed) == 4
    assert states[RIGHT] == "up"  # numeric order: .20 is probed before .101
    assert any("not probed" in n for n in doc["notes"])
    # Unprobed addresses are no evidence: no finding names them as dead or alive.
    for f in doc["findings"]:
        for a in unprobed:
            assert a not in f["data"].get("addresses", []), f


def test_both_addresses_serve_is_ok_with_a_bad_answer_warning(clean_lab):
    clean_lab.stale_alive(serve=True)
    doc, _ = diagnose(clean_lab, "api.corp.example", "--port", "80", *REF)
    assert doc["verdict"] == "ok", codes(doc)
    f = next(f for f in doc["findings"] if f["code"] == "answer-differs-both-serve")
    assert f["severity"] == "warning" and f["data"]["addresses"] == [STALE_ADDRESS]
    assert _state(doc, STALE_ADDRESS) == "up" and _state(doc, RIGHT) == "up"


def test_dead_reference_on_a_healthy_name_is_ok_with_a_note(lab):
    # Nobody holds 192.168.60.99 on the upstream's link: the reference never answers.
    doc, _ = diagnose(lab, "www.example.org", "--port", "80", "--reference", "192.168.60.99")
    assert doc["verdict"] == "ok" and doc["confidence"] == "high", codes(doc)
    assert any("192.168.60.99" in n and "not a fault of the path" in n for n in doc["notes"])
    assert any(f["code"] == "reference-unavailable" and f["verdict"] is None for f in doc["findings"])


def test_wrong_answer_only_over_tcp(clean_lab):
    clean_lab.tcp53_to_legacy()
    # The FQDN (trailing dot): no search list, the question goes to the retired server as is.
    doc, _ = diagnose(clean_lab, "www.example.org.", "--port", "80", *REF)
    by_t = {a["transport"]: a["addresses"] for a in doc["answers"] if a["role"] == "resolv.conf"}
    assert by_t == {"udp": [RIGHT], "tcp": [STALE_ADDRESS]}
    _stale_bad_answer(doc)
    # Without a reference the two transports disagree on their own: still a bad answer.
    doc, _ = diagnose(clean_lab, "www.example.org.", "--port", "80")
    assert doc["verdict"] == "bad-answer" and doc["confidence"] == "high", codes(doc)
    top = doc["findings"][0]
    assert top["code"] == "dead-answer-from-some-servers"
    assert top["data"]["paths"] == ["169.254.25.10/tcp"]
