"""Live capture's TPACKET_V3 ring (toolkit/capture/ring.py) against the recvmsg path it replaced.

A throwaway namespace with a veth whose peer has no address (frames to a static neighbour
leave ptr0 and vanish: nothing answers, nothing else is captured). A burst of N distinct DNS
queries is sent from inside ``on_ready`` (after the filter and the ring are in place, before
the reader's first look), so the kernel alone decides what fits:

- the ring (default) and the forced fallback (PODTRIAGE_CAPTURE_RING=0) both capture every
  query, and write the same cooked (SLL) headers and DNS messages;
- a ring shrunk to 4 blocks of 8 KiB overflows: the kernel's tpacket_stats_v3 drops are
  reported, and packets read + drops = packets sent, exactly.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.veth import veth_pair

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
NS_A, NS_B = "ptg-ringa", "ptg-ringb"

SCRIPT = r'''
import json, socket, struct, sys, time
from toolkit.capture import ring as ringmod
from toolkit.capture.live import capture_live
size, n, pcap = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if size == "small":
    ringmod.BLOCK_COUNT, ringmod.BLOCK_SIZE = 4, 8192

def burst(_expression):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        q = struct.pack("!HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + b"\x01q" + bytes([5]) + b"%05d" % i
        s.sendto(q + b"\x07example\x00\x00\x01\x00\x01", ("10.97.0.2", 53))
    time.sleep(0.2)  # the last block retires on its timer (a few ms)

res = capture_live(interface="ptr0", duration=1.5, write=pcap, on_ready=burst)
print(json.dumps({"packets": res.packets, "kernel_packets": res.kernel_packets, "drops": res.kernel_drops,
                  "unread": res.unread, "notes": list(res.notes), "path": res.extra.get("capture_path"),
                  "written": res.written_packets, "queries": res.summary.queries}))
'''


@pytest.fixture(scope="module")
def veth():
    with veth_pair(NS_A, NS_B, "ptr0", "ptr1", setup_a=(
            ("addr", "add", "10.97.0.1/24", "dev", "ptr0"),
            ("neigh", "add", "10.97.0.2", "lladdr", "02:00:00:00:00:02", "dev", "ptr0"))):
        yield NS_A


def run(ns: str, size: str, n: int, pcap: Path, ring: str = "1") -> dict:
    p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT, size, str(n), str(pcap)],
                       capture_output=True, text=True, timeout=60, cwd=ROOT,
                       env=dict(os.environ, PODTRIAGE_CAPTURE_RING=ring))
    assert p.returncode == 0, p.stderr[-2000:]
    doc: dict = json.loads(p.stdout)
    return doc


def records(pcap: Path) -> list[tuple[int, bytes]]:
    """(time ns, record bytes) of a pcap written by PcapWriter (either time resolution)."""
    raw = pcap.read_bytes()
    magic = struct.unpack_from("<I", raw)[0]
    scale = 1 if magic == 0xA1B23C4D else 1000
    out, at = [], 24
    while at < len(raw):
        sec, frac, incl, _orig = struct.unpack_from("<IIII", raw, at)
        out.append((sec * 1_000_000_000 + frac * scale, raw[at + 16:at + 16 + incl]))
        at += 16 + incl
    return out


def test_ring_and_fallback_capture_the_same_records(veth, tmp_path):
    n = 3000
    ring = run(veth, "default", n, tmp_path / "ring.pcap")
    plain = run(veth, "default", n, tmp_path / "plain.pcap", ring="0")
    assert ring["path"] == "tpacket_v3" and plain["path"] == "recvmsg"
    assert any("PODTRIAGE_CAPTURE_RING=0" in note for note in plain["notes"])
    assert not any("ring" in note for note in ring["notes"]), ring["notes"]
    for doc in (ring, plain):
        assert (doc["packets"], doc["kernel_packets"], doc["drops"], doc["unread"]) == (n, n, 0, 0), doc
        assert doc["queries"] == n and doc["written"] == n
    r, p = records(tmp_path / "ring.pcap"), records(tmp_path / "plain.pcap")
    # the same cooked header and DNS message (IP id, source port and checksums differ per run)
    assert [(rec[:16], rec[16 + 28:]) for _ts, rec in r] == [(rec[:16], rec[16 + 28:]) for _ts, rec in p]
    # the cooked header from the ring's sockaddr_ll: outgoing (4), ARPHRD_ETHER (1), 6-byte address, IPv4
    pkttype, hatype, halen = struct.unpack_from("!HHH", r[0][1])
    assert (pkttype, hatype, halen, r[0][1][14:16]) == (4, 1, 6, b"\x08\x00")
    times = [ts for ts, _rec in r]
    assert times == sorted(times) and times[-1] - times[0] < 5_000_000_000  # kernel times of one burst


def test_overflowing_ring_reports_its_drops_exactly(veth, tmp_path):
    n = 3000
    doc = run(veth, "small", n, tmp_path / "small.pcap")
    assert doc["path"] == "tpacket_v3"
    assert doc["kernel_packets"] == n and doc["drops"] > 0, doc
    assert doc["packets"] + doc["drops"] == n and doc["unread"] == 0, doc
    assert doc["written"] == doc["packets"] == len(records(tmp_path / "small.pcap"))
