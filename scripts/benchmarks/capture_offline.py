"""Offline analysis benchmark: podtriage vs tshark on the same 200,000-packet DNS pcap.

tshark: `tshark -r FILE -Y dns -T fields -e dns.time -e dns.response_to` (it pairs queries
and responses too). podtriage: `podtriage capture -r FILE -o json` (decode + pairing +
lookups + summary), both as subprocesses, best of BENCH_ROUNDS. Target (issue 3): podtriage
at least as fast as tshark (ratio podtriage/tshark <= 1.0).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from toolkit.capture import synth as S  # noqa: E402
from toolkit.capture.pcapio import write_pcap  # noqa: E402

PACKETS = int(os.environ.get("BENCH_PACKETS", "200000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
TARGET = 1.0


def make_pcap(path: str, packets: int) -> None:
    rnd = random.Random(7)
    search = ("wxwork.svc.alpha.pm.k8s", "svc.alpha.pm.k8s", "alpha.pm.k8s", "")
    server = "169.254.25.10"
    t = 1_700_000_000_000_000_000

    def gen():
        nonlocal t
        made = 0
        txid = 0
        while made < packets:
            client = f"10.244.{rnd.randrange(1, 4)}.{rnd.randrange(2, 250)}"
            port = rnd.randrange(32768, 60999)
            base = f"svc{rnd.randrange(500)}.corp.example"
            for dom in search:  # a search-list walk: A + AAAA per candidate
                name = f"{base}.{dom}" if dom else base
                for qtype in (1, 28):
                    if made >= packets:
                        return
                    txid = (txid + 1) & 0xFFFF
                    t += rnd.randrange(20_000, 200_000)
                    yield t, S.frame(S.udp(client, server, port, 53, S.dns_query(txid, name, qtype), checksum=False))
                    made += 1
                    if made >= packets:
                        return
                    t += rnd.randrange(100_000, 3_000_000)
                    if dom:
                        resp = S.dns_response(txid, name, qtype, rcode=3)
                    else:
                        resp = S.dns_response(txid, name, qtype, addresses=("192.168.50.20",) if qtype == 1 else ("fd00::20",))
                    yield t, S.frame(S.udp(server, client, 53, port, resp, checksum=False))
                    made += 1
    write_pcap(path, 1, gen())


def timed(cmd: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0, p.returncode


def main() -> int:
    if shutil.which("tshark") is None:
        print("capture_offline: tshark is not installed (apt-get install tshark)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="ptbench-")
    pcap = os.path.join(tmp, "dns200k.pcap")
    t0 = time.perf_counter()
    make_pcap(pcap, PACKETS)
    gen_s = time.perf_counter() - t0
    size = os.path.getsize(pcap)
    print(f"capture_offline: generated {PACKETS} packets ({size / 1e6:.1f} MB) in {gen_s:.1f} s", file=sys.stderr)
    env_py = str(ROOT / ".venv" / "bin" / "python")
    py = env_py if os.path.exists(env_py) else sys.executable
    cases = {
        "tshark -Y dns -T fields -e dns.time -e dns.response_to":
            ["tshark", "-r", pcap, "-Y", "dns", "-T", "fields", "-e", "dns.time", "-e", "dns.response_to"],
        "podtriage capture -r -o json": [py, "-m", "toolkit", "capture", "-r", pcap, "-o", "json"],
    }
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, cmd in cases.items():
            secs, rc = timed(cmd)
            if rc not in (0, 1):
                print(f"capture_offline: {name} failed (rc={rc})", file=sys.stderr)
                return 1
            best[name] = min(best.get(name, secs), secs)
    shutil.rmtree(tmp, ignore_errors=True)
    tshark = best[next(iter(cases))]
    ok = True
    for name, secs in best.items():
        ratio = secs / tshark
        passed = ratio <= TARGET or name.startswith("tshark")
        ok &= passed
        print(f"{name:58s} {secs:6.2f} s  {PACKETS / secs:9.0f} pkt/s  ratio {ratio:4.2f}"
              f"{'' if name.startswith('tshark') else ('  OK' if passed else f'  FAIL (target <= {TARGET})')}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
