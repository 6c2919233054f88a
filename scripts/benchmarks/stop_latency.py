"""How fast every command ends after SIGINT and SIGTERM, and by how much it overshoots
--deadline, against a silent DNS server in a lab (root; builds its own lab, prefix "bstop").

Baseline: the promise of issue 10 (about 1 s after a signal; --deadline + 0.5 s).
Usage: scripts/bench stop_latency   (or .venv/bin/python scripts/benchmarks/stop_latency.py)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration import test_hostile_runtime as T  # noqa: E402
from tests.lab import Lab  # noqa: E402


def main() -> int:
    lab = Lab("bstop")
    lab.up()
    stubs = []
    try:
        for port, mode in ((T.SILENT_PORT, "silent"), (T.SERVFAIL_PORT, "servfail")):
            p = subprocess.Popen(["ip", "netns", "exec", lab.ns("upstream"), T.PY, "-m", "tests.lab.stubdns",
                                  "--listen", T.STUB_ADDR, "--port", str(port), "--mode", mode,
                                  "--lifetime", "900"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            stubs.append(p)
            p.stdout.readline()
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "silent.Corefile").write_text(f".:53 {{\n    forward . {T.SILENT}\n}}\n")
            pcap = d / "unanswered.pcap"
            T.write_unanswered_pcap(pcap)
            print(f"{'command':16} {'SIGINT s':>9} {'SIGTERM s':>10} {'deadline 3 s: took':>19} {'overshoot':>10}")
            worst_sig = worst_dl = 0.0
            for case, (ns, args) in T.SIGNAL_CASES.items():
                fmt = {"silent": d / "silent.Corefile", "pcap": pcap, "write": d / "live.pcap"}
                args = tuple(a.format(**fmt) for a in args)
                row = [case]
                for sig in (signal.SIGINT, signal.SIGTERM):
                    took, rc, _out, _err = T.interrupt(lab, ns, (*args, "-o", "json"), sig)
                    worst_sig = max(worst_sig, took)
                    row.append(f"{took:.2f} ({rc})")
                dargs = tuple(a.format(**fmt) for a in T.DEADLINE_CASES[case])
                took, rc, _out, _err = T.timed(lab, "pod", *dargs, "--deadline", "3", "-o", "json")
                worst_dl = max(worst_dl, took - 3.0)
                print(f"{row[0]:16} {row[1]:>9} {row[2]:>10} {took:>17.2f} s {took - 3.0:>+9.2f} s")
            print(f"worst: {worst_sig:.2f} s after a signal (promise ~1 s); "
                  f"{worst_dl:+.2f} s past --deadline (promise +0.5 s)")
            return 0 if worst_sig <= 1.0 and worst_dl <= 0.5 else 1
    finally:
        for p in stubs:
            p.terminate()
            p.wait(timeout=10)
        lab.down()


if __name__ == "__main__":
    sys.exit(main())
