"""diagnose from evidence recorded in the lab (tests/unit/data/evidence/, see
tests/unit/evidence_json.py): the verdicts, and the JSON contract (keys, verdict strings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.model import Verdict
from toolkit.report.document import json_document
from toolkit.triage.classify import classify
from toolkit.triage.diagnose import diagnose_report

from tests.unit.evidence_json import dump, load

DATA = Path(__file__).parent / "data" / "evidence"
VERDICTS = {"ok", "bad-answer", "unreachable-host", "port-closed", "filtered", "dns-unavailable",
            "dns-error", "conntrack", "indeterminate"}


def recorded(name):
    return load((DATA / f"{name}.json").read_text())


@pytest.mark.parametrize("name,verdict,confidence,code", [
    ("seed-reference", "bad-answer", "high", "stale-answer"),
    ("stale-alive-port-closed", "bad-answer", "high", "stale-answer"),
    ("dead-reference", "ok", "high", None),
])
def test_recorded_lab_evidence(name, verdict, confidence, code):
    c = classify(recorded(name))
    assert (c.verdict.value, c.confidence) == (verdict, confidence)
    if code:
        assert c.findings[0].code == code


def test_recorded_evidence_round_trips():
    e = recorded("stale-alive-port-closed")
    assert load(dump(e)) == e


def test_a_renamed_field_fails_loading():
    doc = json.loads((DATA / "seed-reference.json").read_text())
    doc["probes"][0]["probes"][0]["outcome"] = doc["probes"][0]["probes"][0].pop("result")
    with pytest.raises((KeyError, TypeError)):
        load(json.dumps(doc))
    doc = json.loads((DATA / "seed-reference.json").read_text())
    doc["probes"][0]["probes"][0]["result"] = "silent"  # an address state, not a probe outcome
    with pytest.raises(ValueError):
        load(json.dumps(doc))


def test_diagnose_json_contract():
    assert {v.value for v in Verdict} == VERDICTS
    doc = json.loads(json.dumps(json_document(diagnose_report(recorded("stale-alive-port-closed")))))
    for key in ("schema_version", "tool", "command", "generated_at", "duration_ms", "verdict",
                "confidence", "name", "candidates", "answers", "probes", "addresses", "ports",
                "settle", "results", "processes", "app_sockets", "findings", "notes"):
        assert key in doc, key
    assert doc["command"] == "diagnose" and doc["verdict"] == "bad-answer" and doc["confidence"] == "high"
    for f in doc["findings"]:
        assert set(f) == {"code", "severity", "summary", "evidence", "remedy", "verdict", "data"}
        assert f["severity"] in ("critical", "warning", "info")
        assert f["verdict"] is None or f["verdict"] in VERDICTS
    top = doc["findings"][0]
    assert top["code"] == "stale-answer"
    assert {"addresses", "servers", "reference_addresses"} <= set(top["data"])
    assert {"server", "role", "transport", "outcome", "answered_as", "addresses"} <= set(doc["answers"][0])
    assert {"address", "target", "kind", "port", "result", "from", "rtt_ms", "detail"} <= set(doc["probes"][0])
    assert {"address", "state", "summary", "answered_by"} <= set(doc["addresses"][0])
    states = {a["address"]: a["state"] for a in doc["addresses"]}
    assert states == {"192.168.50.77": "port-closed", "192.168.50.20": "up"}
