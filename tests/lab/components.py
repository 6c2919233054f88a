"""The real components the lab runs, pinned, built from their own Go modules into a cache.

    python -m tests.lab.components build      # what scripts/setup runs (cached, warm: seconds)
    python -m tests.lab.components versions   # what `scripts/lab versions` prints
    python -m tests.lab.components path coredns-1.14   # the binary

Each component is built once per version into ``$PODTRIAGE_CACHE/components/`` (default
``~/.cache/podtriage``: outside the checkout, so a clean clone reuses it and git never sees
it). A build is reused while its key matches: the version and, for the modules kept in
``scripts/components/``, a hash of their go.mod, go.sum and sources. Stdlib only.

Versions (why each):

* CoreDNS v1.12.1: the CoreDNS that kubeadm 1.34 deploys (cmd/kubeadm/app/constants).
* CoreDNS v1.14.7: the newest 1.14.x release served (plugin order changed in 1.14: rewrite,
  autopath and acl moved before cache).
* node-cache 1.26.4: the NodeLocal DNSCache image of the Kubernetes addon and kubespray.
  k8s.io/dns is not served by the module proxy here (403 for every version), so its DNS
  engine is built: CoreDNS v1.11.3 (node-cache 1.26.4's go.mod) with node-cache's plugin
  list (scripts/components/nodecache/main.go says more).
* etcd v3.6.4, kube-apiserver, kube-controller-manager, kube-proxy v1.34.4: Kubernetes 1.34
  from k8s.io/kubernetes with its staging modules replaced by their published v0.34.4
  (scripts/components/kube/go.mod).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "scripts" / "components"

K8S_VERSION = "v1.34.4"


@dataclass(frozen=True, kw_only=True)
class Component:
    """One pinned program: where it comes from and how it is built."""

    key: str                  # the lab's name for it: coredns-1.12, node-cache, kube-apiserver
    program: str              # the binary's file name
    version: str              # the version users see (image tag / release)
    source: str               # the Go module (and package) it is built from
    why: str
    install: str | None = None   # `go install MODULE@VERSION` (a module without replace directives)
    module: str | None = None    # a module of ours under scripts/components/ ...
    package: str = "."           # ... and the package in it to build
    ldflags: tuple[str, ...] = ()


def _k8s_ldflags() -> tuple[str, ...]:
    # What Kubernetes' own build (hack/lib/version.sh) stamps, so that `kubectl version` and
    # /version report the release instead of v0.0.0-master.
    major, minor = K8S_VERSION.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return tuple("-X %s.%s=%s" % (pkg, k, v) for k, v in (
        ("gitVersion", K8S_VERSION), ("gitMajor", major), ("gitMinor", minor),
        ("gitTreeState", "clean"), ("buildDate", "1970-01-01T00:00:00Z")))


COMPONENTS: tuple[Component, ...] = (
    Component(key="coredns-1.12", program="coredns", version="1.12.1",
              source="github.com/coredns/coredns@v1.12.1", install="github.com/coredns/coredns@v1.12.1",
              why="the CoreDNS kubeadm 1.34 deploys"),
    Component(key="coredns-1.14", program="coredns", version="1.14.7",
              source="github.com/coredns/coredns@v1.14.7", install="github.com/coredns/coredns@v1.14.7",
              why="the newest CoreDNS 1.14.x (plugin order changed in 1.14)"),
    Component(key="node-cache", program="node-cache", version="1.26.4",
              source="CoreDNS v1.11.3 with node-cache 1.26.4's plugins (k8s.io/dns is not served)",
              module="nodecache", why="NodeLocal DNSCache's DNS engine (the addon's and kubespray's node-cache)"),
    Component(key="etcd", program="etcd", version="3.6.4",
              source="go.etcd.io/etcd/server/v3@v3.6.4 (etcdmain)", module="kube", package="./etcd",
              why="the API server's store, as kubeadm 1.34 deploys it"),
    *(Component(key=p, program=p, version=K8S_VERSION.lstrip("v"),
                source="k8s.io/kubernetes@%s cmd/%s" % (K8S_VERSION, p), module="kube",
                package="k8s.io/kubernetes/cmd/%s" % p, ldflags=_k8s_ldflags(), why=why)
      for p, why in (("kube-apiserver", "the real API server under the plugin and fleets"),
                     ("kube-controller-manager", "Job, TTL, EndpointSlice and namespace controllers"),
                     ("kube-proxy", "the DNS Service's ClusterIP DNAT, kube-proxy's own rules"))),
)
BY_KEY = {c.key: c for c in COMPONENTS}


class BuildError(RuntimeError):
    pass


def cache_root() -> Path:
    base = os.environ.get("PODTRIAGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "podtriage")
    return Path(base) / "components"


def go_binary() -> str:
    """The Go that scripts/setup chose (.venv/tools/bin/go), else the one on PATH."""
    chosen = ROOT / ".venv" / "tools" / "bin" / "go"
    if chosen.exists():
        return str(chosen)
    found = shutil.which("go")
    if not found:
        raise BuildError("no Go toolchain: run scripts/setup (it installs one when missing)")
    return found


def build_key(c: Component) -> str:
    """Version plus, for our own modules, a hash of what decides the build."""
    h = hashlib.sha256(("%s|%s|%s|%s" % (c.version, c.source, c.package, c.ldflags)).encode())
    if c.module:
        mod = MODULES / c.module
        for f in sorted(mod.rglob("*")):
            if f.is_file() and f.suffix in (".go", ".mod", ".sum"):
                h.update(str(f.relative_to(mod)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:12]


def binary_path(c: Component | str) -> Path:
    """Where the built binary of this component (or key) lives; it may not be built yet."""
    comp = BY_KEY[c] if isinstance(c, str) else c
    return cache_root() / ("%s-%s-%s" % (comp.key, comp.version, build_key(comp))) / comp.program


def path(key: str) -> Path:
    """The built binary of KEY; raises BuildError when scripts/setup has not built it."""
    p = binary_path(key)
    if not p.exists():
        raise BuildError("%s %s is not built: run scripts/setup (tests/lab/components.py)"
                         % (key, BY_KEY[key].version))
    return p


def build(c: Component, log=print) -> tuple[Path, float | None]:
    """Build C unless its binary is cached; returns (binary, seconds or None when cached)."""
    out = binary_path(c)
    if out.exists():
        return out, None
    # A private directory, renamed into place when done: two setups building at once (two
    # checkouts, one cache) never see each other's half-written binary.
    tmp = out.parent.with_name("%s.tmp-%d" % (out.parent.name, os.getpid()))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS=(os.environ.get("GOFLAGS", "") + " -trimpath").strip())
    ldflags = " ".join(("-s", "-w", *c.ldflags))
    go = go_binary()
    t0 = time.monotonic()
    if c.install:
        cmd = [go, "install", "-ldflags=" + ldflags, c.install]
        env["GOBIN"] = str(tmp)
        cwd = tmp
    else:
        assert c.module
        cmd = [go, "build", "-ldflags=" + ldflags, "-o", str(tmp / c.program), c.package]
        cwd = MODULES / c.module
    log("components: building %s %s (%s)" % (c.key, c.version, c.source))
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError("building %s failed:\n%s" % (c.key, (p.stderr or p.stdout)[-4000:]))
    took = time.monotonic() - t0
    built = tmp / c.program
    if not built.exists():
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError("building %s left no %s" % (c.key, c.program))
    (tmp / "build.json").write_text(json.dumps({
        "key": c.key, "version": c.version, "source": c.source, "seconds": round(took, 1),
        "go": subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()}))
    try:
        tmp.rename(out.parent)
    except OSError:              # another build finished first: keep its binary
        shutil.rmtree(tmp, ignore_errors=True)
    # Older builds of the same component (another version or key) are left for a rollback;
    # they are small next to Go's own caches.
    return out, took


def build_all(keys: list[str] | None = None, log=print) -> dict[str, tuple[Path, float | None]]:
    return {c.key: build(c, log) for c in COMPONENTS if not keys or c.key in keys}


def versions() -> list[dict[str, str]]:
    """Each component with its version, source and whether (and where) it is built."""
    rows = []
    for c in COMPONENTS:
        b = binary_path(c)
        rows.append({"component": c.key, "version": c.version, "source": c.source, "why": c.why,
                     "built": str(b) if b.exists() else "no (run scripts/setup)"})
    return rows


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "versions"
    if cmd == "build":
        t0 = time.monotonic()
        try:
            done = build_all(argv[1:] or None, log=lambda m: print(m, file=sys.stderr))
        except BuildError as e:
            print("components: %s" % e, file=sys.stderr)
            return 1
        built = {k: t for k, (_p, t) in done.items() if t is not None}
        if built:
            print("components: built %s in %.0f s" % (
                ", ".join("%s (%.0f s)" % kv for kv in built.items()), time.monotonic() - t0), file=sys.stderr)
        return 0
    if cmd == "versions":
        rows = versions()
        w = max(len(r["component"]) for r in rows)
        for r in rows:
            print("%-*s  %-8s  %s" % (w, r["component"], r["version"], r["source"]))
        return 0
    if cmd == "path" and len(argv) == 2:
        try:
            print(path(argv[1]))
        except (BuildError, KeyError) as e:
            print("components: %s" % e, file=sys.stderr)
            return 1
        return 0
    print("usage: python -m tests.lab.components build [KEY...] | versions | path KEY", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
