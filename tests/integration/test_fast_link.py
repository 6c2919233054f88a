"""Our own ARP on an on-link address (issue 27 item 3), in the lab (root): from the node's
namespace, where the node LAN 192.168.50.0/24 is on-link (`kubectl podtriage node/NODE`).

Nobody holds 192.168.50.77 there: three who-has of ours 0.2 s apart go unanswered and the
kernel's own neighbour entry (INCOMPLETE while its 1 s timer runs) agrees, so the address is
settled as absent and its SYN and echo are not waited for; 192.168.50.20 answers our
who-has. Without NET_RAW nothing of ours is sent: the kernel's timer decides, as before.
How fast is a benchmark (scripts/benchmarks/diagnose.py, row seed-onlink), not asserted here.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
PODTRIAGE = str(ROOT / ".venv" / "bin" / "podtriage")
ENV = dict(os.environ, PODTRIAGE_PROGRESS="0", COLUMNS="200")
APP, DEAD, NODE_LAN = "192.168.50.20", "192.168.50.77", "192.168.50.1"


def run(lab, *args, drop_net_raw=False):
    cmd = [PODTRIAGE, *args, "-o", "json"]
    if drop_net_raw:
        cmd = ["capsh", "--drop=cap_net_raw", "--", "-c", " ".join(cmd)]
    p = subprocess.run(["ip", "netns", "exec", lab.ns("node"), *cmd], env=ENV, capture_output=True, text=True,
                       timeout=30, cwd=ROOT, check=False)
    assert p.stdout, f"no output (rc={p.returncode}): {p.stderr}"
    return p.returncode, json.loads(p.stdout)


def probes(doc, address):
    addr = next(a for a in doc["addresses"] if a["address"] == address)
    return addr, {(p["kind"], p["port"]): p for p in addr["probes"]}


def test_onlink_dead_address_is_settled_by_our_own_arp(clean_lab):
    rc, d = run(clean_lab, "reach", DEAD, "--port", "80")
    addr, pr = probes(d, DEAD)
    assert (rc, d["verdict"], d["confidence"], addr["state"]) == (1, "unreachable-host", "high", "host-unreachable")
    assert addr["route"]["on_link"] and addr["control_ok"] is True
    arp = pr[("arp", None)]
    assert arp["result"] == "silence" and arp["privileged"]
    assert "no ARP reply to 3 who-has 200 ms apart" in arp["detail"]
    assert "neighbour table: INCOMPLETE" in arp["detail"] or "neighbour table: FAILED" in arp["detail"]
    syn = pr[("tcp-syn", 80)]
    assert syn["result"] == "not-run" and syn["detail"].startswith("not waited for: no ARP reply")
    assert "nobody holds the address" in addr["summary"]


def test_onlink_live_address_answers_our_arp(clean_lab):
    rc, d = run(clean_lab, "reach", APP, "--port", "80")
    addr, pr = probes(d, APP)
    assert (rc, d["verdict"], addr["state"]) == (0, "ok", "up")
    assert pr[("arp", None)]["result"] == "reply" and "is-at" in pr[("arp", None)]["detail"]
    assert pr[("tcp-syn", 80)]["result"] == "open"


def test_onlink_seed_diagnose_keeps_verdict_confidence_and_support(clean_lab, tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text(Path(f"/etc/netns/{clean_lab.ns('pod')}/resolv.conf").read_text())
    rc, d = run(clean_lab, "diagnose", "api.corp.example", "--file", str(conf), "--port", "80",
                "--reference", "192.168.60.53")
    assert (rc, d["verdict"], d["confidence"]) == (1, "bad-answer", "high")
    # the ARP silence counts as the address observed first-hand, like a router's host-unreachable
    assert set(d["support"]) >= {"reference", "paths", "probes", "control"}
    dead = next(a for a in d["addresses"] if a["address"] == DEAD)
    assert dead["state"] == "host-unreachable"
    top = d["findings"][0]
    assert top["code"] == "stale-answer" and top["data"]["addresses"] == [DEAD]


def test_without_net_raw_the_kernels_timer_decides(clean_lab):
    rc, d = run(clean_lab, "reach", DEAD, "--port", "80", drop_net_raw=True)
    addr, pr = probes(d, DEAD)
    assert addr["state"] == "host-unreachable" and "NET_RAW" not in d["capabilities"]
    conn = pr[("tcp-connect", 80)]
    assert conn["result"] == "host-unreachable" and not conn["privileged"]
    assert not any(p["kind"] == "arp" and "who-has" in (p["detail"] or "") for p in addr["probes"])
    assert any("ARP: only the kernel's neighbour table" in line for line in d["lost"])
