"""Hostile-output benchmark (issue 10): `podtriage capture --read BIG.pcap -o FMT | head -1`,
the reader going away after one line. Prints, per format, the wall time against its target
(a speed target once asserted in tests/unit/test_hostile_outputs.py, where a loaded machine
made it fail; the test keeps the behaviour: a quiet end, exit 0 or 141).
Sends nothing: only `capture --read` of a generated pcap runs.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests import hostile as H  # noqa: E402

PACKETS = 20_000
ROUNDS = 3
# Reading 20k packets and ending at once when the pipe closes: within the default 10 s
# budget of the other commands, with the startup allowance of a loaded machine.
TARGET_S = 10 + H.GRACE_S + H.STARTUP_S
FORMATS = ("table", "json", "ndjson", "markdown")


def main() -> int:
    ok = True
    rows = []
    with tempfile.TemporaryDirectory() as d:
        pcap = H.answered_pcap(Path(d) / "big.pcap", PACKETS)
        for fmt in FORMATS:
            walls = []
            code = 0
            for _ in range(ROUNDS):
                code, _lines, _err, wall = H.run_cli_head(["capture", "--read", str(pcap), "-o", fmt])
                walls.append(wall)
            med = statistics.median(walls)
            passed = med <= TARGET_S and code in (0, 141)
            ok &= passed
            rows.append({"format": fmt, "median_s": round(med, 2), "target_s": TARGET_S,
                         "ratio": round(med / TARGET_S, 2), "exit": code, "pass": passed})
            print(f"capture --read {PACKETS} packets -o {fmt:<8} | head -1: median {med:5.2f} s  "
                  f"ratio {med / TARGET_S:4.2f} (target <= {TARGET_S:.1f} s) {'PASS' if passed else 'FAIL'}")
    print(json.dumps({"benchmark": "hostile_outputs", "rounds": ROUNDS, "rows": rows}), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
