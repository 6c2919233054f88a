"""Image benchmark: size of the podtriage image (podman image inspect) and its build time
(scripts/build-image). Does not rebuild when the image exists unless BENCH_REBUILD=1 (then
the build reuses the base and buildah's layer cache, as a developer's rebuild does; add
BENCH_NO_CACHE=1 for a full build). Targets (issue 7): <= 150 MB now, 60 MB planned;
baseline: netshoot ~256 MB (not pullable here, so quoted, not measured)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("PODTRIAGE_IMAGE", "localhost/podtriage:dev")
TARGET_MB, PLAN_MB, NETSHOOT_MB = 150.0, 60.0, 256.0


def size_bytes() -> int | None:
    p = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", IMAGE],
                       capture_output=True, text=True)
    return int(p.stdout.strip()) if p.returncode == 0 and p.stdout.strip() else None


def main() -> int:
    if os.geteuid() != 0:
        print("image: needs root (podman/buildah with the host's storage)", file=sys.stderr)
        return 1
    build_s = None
    have = subprocess.run(["which", "podman"], capture_output=True).returncode == 0 and size_bytes()
    if not have or os.environ.get("BENCH_REBUILD") == "1":
        cmd = [str(ROOT / "scripts" / "build-image"), "-q", "--tag", IMAGE]
        if os.environ.get("BENCH_NO_CACHE") == "1":
            cmd.append("--no-cache")
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            print(p.stdout + p.stderr[-3000:], file=sys.stderr)
            return 1
        m = re.search(r"build ([\d.]+) s", p.stdout)
        build_s = float(m.group(1)) if m else None
    size = size_bytes()
    if size is None:
        print(f"image: {IMAGE} not found", file=sys.stderr)
        return 1
    mb = size / 1e6
    ok = mb <= TARGET_MB
    print(f"image    {IMAGE}  size {mb:6.1f} MB  (target <= {TARGET_MB:.0f} MB) {'PASS' if ok else 'FAIL'}"
          f"  ratio to netshoot ~{mb / NETSHOOT_MB:.2f}  plan {PLAN_MB:.0f} MB")
    print(f"image    build time {'%.1f s' % build_s if build_s is not None else 'not measured (image existed; BENCH_REBUILD=1 rebuilds)'}")
    print(json.dumps({"benchmark": "image", "image": IMAGE, "size_bytes": size, "size_mb": round(mb, 1),
                      "target_mb": TARGET_MB, "plan_mb": PLAN_MB, "build_s": build_s, "pass": ok}),
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
