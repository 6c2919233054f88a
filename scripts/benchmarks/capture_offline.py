"""Offline analysis benchmark: podtriage vs tshark on the same 200,000-packet DNS pcaps.

Two pcaps: "walks", one search-list walk at a time from random pods; "concurrent", 1000
clients (pods) walking the search list at the same time, their queries interleaved (the
lookup grouping's worst case: every query has to find its own walk among a thousand open).

tshark: `tshark -r FILE -Y dns -T fields -e dns.time -e dns.response_to` (it pairs queries
and responses too). podtriage: `podtriage capture -R FILE -o json` (decode + pairing +
lookups + summary), both as subprocesses, best of BENCH_ROUNDS. Target (issue 3): podtriage
at least as fast as tshark (ratio podtriage/tshark <= 1.0).

Memory (issue 27 item 4): peak RSS of `podtriage capture -R FILE -o json` for each pcap at
BENCH_MEM_PACKETS (83,000) and for ten copies of it back to back, each copy's times shifted
past the previous one's end (made here, never kept in git); the ratio 10x/1x must stay <=
MEM_TARGET (bounded tables: memory flat in the number of packets). The machine's 1-minute
load is printed with each row. BENCH_MEMORY_ONLY=1 runs the memory rows alone.

The offline row of issue 27 (BENCH_ROW_ONLY=1 runs it alone): the "walks" pcap at
BENCH_ROW_PACKETS (83,000) packets; tshark computing response times in two passes,
`tshark -2 -r FILE -R dns -T fields -e dns.time` (-2 because dns.time, the response time, is
on the response only once the first pass has seen its query; -R is -2's read filter), against
`podtriage capture -R FILE -o json`; BENCH_ROW_RUNS (5) paired runs, interleaved, each timed
as a whole process with its peak RSS (wait4); the medians, their ratio (goal <= ROW_TARGET) and
the 1-minute load before each pair. podtriage runs twice in each pair when the mypyc build is
in the tree (scripts/build-mypyc): compiled, and pure Python from a copy of toolkit/ without
the extensions. Both with their bytecode cached (PYTHONPYCACHEPREFIX in the run's scratch
directory, warmed once), as the image ships its .pyc: without it every run recompiles ~290
modules (about 0.1 s).
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
from toolkit.capture.pcapio import open_capture, write_pcap  # noqa: E402

PACKETS = int(os.environ.get("BENCH_PACKETS", "200000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
TARGET = 1.0
MEM_PACKETS = int(os.environ.get("BENCH_MEM_PACKETS", "83000"))
MEM_TARGET = 1.2
ROW_PACKETS = int(os.environ.get("BENCH_ROW_PACKETS", "83000"))
ROW_RUNS = int(os.environ.get("BENCH_ROW_RUNS", "5"))
ROW_TARGET = 0.3
ROW_TSHARK = ["tshark", "-2", "-R", "dns", "-T", "fields", "-e", "dns.time", "-r"]


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


def make_concurrent_pcap(path: str, packets: int, clients: int = 1000) -> None:
    """``clients`` pods, each walking the search list over and over, all at once: at any
    moment about ``clients`` walks are open and their packets interleave."""
    rnd = random.Random(11)
    search = ("wxwork.svc.alpha.pm.k8s", "svc.alpha.pm.k8s", "alpha.pm.k8s", "")
    server = "169.254.25.10"
    t0 = 1_700_000_000_000_000_000
    events: list[tuple[int, bytes]] = []
    txid = 0
    per_client = max(1, packets // (clients * 16))
    for c in range(clients):
        client = f"10.{(c >> 8) + 100}.{c & 0xFF}.10"
        t = t0 + rnd.randrange(0, 5_000_000)
        for _ in range(per_client):
            base = f"svc{rnd.randrange(500)}.corp.example"
            for dom in search:
                name = f"{base}.{dom}" if dom else base
                port = rnd.randrange(32768, 60999)  # glibc: a new socket per candidate
                ids = []
                for qtype in (1, 28):
                    txid = (txid + 1) & 0xFFFF
                    ids.append((txid, qtype))
                    t += rnd.randrange(5_000, 30_000)
                    events.append((t, S.frame(S.udp(client, server, port, 53, S.dns_query(txid, name, qtype),
                                                    checksum=False))))
                t += rnd.randrange(200_000, 4_000_000)
                for tid, qtype in ids:
                    if dom:
                        resp = S.dns_response(tid, name, qtype, rcode=3)
                    else:
                        resp = S.dns_response(tid, name, qtype,
                                              addresses=("192.168.50.20",) if qtype == 1 else ("fd00::20",))
                    t += rnd.randrange(5_000, 30_000)
                    events.append((t, S.frame(S.udp(server, client, 53, port, resp, checksum=False))))
            t += rnd.randrange(2_000_000, 50_000_000)  # think time before the next lookup
    events.sort(key=lambda e: e[0])
    write_pcap(path, 1, iter(events[:packets]))


def timed(cmd: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0, p.returncode


def tenfold(src: str, dst: str, copies: int = 10) -> None:
    """``copies`` copies of ``src`` back to back, each shifted one second past the last one's end."""
    recs = [(ts, data) for ts, _lt, data in open_capture(src)]
    span = recs[-1][0] - recs[0][0] + 1_000_000_000

    def gen():
        for k in range(copies):
            for ts, data in recs:
                yield ts + k * span, data
    write_pcap(dst, 1, gen())


def peak_rss(cmd: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB of this child alone: wait4's rusage, return code)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env)
    _pid, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024.0, p.returncode


def memory_rows(tmp: str) -> bool:
    env_py = str(ROOT / ".venv" / "bin" / "python")
    py = env_py if os.path.exists(env_py) else sys.executable
    ok = True
    for label, maker in (("walks", make_pcap), ("concurrent", make_concurrent_pcap)):
        one, ten = os.path.join(tmp, f"mem-{label}-1x.pcap"), os.path.join(tmp, f"mem-{label}-10x.pcap")
        maker(one, MEM_PACKETS)
        tenfold(one, ten)
        got = {}
        for tag, path in (("1x", one), ("10x", ten)):
            load = os.getloadavg()[0]
            secs, mb, rc = peak_rss([py, "-m", "toolkit", "capture", "-R", path, "-o", "json"])
            if rc not in (0, 1):
                print(f"capture_offline: memory {label} {tag} failed (rc={rc})", file=sys.stderr)
                return False
            got[tag] = mb
            n = MEM_PACKETS * (10 if tag == "10x" else 1)
            print(f"[memory {label}] {n:8d} packets  peak RSS {mb:6.1f} MB  {secs:6.2f} s  load {load:.2f}")
        ratio = got["10x"] / got["1x"]
        passed = ratio <= MEM_TARGET
        ok &= passed
        print(f"[memory {label}] 10x/1x peak RSS ratio {ratio:4.2f}  {'OK' if passed else 'FAIL'} "
              f"(target <= {MEM_TARGET})")
    return ok


def _compiled() -> bool:
    return any((ROOT / "toolkit" / "capture").glob("*.cpython-*.so"))


def offline_row(tmp: str) -> bool:
    """Issue 27's offline row: medians of ROW_RUNS paired runs against `tshark -2`."""
    import statistics
    pcap = os.path.join(tmp, f"row-walks-{ROW_PACKETS}.pcap")
    make_pcap(pcap, ROW_PACKETS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    env_py = str(ROOT / ".venv" / "bin" / "python")
    py = env_py if os.path.exists(env_py) else sys.executable
    cases: dict[str, tuple[list[str], str | None]] = {"tshark -2": (ROW_TSHARK + [pcap], None)}
    pt = [py, "-m", "toolkit", "capture", "-R", pcap, "-o", "json"]
    if _compiled():
        pure = os.path.join(tmp, "pure")
        shutil.copytree(ROOT / "toolkit", os.path.join(pure, "toolkit"),
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        cases["podtriage (mypyc)"] = (pt, str(ROOT))
        cases["podtriage (pure Python)"] = (pt, pure)
    else:
        cases["podtriage (pure Python)"] = (pt, str(ROOT))
    for cmd, cwd in cases.values():  # warm: bytecode, page cache
        subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    secs: dict[str, list[float]] = {k: [] for k in cases}
    rss: dict[str, list[float]] = {k: [] for k in cases}
    loads = []
    for _ in range(ROW_RUNS):
        loads.append(os.getloadavg()[0])
        for name, (cmd, cwd) in cases.items():
            t, mb, rc = peak_rss(cmd, cwd=cwd, env=env)
            if rc not in (0, 1):
                print(f"capture_offline: {name} failed (rc={rc})", file=sys.stderr)
                return False
            secs[name].append(t)
            rss[name].append(mb)
    base = statistics.median(secs["tshark -2"])
    print(f"[offline row] {ROW_PACKETS} packets, {ROW_RUNS} paired runs, load {min(loads):.2f}-{max(loads):.2f}; "
          f"anchor: {' '.join(ROW_TSHARK)} FILE")
    ok = True
    for name in cases:
        med = statistics.median(secs[name])
        ratio = med / base
        verdict = "" if name.startswith("tshark") else ("  OK" if ratio <= ROW_TARGET else f"  FAIL (goal <= {ROW_TARGET})")
        if name == "podtriage (mypyc)" or (name.startswith("podtriage") and len(cases) == 2):
            ok &= ratio <= ROW_TARGET
        print(f"[offline row] {name:24s} median {med:5.2f} s (min {min(secs[name]):5.2f}, max {max(secs[name]):5.2f})"
              f"  peak RSS {statistics.median(rss[name]):6.1f} MB  ratio {ratio:4.2f}{verdict}")
    return ok


def main() -> int:
    if os.environ.get("BENCH_ROW_ONLY"):
        if shutil.which("tshark") is None:
            print("capture_offline: tshark is not installed (apt-get install tshark)", file=sys.stderr)
            return 1
        tmp = tempfile.mkdtemp(prefix="ptbench-")
        try:
            return 0 if offline_row(tmp) else 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if os.environ.get("BENCH_MEMORY_ONLY"):
        tmp = tempfile.mkdtemp(prefix="ptbench-")
        try:
            return 0 if memory_rows(tmp) else 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if shutil.which("tshark") is None:
        print("capture_offline: tshark is not installed (apt-get install tshark)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="ptbench-")
    ok = True
    try:
        for label, maker in (("walks", make_pcap), ("concurrent", make_concurrent_pcap)):
            pcap = os.path.join(tmp, f"dns-{label}.pcap")
            t0 = time.perf_counter()
            maker(pcap, PACKETS)
            gen_s = time.perf_counter() - t0
            size = os.path.getsize(pcap)
            print(f"capture_offline: {label}: generated {PACKETS} packets ({size / 1e6:.1f} MB) in {gen_s:.1f} s",
                  file=sys.stderr)
            ok &= compare(label, pcap)
        ok &= offline_row(tmp)
        ok &= memory_rows(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def compare(label: str, pcap: str) -> bool:
    env_py = str(ROOT / ".venv" / "bin" / "python")
    py = env_py if os.path.exists(env_py) else sys.executable
    cases = {
        "tshark -Y dns -T fields -e dns.time -e dns.response_to":
            ["tshark", "-r", pcap, "-Y", "dns", "-T", "fields", "-e", "dns.time", "-e", "dns.response_to"],
        "tshark -2 (two passes, as the oracle tests)":
            ["tshark", "-2", "-r", pcap, "-Y", "dns", "-T", "fields", "-e", "dns.time", "-e", "dns.response_to"],
        "podtriage capture -R -o json": [py, "-m", "toolkit", "capture", "-R", pcap, "-o", "json"],
    }
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, cmd in cases.items():
            secs, rc = timed(cmd)
            if rc not in (0, 1):
                print(f"capture_offline: {name} failed (rc={rc})", file=sys.stderr)
                return False
            best[name] = min(best.get(name, secs), secs)
    tshark = best[next(iter(cases))]
    tshark2 = best["tshark -2 (two passes, as the oracle tests)"]
    ok = True
    for name, secs in best.items():
        ratio = secs / tshark
        passed = ratio <= TARGET or name.startswith("tshark")
        ok &= passed
        extra = "" if name.startswith("tshark") else f"  vs tshark -2 {secs / tshark2:4.2f}"
        print(f"[{label}] {name:50s} {secs:6.2f} s  {PACKETS / secs:9.0f} pkt/s  ratio {ratio:4.2f}{extra}"
              f"{'' if name.startswith('tshark') else ('  OK' if passed else f'  FAIL (target <= {TARGET})')}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
