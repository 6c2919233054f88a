"""How fast `podtriage reach` settles each lab case, against the speed targets its lab tests
used to assert (tests/integration/test_reach.py keeps the classification and the deadline
promise; the speed is measured here, where a loaded machine makes a slow row, not a red test).

Each case runs BENCH_ROUNDS times (default 3) in a lab of its own (root; prefix "breach"),
one at a time. A dead address is a fresh one each round (the node remembers a failed ARP
and would answer the next probe at once), and cases that draw router ICMP errors first let
the node's per-destination ICMP rate limit refill. Printed per case: the report's own
duration (median and worst) against its bound, the ratio median/bound (lower is better),
and the process's wall time against its bound. Exit 1 when a median is over its bound or a
verdict is wrong.

Usage: scripts/bench reach   (or .venv/bin/python scripts/benchmarks/reach.py)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.test_reach import APP, finish, start  # noqa: E402
from tests.lab import Lab  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ICMP_REFILL_S = 4.0  # the node's ICMP errors per destination: a burst of 6, then one a second
DEAD_POOL = tuple(f"192.168.50.{i}" for i in range(60, 100) if i != 77)  # nobody holds these


@dataclass(frozen=True, kw_only=True)
class Case:
    """One reach run and its speed targets (the bounds test_reach.py asserted)."""

    name: str
    args: tuple[str, ...]  # "DEAD" is replaced by a fresh dead address
    verdict: str
    bound_ms: float  # the report's duration_ms
    wall_s: float  # the process, start-up included
    fault: str | None = None  # a Lab method that sets the fault (cleared after the case)
    drop_net_raw: bool = False
    icmp: bool = False  # draws router ICMP errors: let the rate limit refill first


CASES = (
    Case(name="open port", args=(APP, "--port", "80"), verdict="ok", bound_ms=1500, wall_s=10),
    Case(name="closed port", args=(APP, "--port", "81"), verdict="port-closed", bound_ms=1500, wall_s=10),
    Case(name="dead address", args=("DEAD", "--port", "80"), verdict="unreachable-host", bound_ms=4500,
         wall_s=12, icmp=True),
    Case(name="app host down", args=(APP, "--port", "80"), verdict="unreachable-host", bound_ms=4500,
         wall_s=12, fault="app_down", icmp=True),
    Case(name="admin-prohibited", args=(APP, "--port", "80"), verdict="filtered", bound_ms=1500, wall_s=10,
         fault="reject_admin", icmp=True),
    Case(name="admin-prohibited, no NET_RAW", args=(APP, "--port", "80"), verdict="filtered", bound_ms=1500,
         wall_s=10, fault="reject_admin", drop_net_raw=True, icmp=True),
    Case(name="dead, no NET_RAW", args=("DEAD", "--port", "80"), verdict="unreachable-host", bound_ms=4500,
         wall_s=12, drop_net_raw=True, icmp=True),
    Case(name="dead, --deadline 1.5", args=("DEAD", "--port", "80", "--deadline", "1.5"),
         verdict="unreachable-host|indeterminate", bound_ms=2000, wall_s=8, icmp=True),
)


def run_case(lab: Lab, case: Case, dead: str) -> tuple[float, float, str]:
    """(duration_ms, wall s, verdict) of one run."""
    if case.icmp:
        time.sleep(ICMP_REFILL_S)
    if case.fault == "reject_admin":
        lab.reject_admin(APP)
    elif case.fault == "app_down":
        lab.app_down()
    try:
        args = tuple(dead if a == "DEAD" else a for a in case.args)
        rc, out, err, secs = finish(start(lab, *args, "-o", "json", drop_net_raw=case.drop_net_raw))
    finally:
        if case.fault:
            lab.clear_faults()
    try:
        d = json.loads(out)
    except ValueError:
        return float("nan"), secs, f"error rc={rc}: {err.strip()[-200:]}"
    return float(d["duration_ms"]), secs, d["verdict"]


def main() -> int:
    lab = Lab("breach")
    lab.up()
    dead = iter(DEAD_POOL * (ROUNDS + 1))
    ok = True
    try:
        print(f"{'case':30} {'bound ms':>9} {'median ms':>10} {'worst ms':>9} {'ratio':>6} "
              f"{'wall s (bound)':>15}  verdicts")
        for case in CASES:
            runs = [run_case(lab, case, next(dead)) for _ in range(ROUNDS)]
            ms = [r[0] for r in runs]
            wall = max(r[1] for r in runs)
            verdicts = sorted({r[2] for r in runs})
            median = statistics.median(ms)
            right = all(v in case.verdict.split("|") for v in verdicts)
            over = not median <= case.bound_ms or wall > case.wall_s
            ok = ok and right and not over
            print(f"{case.name:30} {case.bound_ms:>9.0f} {median:>10.0f} {max(ms):>9.0f} "
                  f"{median / case.bound_ms:>6.2f} {wall:>6.2f} ({case.wall_s:>4.0f}){'  OVER' if over else '      '}"
                  f"  {', '.join(verdicts)}{'' if right else ' (WRONG: expected ' + case.verdict + ')'}")
        return 0 if ok else 1
    finally:
        lab.down()


if __name__ == "__main__":
    sys.exit(main())
