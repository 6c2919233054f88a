"""Image benchmark: the podtriage image for amd64 and arm64 against the old image in the same run.

Reports, per architecture, the uncompressed size (podman image inspect), the pull size (the
layers gzip-compressed as a registry serves them: skopeo copy --dest-compress to a dir), and
the cold start of `podtriage --version` inside the image (a fresh container each time: bash's
`time` around the command inside it, and the wall time of the whole `podman run`), as a ratio
against the old image (Debian slim + python3, 147 MB) built in the same run from the
Containerfile of commit OLD_COMMIT (tag localhost/podtriage:bench-old).

Builds what is missing (scripts/build-image; BENCH_REBUILD=1 rebuilds the current images,
BENCH_NO_CACHE=1 from scratch). Targets (issue 16): <= 60 MB for amd64 and arm64.
Env: PODTRIAGE_IMAGE (default localhost/podtriage:dev; arm64: the same with -arm64),
BENCH_RUNS (default 9), BENCH_OLD_COMMIT (default 8fb6c80).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("PODTRIAGE_IMAGE", "localhost/podtriage:dev")
OLD = "localhost/podtriage:bench-old"
OLD_COMMIT = os.environ.get("BENCH_OLD_COMMIT", "8fb6c80")
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
TARGET_MB = 60.0


def sh(*args: str, timeout: float = 3600, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise SystemExit(f"image bench: {' '.join(args[:4])}... failed:\n{p.stdout}\n{p.stderr[-3000:]}")
    return p


def size_bytes(tag: str) -> int | None:
    p = sh("podman", "image", "inspect", "--format", "{{.Size}}", tag, check=False)
    return int(p.stdout.strip()) if p.returncode == 0 and p.stdout.strip() else None


def build(arch: str, tag: str) -> float | None:
    if size_bytes(tag) is not None and os.environ.get("BENCH_REBUILD") != "1":
        return None
    cmd = [str(ROOT / "scripts" / "build-image"), "-q", "--arch", arch, "--tag", tag]
    if os.environ.get("BENCH_NO_CACHE") == "1":
        cmd.append("--no-cache")
    out = sh(*cmd).stdout
    m = re.search(r"build ([\d.]+) s", out)
    return float(m.group(1)) if m else None


def build_old() -> None:
    """The image as it was: the old Containerfile on its own tree (git archive of OLD_COMMIT),
    on the same local Debian base (its Containerfile takes BASE as a build arg)."""
    if size_bytes(OLD) is not None:
        return
    base = "localhost/podtriage-base:bookworm-slim-amd64"
    digest = sh("podman", "image", "inspect", "--format", "{{.Digest}}", base).stdout.strip()
    with tempfile.TemporaryDirectory() as ctx:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", ctx], input=archive.stdout, check=True)
        # that commit's pyproject names LICENSE in license-files, which its .containerignore
        # left out of the build context: let it in (the only change to the old build)
        for name in (".containerignore", ".dockerignore"):
            f = Path(ctx) / name
            if f.exists():
                f.write_text(f.read_text().replace("!README.md\n", "!README.md\n!LICENSE\n"))
        cf = Path(ctx) / "image" / "Containerfile"
        cf.write_text(cf.read_text().replace("COPY pyproject.toml README.md ./", "COPY pyproject.toml README.md LICENSE ./"))
        args = ["buildah", "bud", "--isolation", "chroot", "--network=host", "--pull-never", "--layers",
                "--build-arg", f"BASE={base.rsplit(':', 1)[0]}@{digest}", "-f", str(cf), "-t", OLD]
        if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
            args += ["-v", "/etc/ssl/certs/ca-certificates.crt:/run/podtriage-build/ca-certificates.crt:ro",
                     "--build-arg", "PIP_CERT=/run/podtriage-build/ca-certificates.crt"]
        sh(*args, ctx)


def pull_bytes(tag: str) -> int:
    """Sum of the layers gzip-compressed, as pushed to (and pulled from) a registry."""
    with tempfile.TemporaryDirectory() as d:
        sh("skopeo", "copy", "-q", "--dest-compress", "--dest-compress-format", "gzip",
           f"containers-storage:{tag}", f"dir:{d}")
        manifest = json.loads(Path(d, "manifest.json").read_text())
        return sum(layer["size"] for layer in manifest["layers"])


def _start_once(tag: str) -> tuple[float, float]:
    t0 = time.monotonic()
    p = sh("podman", "--runtime", "runc", "run", "--rm", "--read-only", "--entrypoint", "bash", tag,
           "-c", "TIMEFORMAT=%R; time podtriage --version >/dev/null", timeout=300)
    return float(p.stderr.strip().splitlines()[-1]), time.monotonic() - t0


def cold_start(tags: list[str]) -> dict[str, tuple[float, float]]:
    """Median over RUNS fresh containers per image, the images interleaved (the machine is
    shared: load moves both alike): (seconds inside, by bash's time; wall seconds of the whole
    podman run). One unmeasured run each first (image files into the page cache)."""
    for tag in tags:
        _start_once(tag)
    runs: dict[str, list[tuple[float, float]]] = {t: [] for t in tags}
    for _ in range(RUNS):
        for tag in tags:
            runs[tag].append(_start_once(tag))
    return {t: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
            for t, v in runs.items()}


def main() -> int:
    if os.geteuid() != 0:
        print("image: needs root (podman/buildah with the host's storage)", file=sys.stderr)
        return 1
    tags = {"amd64": IMAGE, "arm64": f"{IMAGE}-arm64"}
    build_s = {arch: build(arch, tag) for arch, tag in tags.items()}
    build_old()
    result: dict = {"benchmark": "image", "old_image": OLD, "old_commit": OLD_COMMIT, "runs": RUNS}
    old_size, old_pull = size_bytes(OLD), pull_bytes(OLD)
    starts = cold_start([OLD, tags["amd64"]])
    old_in, old_wall = starts[OLD]
    print(f"image    old {OLD} (amd64, {OLD_COMMIT})  size {old_size / 1e6:6.1f} MB  pull {old_pull / 1e6:5.1f} MB"
          f"  --version {old_in * 1000:5.0f} ms inside, {old_wall * 1000:5.0f} ms podman run")
    ok = True
    for arch, tag in tags.items():
        size, pull = size_bytes(tag), pull_bytes(tag)
        assert size is not None
        line = f"image    {arch:5} {tag}  size {size / 1e6:6.1f} MB  pull {pull / 1e6:5.1f} MB"
        entry = {"tag": tag, "size_bytes": size, "pull_bytes": pull, "build_s": build_s[arch],
                 "size_ratio_to_old": round(size / old_size, 3), "pull_ratio_to_old": round(pull / old_pull, 3)}
        if arch == "amd64":  # arm64 runs emulated here: its start time says nothing about a node
            t_in, t_wall = starts[tag]
            line += (f"  --version {t_in * 1000:5.0f} ms inside ({t_in / old_in:.2f}x old),"
                     f" {t_wall * 1000:5.0f} ms podman run ({t_wall / old_wall:.2f}x old)")
            entry.update(start_inside_s=round(t_in, 3), start_wall_s=round(t_wall, 3),
                         start_ratio_to_old=round(t_in / old_in, 3))
        passed = size / 1e6 <= TARGET_MB
        ok &= passed
        print(f"{line}  size x{size / old_size:.2f} old, pull x{pull / old_pull:.2f} old"
              f"  (target <= {TARGET_MB:.0f} MB) {'PASS' if passed else 'FAIL'}")
        result[arch] = entry
    result.update(old_size_bytes=old_size, old_pull_bytes=old_pull, old_start_inside_s=round(old_in, 3),
                  old_start_wall_s=round(old_wall, 3), target_mb=TARGET_MB, **{"pass": ok})
    print(json.dumps(result), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
