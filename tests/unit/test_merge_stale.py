"""Issue 26 item 3: ``podtriage merge`` of a fleet (nodes mode) groups the nodes'
``stale-dns-conntrack`` findings by dead DNAT target: one line per old CoreDNS address that
still draws DNS flows, with the nodes, their entry counts and the owning processes, in text,
JSON (``stale_dns_targets``) and Markdown. The node documents are made per issue 26's shared
contract (the finding's ``data`` keys and JSON types) and match schemas/conntrack.schema.json.
The same from real node reports: tests/integration/test_fleet_lab.py."""

from __future__ import annotations

import json
import subprocess
import sys

from toolkit.kube.merge import Source, merge
from toolkit.model import Verdict
from toolkit.report.document import json_document
from toolkit.report.reader import read_documents
from toolkit.report.validate import problem


def stale(target, entries, owners=(("node-cache", 412),), *, service="10.233.0.3",
          live=("10.244.0.4",)):
    """A stale-dns-conntrack finding as issue 26's contract spells it."""
    ports = list(range(40000, 40000 + min(entries, 50)))
    return {"code": "stale-dns-conntrack", "severity": "critical",
            "summary": "%d DNS flows still go to %s, no longer a DNS endpoint" % (entries, target),
            "evidence": [], "remedy": "conntrack -D -p udp --orig-dst %s --reply-src %s" % (service, target),
            "verdict": "dns-unavailable",
            "data": {"dead_target": target, "port": 53, "services": [service], "entries": entries,
                     "protos": ["tcp", "udp"], "source_ports": ports, "timeouts": [120] * len(ports),
                     "ages": None, "owners": [{"pid": pid, "process": p} for p, pid in owners],
                     "live_endpoints": list(live), "endpoints_source": "flag",
                     "remedy_command": "conntrack -D --reply-src %s --reply-port-src 53" % target}}


def node_doc(node, *findings):
    """A node's conntrack document (the Job's pod: no pod context of its own)."""
    doc = {"schema_version": 1, "tool": "podtriage", "tool_version": "0.1.0", "command": "conntrack",
           "generated_at": "2026-12-05T04:00:00.000Z", "duration_ms": 1012.0,
           "verdict": "dns-unavailable" if findings else "ok",
           "context": {"pod": None, "namespace": None, "node": node},
           "findings": list(findings), "notes": [], "error": None,
           "netns": {"inode": 4026531840, "label": "node", "is_init": True}, "interval_s": 1.0,
           "counters_source": "netlink", "counters": {}, "per_cpu": [], "count": 230, "max": 262144,
           "usage_pct": 0.1, "sysctls": {}, "kernel": {}, "dns_entries": [], "dns_backends": [],
           "sources": [], "net_admin": True}
    assert problem(doc) is None, problem(doc)
    return doc


def fleet():
    return [node_doc("node", stale("10.244.0.3", 200)),
            node_doc("node2", stale("10.244.0.3", 14, (("node-cache", 77), ("coredns", 9))),
                     stale("10.244.1.9", 3, ())),
            node_doc("node3")]


def test_one_line_per_dead_target_with_nodes_counts_and_owners():
    r = merge([Source(doc=d, origin="node %s" % d["context"]["node"]) for d in fleet()],
              subject="3 nodes")
    d = json_document(r)
    assert d["verdict"] == "dns-unavailable" and r.verdict is Verdict.DNS_UNAVAILABLE
    assert [t["dead_target"] for t in d["stale_dns_targets"]] == ["10.244.0.3", "10.244.1.9"]
    first = d["stale_dns_targets"][0]
    assert first["entries_total"] == 214 and first["services"] == ["10.233.0.3"]
    assert first["nodes"] == [
        {"node": "node", "entries": 200, "owners": [{"pid": 412, "process": "node-cache"}]},
        {"node": "node2", "entries": 14, "owners": [{"pid": 77, "process": "node-cache"},
                                                     {"pid": 9, "process": "coredns"}]}]
    assert first["remedy_command"] == "conntrack -D --reply-src 10.244.0.3 --reply-port-src 53"
    lines = [f for f in d["findings"] if f["code"] == "stale-dns-target"]
    assert lines[0]["summary"] == (
        "10.244.0.3 (no longer an endpoint of DNS Service 10.233.0.3) still draws 214 DNS flows "
        "on node, node2: node 200 (node-cache), node2 14 (coredns, node-cache)")
    assert lines[0]["severity"] == "critical" and lines[0]["verdict"] == "dns-unavailable"
    assert "node2: 14 entries; owners: node-cache (pid 77), coredns (pid 9)" in lines[0]["evidence"]
    assert "conntrack -D --reply-src 10.244.0.3" in lines[0]["remedy"] and "flush" not in lines[0]["remedy"]
    assert lines[1]["summary"].startswith("10.244.1.9 (no longer an endpoint of DNS Service "
                                          "10.233.0.3) still draws 3 DNS flows on node2: node2 3")
    # the stale lines explain the failing nodes: no extra "group" finding repeats them
    assert not [f for f in d["findings"] if f["code"] == "group"]
    text = json.dumps(d)
    assert problem(json.loads(text)) is None       # schemas/merge.schema.json
    again = read_documents(text, "merged")
    assert len(again.documents) == 1 and not again.unusable


def test_no_stale_finding_no_stale_line():
    d = json_document(merge([Source(doc=node_doc("node"), origin="node node")]))
    assert d["stale_dns_targets"] == [] and d["verdict"] == "ok"
    assert [t.title for t in merge([Source(doc=node_doc("n"), origin="x")]).tables] == ["Groups", "Reports"]


def test_one_node_twice_is_counted_once():
    """Two reports of one node see one table at two moments: the larger count, not a sum."""
    docs = [node_doc("node", stale("10.244.0.3", 200)), node_doc("node", stale("10.244.0.3", 180))]
    d = json_document(merge([Source(doc=x, origin="f") for x in docs]))
    assert d["stale_dns_targets"][0]["entries_total"] == 200


def test_foreign_data_is_read_with_care():
    bad = [stale("10.244.0.3", 5), stale("not-an-ip", 5), stale("10.244.0.7", 5)]
    bad[0]["data"].update(entries=True, owners=[{"pid": "x", "process": 3}, "x", {"process": "ok"}],
                          services="10.233.0.3", port=-1)
    bad[1]["data"]["dead_target"] = 7
    bad[2]["data"] = {"entries": 5}                # no dead_target
    doc = node_doc("node", *bad)
    d = json_document(merge([Source(doc=doc, origin="x")]))
    (t,) = d["stale_dns_targets"]
    assert t["dead_target"] == "10.244.0.3" and t["entries_total"] == 0
    assert t["nodes"][0]["owners"] == [{"pid": None, "process": "ok"}]
    assert t["services"] == [] and t["ports"] == []


def test_without_node_the_pod_or_origin_names_the_place():
    doc = node_doc(None, stale("10.244.0.3", 4))
    doc["context"] = {"pod": "web-1", "namespace": "shop", "node": None}
    d = json_document(merge([Source(doc=doc, origin="pod shop/web-1")]))
    assert d["stale_dns_targets"][0]["nodes"][0]["node"] == "shop/web-1"


def _merge_cli(fmt, tmp_path):
    f = tmp_path / "fleet.ndjson"
    f.write_text("".join(json.dumps(x) + "\n" for x in fleet()))
    return subprocess.run([sys.executable, "-m", "toolkit", "merge", str(f), "-o", fmt],
                          capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})


def test_text_and_markdown_carry_the_line_and_a_table(tmp_path):
    p = _merge_cli("table", tmp_path)
    assert p.returncode == 1, p.stderr
    flat = " ".join(p.stdout.split())
    assert ("10.244.0.3 (no longer an endpoint of DNS Service 10.233.0.3) still draws 214 DNS "
            "flows on node, node2: node 200 (node-cache), node2 14 (coredns, node-cache)") in flat
    assert "Stale DNS targets" in p.stdout
    m = _merge_cli("markdown", tmp_path)
    assert m.returncode == 1, m.stderr
    assert "still draws 214 DNS flows on node, node2" in " ".join(m.stdout.split())
    assert "| `10.244.0.3` | `10.233.0.3` | node | 200 | node-cache |" in m.stdout
    j = _merge_cli("json", tmp_path)
    assert json.loads(j.stdout)["stale_dns_targets"][0]["entries_total"] == 214


# ---------------------------------------------------------------- real node reports
def test_real_node_reports_of_the_lab(tmp_path):
    """Two nodes' own conntrack reports (tests/unit/data/fleet/README.md: the lab's real
    kube-proxy, CoreDNS and node-cache; the conntrack side of issue 26 from its branch)."""
    from pathlib import Path

    data = Path(__file__).parent / "data" / "fleet"
    text = "".join(p.read_text() for p in sorted(data.glob("stale-conntrack-*.json")))
    scan = read_documents(text, "fleet")
    assert len(scan.documents) == 2 and not scan.unusable
    d = json_document(merge([Source(doc=x, origin="f") for x in scan.documents]))
    assert d["verdict"] == "dns-unavailable"
    (t,) = d["stale_dns_targets"]
    assert t["dead_target"] == "10.244.0.3" and t["services"] == ["10.233.0.3"]
    assert [(n["node"], n["entries"], [o["process"] for o in n["owners"]]) for n in t["nodes"]] == [
        ("node", 1, ["node-cache"]), ("node2", 1, ["node-cache"])]
    assert t["remedy_command"] == "conntrack -D -p tcp --reply-src 10.244.0.3 --reply-port-src 53"
    (line,) = [f for f in d["findings"] if f["code"] == "stale-dns-target"]
    assert line["summary"] == ("10.244.0.3 (no longer an endpoint of DNS Service 10.233.0.3) still "
                               "draws 2 DNS flows on node, node2: node 1 (node-cache), node2 1 "
                               "(node-cache)")


def test_each_nodes_own_remedy_when_they_differ():
    a, b = stale("10.244.0.3", 4), stale("10.244.0.3", 2)
    b["data"]["remedy_command"] = "conntrack -D -p udp --reply-src 10.244.0.3 --reply-port-src 53"
    d = json_document(merge([Source(doc=node_doc("n1", a), origin="x"),
                             Source(doc=node_doc("n2", b), origin="y")]))
    assert d["stale_dns_targets"][0]["remedy_command"] == (
        "n1: conntrack -D --reply-src 10.244.0.3 --reply-port-src 53; "
        "n2: conntrack -D -p udp --reply-src 10.244.0.3 --reply-port-src 53")
