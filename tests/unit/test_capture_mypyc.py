"""The optional mypyc build of the capture's hot path (scripts/build-mypyc, issue 27 item 2):
compiled and pure Python must give the same report, to the byte, on every public trace and on
the benchmark's synthetic search-list walks; and an in-tree build must never shadow newer
sources.

The extensions are built here from this tree's hot sources into a cache directory keyed by
their hash (about 30 s the first time, on 2 cores; reused while those sources stay the same)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build-mypyc"
PCAPS = sorted((ROOT / "tests" / "data" / "pcaps").glob("*.pcap"))
# what differs between two runs of one input: the wall clock
VOLATILE = frozenset(("generated_at", "duration_ms", "elapsed_s"))


def _hot_modules() -> list[str]:
    for line in BUILD.read_text().splitlines():
        if line.startswith("HOT="):
            return line.split("=", 1)[1].strip('"').split()
    raise AssertionError("scripts/build-mypyc: no HOT= line")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """A fresh copy of toolkit/ with the hot modules' extensions dropped in. The extensions are
    cached by the hash of the hot sources and the build script (not of all toolkit/: a change
    elsewhere, interpreted in both copies, does not cost another 30 s build)."""
    hot = _hot_modules()
    h = hashlib.sha256(BUILD.read_bytes() + sys.version.encode())
    for m in hot:
        h.update(m.encode() + b"\0" + (ROOT / "toolkit" / "capture" / f"{m}.py").read_bytes())
    cache = Path(os.environ.get("PODTRIAGE_CACHE", Path.home() / ".cache" / "podtriage")) / "mypyc"
    built = cache / h.hexdigest()[:16]
    if not (built / "ok").exists():
        shutil.rmtree(built, ignore_errors=True)
        shutil.copytree(ROOT / "toolkit", built / "toolkit", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        p = subprocess.run([str(BUILD), str(built)], capture_output=True, text=True, timeout=900, check=False)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        (built / "ok").write_text("")
        for old in cache.iterdir():  # one build kept: the cache does not grow with each change
            if old != built:
                shutil.rmtree(old, ignore_errors=True)
    tree = _pure(tmp_path_factory)
    for so in [*built.glob("*.so"), *(built / "toolkit" / "capture").glob("*.so")]:
        shutil.copy2(so, tree / so.relative_to(built))
    return tree


def _pure(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("pure")
    shutil.copytree(ROOT / "toolkit", tree / "toolkit", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return tree


@pytest.fixture(scope="module")
def pure(tmp_path_factory) -> Path:
    """A copy of toolkit/ without any extension: pure Python whatever the tree holds."""
    return _pure(tmp_path_factory)


def _run(tree: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PODTRIAGE_DEBUG")}
    # `python -m` puts the working directory first on sys.path: this tree's toolkit, not the
    # editable install's
    p = subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=tree, env=env, capture_output=True,
                       text=True, timeout=300, check=False)
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    return p.returncode, p.stdout


def _strip(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def test_the_compiled_modules_are_the_ones_imported(compiled, pure):
    code = ("import importlib, sys; print(' '.join(importlib.import_module('toolkit.capture.' + m).__file__ "
            "for m in sys.argv[1:]))")
    hot = _hot_modules()
    for tree, suffix in ((compiled, ".so"), (pure, ".py")):
        p = subprocess.run([sys.executable, "-c", code, *hot], cwd=tree, capture_output=True, text=True,
                           timeout=60, check=True)
        files = p.stdout.split()
        assert len(files) == len(hot) and all(f.endswith(suffix) and f.startswith(str(tree)) for f in files), files


@pytest.mark.parametrize("pcap", PCAPS, ids=[p.name for p in PCAPS])
def test_compiled_and_pure_give_the_same_report(compiled, pure, pcap):
    for fmt in ("json", "ndjson"):
        rc_c, out_c = _run(compiled, "capture", "-R", str(pcap), "-o", fmt)
        rc_p, out_p = _run(pure, "capture", "-R", str(pcap), "-o", fmt)
        assert rc_c == rc_p
        docs_c = [_strip(json.loads(line)) for line in out_c.splitlines() if line.strip()] if fmt == "ndjson" \
            else [_strip(json.loads(out_c))]
        docs_p = [_strip(json.loads(line)) for line in out_p.splitlines() if line.strip()] if fmt == "ndjson" \
            else [_strip(json.loads(out_p))]
        assert docs_c == docs_p


def test_compiled_and_pure_agree_on_the_benchmark_walks(compiled, pure, tmp_path):
    """The offline benchmark's traces (scripts/benchmarks/capture_offline.py), small: search-list
    walks one at a time, and 1000 clients walking at once (the lookup grouping's worst case)."""
    sys.path.insert(0, str(ROOT / "scripts" / "benchmarks"))
    try:
        import capture_offline as bench
    finally:
        sys.path.remove(str(ROOT / "scripts" / "benchmarks"))
    for name, make in (("walks", bench.make_pcap), ("concurrent", bench.make_concurrent_pcap)):
        pcap = tmp_path / f"{name}.pcap"
        make(str(pcap), 20_000)
        rc_c, out_c = _run(compiled, "capture", "-R", str(pcap), "-o", "json")
        rc_p, out_p = _run(pure, "capture", "-R", str(pcap), "-o", "json")
        assert (rc_c, _strip(json.loads(out_c))) == (rc_p, _strip(json.loads(out_p)))
        assert json.loads(out_c)["pairs"] > 5_000


def test_an_in_tree_build_is_not_older_than_its_sources():
    """scripts/build-mypyc builds into the tree for .venv; an extension shadows its .py, so
    one older than its source would run stale code: rebuild (or --clean)."""
    built = [*(ROOT / "toolkit" / "capture").glob("*.cpython-*.so"), *ROOT.glob("toolkit_capture_hot__mypyc.*.so")]
    if not built:
        return  # the tree runs pure Python: nothing can be stale
    oldest = min(so.stat().st_mtime for so in built)
    # the shared library holds every hot module's code: any newer source makes all stale
    stale = [m for m in _hot_modules() if (ROOT / "toolkit" / "capture" / f"{m}.py").stat().st_mtime > oldest]
    assert not stale, f"edited after the mypyc build: {stale}: run scripts/build-mypyc (or --clean)"
