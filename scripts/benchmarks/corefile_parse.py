"""Corefile parse and lint speed (the speed half of the former
tests/unit/test_corefile_fuzz.py::test_huge_file_parses_fast): a Corefile of 50k lines (6251
server blocks, each forwarding with force_tcp) parsed, then linted, in-process, beside a
native baseline in the same run (``str.split`` of the same text: the cost of touching every
word). Prints one JSON line per step with the median time, its ratio to the baseline and to
its bound; exits 1 when a step passes its bound (parse 3 s, lint 10 s: what the test asserted).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from toolkit.corefile.document import Corefile  # noqa: E402
from toolkit.corefile.lint import lint  # noqa: E402
from toolkit.corefile.parser import parse_corefile  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BOUNDS_S = {"parse": 3.0, "lint": 10.0}

BLOCK = ("zone{i}.example:53 {{\n    errors\n    cache 30\n    loop\n"
         "    forward . 10.0.{j}.1 10.0.{j}.2 {{\n        force_tcp\n    }}\n}}\n")


def huge_corefile(lines: int = 50_000) -> str:
    """The Corefile of the former test: at least LINES lines of forwarding blocks."""
    return "".join(BLOCK.format(i=i, j=i % 250) for i in range(lines // 8 + 1))


def median_s(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    text = huge_corefile()
    cf: Corefile = parse_corefile(text)
    base = median_s(text.split)
    steps = {"parse": median_s(lambda: parse_corefile(text)), "lint": median_s(lambda: lint([cf]))}
    bad = 0
    print(json.dumps({"step": "baseline (str.split)", "lines": text.count("\n"),
                      "blocks": len(cf.blocks), "median_s": round(base, 4)}))
    for step, t in steps.items():
        ok = t <= BOUNDS_S[step]
        bad += not ok
        print(json.dumps({"step": step, "median_s": round(t, 3), "ratio_to_baseline": round(t / base, 1),
                          "bound_s": BOUNDS_S[step], "ratio_to_bound": round(t / BOUNDS_S[step], 2),
                          "ok": ok}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
