"""Hostile-input benchmark (issue 10): wall time and peak RSS of podtriage on each hostile
fixture, beside `podtriage --version` (the cost of starting at all). Prints one JSON line
per fixture; exits 1 when a run exits 4, hangs, or passes its stated bound.
Sends nothing: only `corefile lint`, `resolvconf` and `capture --read` run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests import hostile as H  # noqa: E402

# (name, argv, file content or None, wall bound s, RSS bound MB)
FIXTURES = [
    ("startup (--version)", ["--version"], None, 2, 60),
    ("deep YAML, 30k nested [ (60 KB)", ["corefile", "lint", "{f}"], H.deep_yaml(), 2, 100),
    ("billion laughs (9x9 aliases)", ["corefile", "lint", "{f}"], H.billion_laughs(), 2, 100),
    ("merge-key bomb (20 levels)", ["corefile", "lint", "{f}"], H.merge_key_bomb(), 2, 100),
    ("deep JSON, 100k nested [", ["corefile", "lint", "{f}"], H.deep_json(), 2, 100),
    ("List of 50k ConfigMaps with a Corefile (JSON)", ["corefile", "lint", "{f}"],
     H.configmap_list_json(50_000), 5, 400),
    ("List of 80k ConfigMaps without one (JSON, 3.6 MiB)", ["corefile", "lint", "{f}"],
     H.configmap_list_json(80_000, corefile=None), 8, 300),
    ("Corefile of 100k server blocks (4 MiB, at the cap)", ["corefile", "lint", "{f}"],
     H.huge_corefile(100_000)[: (4 << 20) - 64].rsplit("}", 1)[0] + "}\n", 30, 600),
    ("List over the YAML node budget (20k ConfigMaps)", ["corefile", "lint", "{f}"],
     H.configmap_list_yaml(20_000), 5, 250),
    ("List at the YAML node budget (13k ConfigMaps)", ["corefile", "lint", "{f}"],
     H.configmap_list_yaml(13_000), 10, 250),
    ("/dev/zero as Corefile", ["corefile", "lint", "/dev/zero"], None, 2, 100),
    ("/dev/zero as resolv.conf", ["resolvconf", "--file", "/dev/zero"], None, 5, 400),
    ("FIFO without writer, --deadline 1", ["corefile", "lint", "{fifo}", "--deadline", "1"], None, 2.5, 100),
    ("Corefile of 20k server blocks", ["corefile", "lint", "{f}"], H.huge_corefile(20_000), 10, 400),
]


def main() -> int:
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "fifo")
        os.mkfifo(fifo)
        for name, argv, content, wall_bound, rss_bound in FIXTURES:
            f = os.path.join(d, "input")
            if content is not None:
                Path(f).write_text(content)
            args = [a.replace("{f}", f).replace("{fifo}", fifo) for a in argv]
            o = H.run_cli(args, timeout=120)
            ok = (not o.killed and o.code != 4 and o.wall_s <= wall_bound and o.maxrss_mb <= rss_bound)
            bad += not ok
            print(json.dumps({"fixture": name, "exit": o.code, "wall_s": round(o.wall_s, 2),
                              "peak_rss_mb": round(o.maxrss_mb), "bounds": [wall_bound, rss_bound],
                              "ok": ok, "error": o.stderr.splitlines()[0][:100] if o.stderr else ""}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
