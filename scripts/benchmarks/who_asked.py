"""Who asked, for short-lived sockets: the share of lookups `podtriage capture` attributes to
the process that made them, at 10 and 100 lookups/s from a known glibc program (one socket
per search-list candidate, open one round trip), and what it costs.

Runs in the test lab (tests/lab, prefix ptwho; needs root): builds tests/integration/clients/
gai.c with gcc, captures in the pod namespace while the program resolves api.corp.example
(4 candidates) at each rate, with the capture's default priority change (nice -10, needs
CAP_SYS_NICE) and without it (PODTRIAGE_WHO_NICE=0, what a pod without CAP_SYS_NICE gets).
Prints per run: lookups, attributed share, wrong attributions (must be 0), the who-asked CPU
(time spent looking sockets up), the capture process's total CPU, and the looks that came
after their query's answer, with how many of those were dropped (the port may have changed
hands by then: whoasked.py).
Env: BENCH_SECONDS (default 5), BENCH_RATES (default 10,100).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.lab import Lab  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "10,100").split(",")]
NAME = "api.corp.example"


def run(lab: Lab, prog: str, rate: int, nice: bool) -> dict:
    n = int(rate * SECONDS)
    env = dict(os.environ, PODTRIAGE_PROGRESS="1", PODTRIAGE_WHO_NICE="1" if nice else "0")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cap = subprocess.Popen(["ip", "netns", "exec", lab.ns("pod"), str(ROOT / ".venv/bin/podtriage"), "capture",
                            "--duration", str(SECONDS + 3), "-o", "json"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        line = cap.stderr.readline()
        if not line or "listening on" in line:
            break
    lab.exec("pod", prog, NAME, str(n), str(max(1, 1000 // rate)), timeout=SECONDS * 4 + 30)
    out, _err = cap.communicate(timeout=SECONDS + 60)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    doc = json.loads(out)
    lks = doc["lookups"]  # the last 200
    named = [lk for lk in lks if lk.get("process")]
    wrong = [lk for lk in named if lk["process"]["name"] != "gai-glibc"]
    w = doc["who_asked"]
    return {"rate": rate, "nice": w.get("priority"), "lookups": doc["lookups_total"],
            "attributed": w["lookups_attributed"],
            "share": w["lookups_attributed"] / max(1, doc["lookups_total"]), "wrong_in_last_200": len(wrong),
            "who_cpu_s": w["cpu_s"], "capture_cpu_s": round((r1.ru_utime + r1.ru_stime)
                                                              - (r0.ru_utime + r0.ru_stime), 2),
            "look_delay_ms_p50": w.get("look_delay_ms_p50"), "look_delay_ms_p90": w.get("look_delay_ms_p90"),
            "sockets": w["client_sockets"], "sockets_closed_first": w["sockets_closed_first"],
            "looks_after_answer": w.get("looks_after_answer", 0),
            "looks_after_answer_dropped": w.get("looks_after_answer_dropped", 0)}


def main() -> int:
    if os.geteuid() != 0:
        print("who_asked: needs root (the lab's network namespaces)", file=sys.stderr)
        return 1
    lab = Lab("ptwho")
    rc = 0
    with tempfile.TemporaryDirectory() as d:
        prog = str(Path(d) / "gai-glibc")
        subprocess.run(["gcc", "-O2", "-o", prog, str(ROOT / "tests/integration/clients/gai.c")], check=True)
        try:
            lab.up()
            for rate in RATES:
                for nice in (True, False):
                    r = run(lab, prog, rate, nice)
                    print(f"who_asked: {r['rate']:>4}/s {r['nice']:<28} {r['attributed']:>4} of {r['lookups']:>4} "
                          f"lookups attributed ({r['share']:.0%}), wrong {r['wrong_in_last_200']}, "
                          f"who-asked CPU {r['who_cpu_s']:.3f} s, capture CPU {r['capture_cpu_s']:.2f} s, "
                          f"look delay p50/p90 {r['look_delay_ms_p50']}/{r['look_delay_ms_p90']} ms, "
                          f"{r['sockets_closed_first']} of {r['sockets']} sockets closed first, "
                          f"{r['looks_after_answer']} looks after the answer "
                          f"({r['looks_after_answer_dropped']} dropped: a newcomer not ruled out)")
                    if r["wrong_in_last_200"]:
                        rc = 1
        finally:
            lab.down()
    return rc


if __name__ == "__main__":
    sys.exit(main())
