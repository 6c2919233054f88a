"""diagnose over IPv6 vs the same diagnose over IPv4, in the same dual-stack lab, same run.

Pairs of equivalent cases (same search list, same path shape, one address each), the pod's
nameserver and the reference given in one family each: NodeLocal 169.254.25.10 vs
fd00:25::10, the upstream 192.168.60.53 vs [fd00:60::53]. The two families alternate round by
round so that load on the machine hits both alike. Target: IPv6 within 10 % of IPv4
(ratio <= 1.10, medians).

  healthy  www.example.org (A 192.168.50.20)        vs app6.example.org (AAAA fd00:50::20)
  seed     api.corp.example (stale A .77, ARP fails) vs api6.corp.example (stale AAAA ::77, ND fails)
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

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PT = str(ROOT / ".venv" / "bin" / "podtriage")
FAMILIES = {
    "ipv4": {"resolv": "resolv-v4.conf", "ref": "192.168.60.53",
             "names": {"healthy": "www.example.org", "seed": "api.corp.example"}},
    "ipv6": {"resolv": "resolv-v6.conf", "ref": "[fd00:60::53]:53",
             "names": {"healthy": "app6.example.org", "seed": "api6.corp.example"}},
}


def run(lab: Lab, family: str, case: str) -> tuple[float, str]:
    fam = FAMILIES[family]
    t0 = time.perf_counter()
    p = lab.exec("pod", PT, "diagnose", fam["names"][case], "--port", "80", "--reference", fam["ref"],
                 "--file", str(lab.rundir / fam["resolv"]), "-o", "json", timeout=120)
    took = time.perf_counter() - t0
    try:
        verdict = json.loads(p.stdout)["verdict"]
    except (ValueError, KeyError):
        verdict = f"error rc={p.returncode}"
    return took, verdict


def main() -> int:
    lab = Lab("ptbench6", ipv6=True)
    rows = []
    try:
        lab.up()
        for case in ("healthy", "seed"):
            lab.clear_faults()
            times: dict[str, list[float]] = {"ipv4": [], "ipv6": []}
            verdicts: dict[str, str] = {}
            for _ in range(ROUNDS):
                for family in ("ipv4", "ipv6"):
                    t, verdicts[family] = run(lab, family, case)
                    times[family].append(t)
                    time.sleep(1.0)  # let the node's ICMP(v6) rate limiter refill between runs
            v4, v6 = statistics.median(times["ipv4"]), statistics.median(times["ipv6"])
            rows.append({"case": case, "ipv4_s": round(v4, 2), "ipv6_s": round(v6, 2),
                         "ratio": round(v6 / v4, 3), "verdicts": verdicts,
                         "ipv4_runs": [round(x, 2) for x in times["ipv4"]],
                         "ipv6_runs": [round(x, 2) for x in times["ipv6"]]})
            print(f"diagnose {case:<8} IPv4 {v4:6.2f} s ({verdicts['ipv4']})   IPv6 {v6:6.2f} s "
                  f"({verdicts['ipv6']})   ratio {v6 / v4:5.3f} (target <= 1.10)")
    finally:
        lab.down()
    print(json.dumps({"benchmark": "diagnose_ipv6", "rounds": ROUNDS, "rows": rows}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
