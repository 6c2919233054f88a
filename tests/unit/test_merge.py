"""podtriage merge: fleet reports from many JSON documents (pure logic, no root)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolkit.kube.merge import Missing, Source, documents_in, merge
from toolkit.kube.context import run_context
from toolkit.model import Verdict
from toolkit.report.document import json_document

from tests.hostile import small_document


def diag(pod, node, verdict="ok", addrs=("192.168.50.20",), server="169.254.25.10",
         top="", ns="shop", name="www.example.org"):
    """A diagnose document as a pod sends it: valid against schemas/diagnose.schema.json."""
    doc = small_document(0, verdict=verdict, node=node, addresses=tuple(addrs), server=server, name=name,
                         summary=top)
    doc["context"] = {"pod": pod, "namespace": ns, "node": node}
    doc["answers"].append({"server": "10.0.0.53", "role": "reference", "transport": "udp",
                           "outcome": "answer", "answered_as": None, "addresses": list(addrs)})
    return doc


def fleet_stale():
    docs = [diag("web-%d" % i, "node1") for i in range(3)]
    docs += [diag("web-%d" % i, "node2", "bad-answer", ("192.168.50.77",),
                  top="answers differ") for i in (3, 4)]
    return [Source(doc=d, origin="pod") for d in docs]


def test_stale_node_is_named_with_its_nameserver():
    r = merge(fleet_stale())
    d = json_document(r)
    assert d["verdict"] == "bad-answer" and r.verdict is Verdict.BAD_ANSWER
    assert d["reports"] == 5
    assert d["verdicts"] == {"bad-answer": 2, "ok": 3}
    g = d["groups"]
    assert [x["count"] for x in g] == [3, 2]
    assert g[0] == {"verdict": "ok", "command": "diagnose", "addresses": ["192.168.50.20"],
                    "servers": ["169.254.25.10"], "nodes": ["node1"],
                    "pods": ["shop/web-0", "shop/web-1", "shop/web-2"], "count": 3}
    assert g[1]["nodes"] == ["node2"] and g[1]["addresses"] == ["192.168.50.77"]
    nd = [f for f in d["findings"] if f["code"] == "node-differs"]
    assert len(nd) == 1
    assert nd[0]["data"]["node"] == "node2" and nd[0]["data"]["servers"] == ["169.254.25.10"]
    assert "node node2" in nd[0]["summary"] and "169.254.25.10" in nd[0]["summary"]
    assert any(f["code"] == "partial" and "2 of 5" in f["summary"] for f in d["findings"])


def test_the_one_healthy_node_is_not_sent_to_as_the_fault():
    # most nodes fail alike, one works: the odd node is the healthy one, and the advice must
    # not say "look at it first: its pods are the only ones that see this"
    docs = [diag("web-%d" % i, "node1", "dns-unavailable", ()) for i in range(3)]
    docs += [diag("web-%d" % i, "node2", "dns-unavailable", ()) for i in (3, 4)]
    docs += [diag("web-5", "node3")]
    d = json_document(merge([Source(doc=x, origin="pod") for x in docs]))
    assert d["verdict"] == "dns-unavailable"
    nd = [f for f in d["findings"] if f["code"] == "node-differs"]
    assert [f["data"]["node"] for f in nd] == ["node3"] and nd[0]["severity"] == "warning"
    assert "the one that works" in nd[0]["remedy"] and "only ones" not in nd[0]["remedy"]


def test_all_ok_is_ok_and_one_group():
    r = merge([Source(doc=diag("a", "n1"), origin="x"), Source(doc=diag("b", "n2"), origin="y")])
    assert r.verdict is Verdict.OK
    assert len(json_document(r)["groups"]) == 1 and not r.findings


def test_missing_report_makes_ok_indeterminate():
    r = merge([Source(doc=diag("a", "n1"), origin="x")],
              [Missing(where="pod shop/b", node="n2", reason="image pull failed", exit_code=3)])
    assert r.verdict is Verdict.INDETERMINATE
    assert json_document(r)["missing"][0]["where"] == "pod shop/b"


def test_worst_verdict_wins_by_priority():
    docs = [diag("a", "n1", "unreachable-host"), diag("b", "n1", "dns-unavailable")]
    assert merge([Source(doc=d, origin="-") for d in docs]).verdict is Verdict.DNS_UNAVAILABLE


def test_documents_in_pretty_ndjson_and_prefixed_logs():
    a, b, c = diag("a", "n1"), diag("b", "n2", "bad-answer"), diag("c", "n3")
    text = ("podtriage: progress line\n" + json.dumps(a, indent=2) + "\n"
            + json.dumps({"event": "query", "server": "x"}) + "\n"
            + json.dumps({"event": "summary", **b}) + "\n"
            + "[pod/c/podtriage] " + json.dumps(c) + "\n"
            + "{not json\n" + json.dumps({"verdict": "ok"}) + "\n")
    docs = documents_in(text)
    assert [d["context"]["pod"] for d in docs] == ["a", "b", "c"]
    assert "event" not in docs[1]


def test_conntrack_reports_merge_per_node():
    docs = [{"schema_version": 1, "tool": "podtriage", "command": "conntrack", "verdict": v,
             "context": {"pod": "podtriage-x", "namespace": "default", "node": n}, "findings": []}
            for n, v in (("node1", "ok"), ("node2", "conntrack"))]
    d = json_document(merge([Source(doc=x, origin="-") for x in docs]))
    assert d["verdict"] == "conntrack" and d["reports"] == 2
    assert {tuple(g["nodes"]) for g in d["groups"]} == {("node1",), ("node2",)}


@pytest.mark.parametrize("fmt", ["table", "json", "ndjson", "markdown"])
def test_cli_all_formats_and_exit_codes(tmp_path, fmt):
    f1 = tmp_path / "a.json"
    f1.write_text("\n".join(json.dumps(s.doc) for s in fleet_stale()))
    p = subprocess.run([sys.executable, "-m", "toolkit", "merge", str(f1), "-o", fmt],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "node2" in p.stdout
    if fmt == "json":
        d = json.loads(p.stdout)
        assert d["command"] == "merge" and d["reports"] == 5 and d["verdict"] == "bad-answer"
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(diag("a", "n1")))
    p = subprocess.run([sys.executable, "-m", "toolkit", "merge", "-", "-o", fmt],
                       input=ok.read_text(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("content", ["", "not json at all\n", '{"a": 1}\n'])
def test_cli_no_document_is_exit_3(tmp_path, content):
    f = tmp_path / "x.log"
    f.write_text(content)
    p = subprocess.run([sys.executable, "-m", "toolkit", "merge", str(f)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and "no podtriage JSON document" in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_missing_file_is_exit_3(tmp_path):
    p = subprocess.run([sys.executable, "-m", "toolkit", "merge", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and "no such file" in p.stderr


def test_context_key_from_environment(monkeypatch):
    from toolkit.model import Report

    monkeypatch.setenv("PODTRIAGE_POD", "web-1")
    monkeypatch.setenv("PODTRIAGE_NODE", "node-1")
    monkeypatch.delenv("PODTRIAGE_NAMESPACE", raising=False)
    d = json_document(Report(command="x", verdict=Verdict.OK), run_context())
    assert d["context"] == {"pod": "web-1", "namespace": None, "node": "node-1"}


def test_resolve_documents_group_by_path_addresses_and_resolv_conf_servers():
    def res(pod, node, addrs):
        return {"schema_version": 1, "tool": "podtriage", "command": "resolve", "verdict": "ok",
                "context": {"pod": pod, "namespace": "shop", "node": node},
                "servers": [{"address": "169.254.25.10", "role": "resolv.conf"},
                            {"address": "192.168.60.53", "role": "reference"}],
                "paths": [{"server": "169.254.25.10", "addresses": list(addrs)}],
                "findings": []}
    d = json_document(merge([Source(doc=res("a", "n1", ["10.0.0.1"]), origin="-"),
                             Source(doc=res("b", "n1", ["10.0.0.1"]), origin="-"),
                             Source(doc=res("c", "n2", ["10.0.0.9"]), origin="-")]))
    assert [(g["addresses"], g["servers"], g["count"]) for g in d["groups"]] == [
        (["10.0.0.1"], ["169.254.25.10"], 2), (["10.0.0.9"], ["169.254.25.10"], 1)]
    # all ok, yet one node answers differently: named, as a warning that decides nothing
    nd = [f for f in d["findings"] if f["code"] == "node-differs"]
    assert nd and nd[0]["severity"] == "warning" and nd[0]["data"]["node"] == "n2"
    assert d["verdict"] == "ok"


def test_fleet_is_its_own_reference_stale_answer_becomes_bad_answer():
    docs = [diag("a", "node1"), diag("b", "node1"),
            diag("c", "node2", "indeterminate", ("192.168.50.77",)),
            diag("d", "node2", "unreachable-host", ("192.168.50.77",))]
    d = json_document(merge([Source(doc=x, origin="-") for x in docs]))
    assert d["verdict"] == "bad-answer"
    ad = [f for f in d["findings"] if f["code"] == "answers-differ"]
    assert len(ad) == 2 and {f["data"]["nodes"][0] for f in ad} == {"node2"}
    assert all(f["data"]["expected"] == ["192.168.50.20"] for f in ad)
    assert "www.example.org resolves to 192.168.50.77 on node2" in ad[0]["summary"]


def test_no_inference_across_different_names_or_shared_addresses():
    docs = [diag("a", "node1"), diag("c", "node2", "indeterminate", ("192.168.50.77",),
                                      name="other.example.org")]
    d = json_document(merge([Source(doc=x, origin="-") for x in docs]))
    assert d["verdict"] == "indeterminate"
    assert not [f for f in d["findings"] if f["code"] == "answers-differ"]
    docs = [diag("a", "node1"), diag("c", "node2", "port-closed")]     # same address: host issue
    d = json_document(merge([Source(doc=x, origin="-") for x in docs]))
    assert d["verdict"] == "port-closed"
