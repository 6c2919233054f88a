"""`resolve` against the real lab: glibc's walk as it really goes out, the seed disagreement,
a stopped server, silence, and blocked TCP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import hostile as H
from toolkit.sysinfo.resolvconf import parse_resolv_conf, search_candidates

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PODTRIAGE = str(ROOT / ".venv" / "bin" / "podtriage")
if not Path(PODTRIAGE).exists():  # running from another interpreter: use the module
    PODTRIAGE = None


def pt(lab, *args, timeout=40):
    cmd = [PODTRIAGE] if PODTRIAGE else [sys.executable, "-m", "toolkit"]
    return lab.exec("pod", *cmd, *args, timeout=timeout)


def pt_json(lab, *args):
    p = pt(lab, *args, "-o", "json")
    assert p.returncode in (0, 1), p.stderr
    return p.returncode, json.loads(p.stdout)


def glibc_queries(lab, name: str, tmp_path: Path) -> list[str]:
    """What `getent ahosts NAME` really sends, in order, read back with tshark."""
    pcap = tmp_path / "walk.pcap"
    dump = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), "tcpdump", "-i", "eth0", "-U", "-n",
                             "-w", str(pcap), "udp port 53"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        line = ""
        while "listening" not in line and time.monotonic() < deadline:
            line = dump.stderr.readline()
        time.sleep(0.5)  # "listening" is printed before the socket is fully attached
        lab.exec("pod", "getent", "ahosts", name, timeout=30)
        time.sleep(0.5)
    finally:
        dump.terminate()
        dump.wait(timeout=10)
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "dns.flags.response == 0", "-T", "fields",
                          "-e", "dns.qry.name"], capture_output=True, text=True, timeout=60, check=True)
    names = []
    for qname in out.stdout.split():
        fq = qname.rstrip(".") + "."
        if fq not in names:
            names.append(fq)
    return names


@pytest.mark.parametrize("name", [
    "api.corp.example",           # 2 dots < ndots:5: search list first, then as-is
    "a.b.c.d.corp.example",       # 5 dots == ndots: as-is first, then the search list
    "backend",                    # single label: found in the first search domain
    "nothere.corp.example.",      # trailing dot: only the name itself
])
def test_search_walk_matches_glibc(lab, tmp_path, name):
    conf = parse_resolv_conf(Path(f"/etc/netns/{lab.ns('pod')}/resolv.conf").read_text())
    expected = list(search_candidates(name, conf))
    sent = glibc_queries(lab, name, tmp_path)
    # glibc stops at the first candidate that answers: compare the prefix it really walked.
    assert sent == expected[:len(sent)], (sent, expected)
    assert sent, "glibc sent nothing"
    code, doc = pt_json(lab, "resolve", name, "--transport", "udp")
    walked = []
    for r in doc["results"]:
        if r["qname"] not in walked:
            walked.append(r["qname"])
    assert walked == sent


def test_seed_disagreement_with_reference(lab):
    code, doc = pt_json(lab, "resolve", "api.corp.example", "--reference", "192.168.60.53")
    assert code == 1
    assert doc["verdict"] == "bad-answer"
    f = next(f for f in doc["findings"] if f["code"] == "answer-differs-from-reference")
    assert f["data"]["server"] == "169.254.25.10"
    assert f["data"]["answers"] == ["192.168.50.77"]
    assert f["data"]["reference_answers"] == {"192.168.60.53": ["192.168.50.20"]}
    assert doc["candidates"][-1] == "api.corp.example."
    # NodeLocal forwards to CoreDNS over TCP, the pod asks over both.
    assert {(r["server"], r["transport"]) for r in doc["results"]} >= {
        ("169.254.25.10", "udp"), ("169.254.25.10", "tcp"), ("192.168.60.53", "udp")}


def test_stopped_server_is_refused(clean_lab):
    lab = clean_lab
    lab.stop("nodelocal")
    code, doc = pt_json(lab, "resolve", "api.corp.example", "--deadline", "8")
    assert doc["verdict"] == "dns-unavailable"
    f = next(f for f in doc["findings"] if f["code"] == "server-refused")
    assert f["data"]["server"] == "169.254.25.10"
    errors = {r["transport"]: r["error"] for r in doc["results"]}
    assert errors == {"udp": "port-unreachable", "tcp": "refused"}


def test_silent_server_is_timeout(clean_lab):
    lab = clean_lab
    lab.drop_udp53("nodelocal")
    lab.block_tcp53("nodelocal")
    t0 = time.monotonic()
    code, doc = pt_json(lab, "resolve", "api.corp.example", "--timeout", "1", "--deadline", "5")
    assert time.monotonic() - t0 <= H.deadline_limit(5)
    assert doc["verdict"] == "dns-unavailable"
    f = next(f for f in doc["findings"] if f["code"] == "server-timeout")
    assert sorted(f["data"]["transports"]) == ["tcp", "udp"]


def test_blocked_tcp(clean_lab):
    lab = clean_lab
    lab.block_tcp53("nodelocal")
    code, doc = pt_json(lab, "resolve", "www.example.org", "--timeout", "1")
    f = next(f for f in doc["findings"] if f["code"] == "tcp-fails-udp-works")
    assert f["data"] == {"server": "169.254.25.10", "role": "resolv.conf", "failed": ["tcp"], "working": ["udp"]}
    assert f["verdict"] == "dns-unavailable"


def test_deadline_is_honoured_with_everything_silent(clean_lab):
    lab = clean_lab
    lab.drop_udp53("nodelocal")
    lab.block_tcp53("nodelocal")
    t0 = time.monotonic()
    p = pt(lab, "resolve", "api.corp.example", "--timeout", "30", "--deadline", "2", "-o", "json")
    took = time.monotonic() - t0
    assert took <= H.deadline_limit(2), took
    assert json.loads(p.stdout)["verdict"] == "dns-unavailable"
