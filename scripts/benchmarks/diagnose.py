"""diagnose vs the manual sequence an operator runs, in the same lab, in the same run.

The manual sequence is what an on-call engineer types in the pod: `dig` against each
nameserver over UDP and TCP (with the search list, +search), the same against the
reference, then `ping -c 3` to each address dig returned. Both are timed end to end; the
ratio is podtriage's wall time over the manual sequence's (lower is better). The manual
sequence uses dig's and ping's own defaults, as typed.

The healthy name also has a target of its own: podtriage's own ``duration_ms`` (the work,
without process start) within HEALTHY_TARGET_MS (a speed target once asserted in
tests/integration/test_diagnose_lab.py, where a loaded machine made it fail).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.lab import Lab  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PT = str(ROOT / ".venv" / "bin" / "podtriage")
NS = "169.254.25.10"
REF = "192.168.60.53"
HEALTHY_TARGET_MS = 1500.0


def timed(lab, *cmd, timeout=120):
    t0 = time.perf_counter()
    p = lab.exec("pod", *cmd, timeout=timeout)
    return time.perf_counter() - t0, p


def manual(lab, name: str) -> float:
    t0 = time.perf_counter()
    addrs = set()
    for server in (NS, REF):
        for tcp in ((), ("+tcp",)):
            _, p = timed(lab, "dig", "+search", *tcp, f"@{server}", name, "A", "+short")
            addrs |= {line for line in p.stdout.split() if line[:1].isdigit()}
    for a in sorted(addrs):
        timed(lab, "ping", "-c", "3", a)
    return time.perf_counter() - t0


def podtriage(lab, name: str) -> tuple[float, str, float]:
    """(wall time, verdict, the run's own duration_ms)."""
    took, p = timed(lab, PT, "diagnose", name, "--port", "80", "--reference", REF, "-o", "json")
    try:
        doc = json.loads(p.stdout)
        verdict, own_ms = doc["verdict"], float(doc["duration_ms"])
    except (ValueError, KeyError):
        verdict, own_ms = f"error rc={p.returncode}", float("nan")
    return took, verdict, own_ms


def main() -> int:
    lab = Lab("ptbench")
    cases = [("healthy", "www.example.org", None), ("seed", "api.corp.example", None),
             ("all-dead", "api.corp.example", "all-dead")]
    rows = []
    ok = True
    try:
        lab.up()
        for label, name, fault in cases:
            lab.clear_faults()
            if fault == "all-dead":
                lab.drop_udp53("nodelocal")
                lab.block_tcp53("nodelocal")
                lab.drop_udp53("upstream")
                lab.block_tcp53("upstream")
            pts, mans, owns, verdict = [], [], [], ""
            for _ in range(ROUNDS):
                t, verdict, own_ms = podtriage(lab, name)
                pts.append(t)
                owns.append(own_ms)
                mans.append(manual(lab, name))
            p_med, m_med, own_med = statistics.median(pts), statistics.median(mans), statistics.median(owns)
            row = {"case": label, "podtriage_s": round(p_med, 2), "manual_s": round(m_med, 2),
                   "ratio": round(p_med / m_med, 2), "verdict": verdict, "duration_ms": round(own_med, 1)}
            print(f"diagnose {label:<9} podtriage {p_med:6.2f} s ({verdict})   manual dig+ping "
                  f"{m_med:6.2f} s   ratio {p_med / m_med:4.2f}")
            if label == "healthy":
                passed = own_med <= HEALTHY_TARGET_MS
                ok &= passed
                row.update(target_ms=HEALTHY_TARGET_MS, target_ratio=round(own_med / HEALTHY_TARGET_MS, 2),
                           passed=passed)
                print(f"diagnose healthy   duration_ms {own_med:6.0f} (target <= {HEALTHY_TARGET_MS:.0f}, ratio "
                      f"{own_med / HEALTHY_TARGET_MS:4.2f}) {'PASS' if passed else 'FAIL'}")
            rows.append(row)
    finally:
        lab.down()
    print(json.dumps({"benchmark": "diagnose", "rounds": ROUNDS, "rows": rows}), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
