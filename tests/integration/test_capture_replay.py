"""Live capture of REAL query/answer traffic replayed by tcpreplay: every packet seen, and every
pairing number equal to `capture --read` of the same file (issue 27's row, at a rate this
shared machine holds; scripts/benchmarks/capture_replay.py steps the rate up).

tests/data/pcaps/lab-coredns-nodelocal-burst.pcap: the first 4,000 packets of the lab's pod
asking the real NodeLocal cache and CoreDNS (README there). tcpreplay sends its Ethernet frames
out of one end of a veth in a throwaway namespace; `podtriage capture` reads the other end,
where they arrive addressed to another host (PACKET_OTHERHOST: seen by packet sockets, dropped
by IP). Latencies change with the replay's pacing, so the count of answered ones is compared,
not their values; the 8 queries unanswered at the cut are "never answered" live (the capture
runs on past their timeout) but still within it where the file ends; lookups group by time
windows and are not compared here (the bench compares them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.veth import need_root, veth_pair

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "pcaps" / "lab-coredns-nodelocal-burst.pcap"
NS_A, NS_B = "ptg-rpla", "ptg-rplb"
PAIRS = ("queries", "responses", "pairs", "unanswered", "transactions", "retransmissions", "late_responses",
         "unmatched_responses", "duplicate_responses", "mismatched_responses", "rcodes", "answer_rcodes")


@pytest.fixture(scope="module")
def veth():
    need_root()
    assert shutil.which("tcpreplay"), "tcpreplay (Debian) must be installed"
    with veth_pair(NS_A, NS_B, "rpl0", "rpl1"):
        yield NS_B


def pairing(doc: dict) -> dict:
    hist = (doc.get("latency_histogram") or {}).get("all") or {}
    return {**{k: doc.get(k) for k in PAIRS}, "latency_count": sum(v for k, v in hist.items() if k != "never answered")}


def podtriage(*args: str, ns: str | None = None, ring: str = "1") -> subprocess.Popen:
    cmd = ([] if ns is None else ["ip", "netns", "exec", ns]) + [sys.executable, "-m", "toolkit", "capture",
                                                                 *args, "-o", "json"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PODTRIAGE_PROGRESS="1", PODTRIAGE_CAPTURE_RING=ring))


def live(ns: str, ring: str) -> dict:
    """Capture on rpl1 while the sample is replayed once at 10k packets/s from rpl0."""
    cap = podtriage("-i", "rpl1", "--duration", "6", ns=ns, ring=ring)
    assert cap.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the filter and the ring are in place
        line = cap.stderr.readline()
        if not line or line.startswith("listening on") or "listening on" in line:
            break
    rep = subprocess.run(["ip", "netns", "exec", NS_A, "tcpreplay", "--pps=10000", "--intf1=rpl0", str(SAMPLE)],
                         capture_output=True, text=True, timeout=60)
    assert rep.returncode == 0, rep.stderr
    out, err = cap.communicate(timeout=60)
    assert "Traceback" not in err and out, err[-2000:]
    doc: dict = json.loads(out)  # (exit 1: the cut's 8 unanswered queries are a finding)
    return doc


@pytest.mark.parametrize("ring", ["1", "0"], ids=["ring", "recvmsg"])
def test_replayed_real_traffic_pairs_exactly_as_read_from_the_file(veth, ring):
    truth_p = podtriage("-R", str(SAMPLE))
    out, err = truth_p.communicate(timeout=60)
    truth = json.loads(out)
    assert truth["packets"] == 4000 and truth["responses"] > 1900  # the file as kept
    doc = live(veth, ring)
    print(f"live: {doc['packets']} packets, kernel {doc['kernel']}, path {doc['capture_path']}")
    assert doc["packets"] == truth["packets"]  # every frame, nothing else (no IPv6 chatter)
    assert doc["kernel"]["drops"] == 0 and doc["unread"] == 0
    assert pairing(doc) == pairing(truth)
    if ring == "1":
        assert doc["capture_path"] == "tpacket_v3" and doc["capture_path_reason"] is None
    else:
        assert doc["capture_path"] == "recvmsg" and doc["capture_path_reason"] == "PODTRIAGE_CAPTURE_RING=0"
    # the replayed queries come from 10.244.1.10, no address of this namespace: no sock_diag look
    assert doc["who_asked"]["client_sockets"] == 0
