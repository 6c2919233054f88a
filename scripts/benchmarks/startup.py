"""Startup benchmark: `podtriage --help` and `podtriage resolve --help` against a minimal
two-command Typer app's `--help` with the same typer, interleaved in the same run.
Target (issue 2): each within 1.3x of the minimal app."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
TARGET = 1.3

MINIMAL = '''
import typer
app = typer.Typer()
@app.command()
def one(name: str) -> None:
    """First command."""
@app.command()
def two(name: str) -> None:
    """Second command."""
app()
'''


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> int:
    py = sys.executable
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(MINIMAL)
        minimal = fh.name
    cases = {
        "minimal typer --help": [py, minimal, "--help"],
        "podtriage --help": [py, "-m", "toolkit", "--help"],
        "podtriage resolve --help": [py, "-m", "toolkit", "resolve", "--help"],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for k, cmd in cases.items():  # warm the page cache once
        wall(cmd)
    for _ in range(ROUNDS):
        for k, cmd in cases.items():
            times[k].append(wall(cmd))
    os.unlink(minimal)
    base = statistics.median(times["minimal typer --help"])
    ok = True
    rows = []
    for k, ts in times.items():
        med = statistics.median(ts)
        ratio = med / base
        passed = ratio <= TARGET or k.startswith("minimal")
        ok &= passed
        rows.append({"case": k, "median_ms": round(med * 1000, 1), "ratio": round(ratio, 2),
                     "target": None if k.startswith("minimal") else TARGET, "pass": passed})
        print(f"startup  {k:<28} median {med * 1000:7.1f} ms  ratio {ratio:4.2f}"
              f"{'' if k.startswith('minimal') else f'  (target <= {TARGET}) ' + ('PASS' if passed else 'FAIL')}")
    print(json.dumps({"benchmark": "startup", "rounds": ROUNDS, "rows": rows}), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
