"""The real image: built with scripts/build-image (buildah, from image/Containerfile), its
contents checked, then run with podman/runc inside the lab pod's network namespace the way
`kubectl debug --target --profile=netadmin` runs it: non-root numeric user, NET_RAW and
NET_ADMIN from the runtime, read-only root filesystem. The arm64 image runs under qemu-user
(binfmt_misc); the build is repeated to prove it reproducible; scripts/publish-image pushes
both architectures to a registry on loopback and they are pulled back.

Runs as root in CI. Missing tools are a failure, not a skip: scripts/build-image installs
debootstrap, buildah, podman, runc and (for arm64) qemu-user-static itself. Images are built
once per session (fixtures) and reused: a warm run (bases and layer cache present) only
re-checks the cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from toolkit import DEFAULT_IMAGE, __version__

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("PODTRIAGE_IMAGE", "localhost/podtriage:dev")
SIZE_BUDGET = 60_000_000           # bytes, uncompressed (issue 16)
SEED_DIR = ROOT.parent / "shared" / "seed"
USER = "65532"
SEED_NAME = "api.corp.example"
REFERENCE = "192.168.60.53"        # the lab's authoritative upstream for corp.example
CAP_NET_ADMIN, CAP_NET_RAW = 12, 13
NET_CAPS = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)


@dataclass(frozen=True)
class Built:
    tag: str
    size_bytes: int
    build_s: float


def _build(*args: str) -> Built:
    p = subprocess.run([str(ROOT / "scripts" / "build-image"), "-q", *args],
                       capture_output=True, text=True, timeout=3600, cwd=ROOT)
    assert p.returncode == 0, f"scripts/build-image {args} failed:\n{p.stdout}\n{p.stderr[-4000:]}"
    m = re.search(r"image (\S+) size [\d.]+ MB \((\d+) bytes\) build ([\d.]+) s", p.stdout)
    assert m, f"scripts/build-image did not print the size and build time:\n{p.stdout}"
    return Built(m.group(1), int(m.group(2)), float(m.group(3)))


def _podman(*args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    p = subprocess.run(["podman", "--runtime", "runc", *args], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed rc={p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def _run(image: Built, *args: str, entrypoint: str | None = None, user: str = USER,
         extra: tuple[str, ...] = (), timeout: float = 120) -> subprocess.CompletedProcess:
    opts = ["run", "--rm", "--user", user, *extra]
    if entrypoint:
        opts += ["--entrypoint", entrypoint]
    return _podman(*opts, image.tag, *args, timeout=timeout)


@pytest.fixture(scope="session")
def image() -> Built:
    if os.geteuid() != 0:
        pytest.fail("the image tests need root (buildah and podman with the host's storage)",
                    pytrace=False)
    built = _build("--arch", "amd64", "--tag", IMAGE)
    for tool in ("podman", "buildah", "runc"):
        assert shutil.which(tool), f"{tool} is missing after scripts/build-image"
    return built


def _inspect(image: Built) -> dict:
    p = _podman("image", "inspect", image.tag, check=True)
    return json.loads(p.stdout)[0]


# ------------------------------------------------------------------ contents


def test_size_within_budget(image):
    size = int(_podman("image", "inspect", "--format", "{{.Size}}", image.tag, check=True).stdout)
    assert size == image.size_bytes
    assert size <= SIZE_BUDGET, f"image is {size / 1e6:.1f} MB, budget {SIZE_BUDGET / 1e6:.0f} MB"


def test_config_user_entrypoint_labels(image):
    cfg = _inspect(image)["Config"]
    assert cfg["User"] == f"{USER}:{USER}"
    assert cfg["Entrypoint"] == ["podtriage"]
    assert cfg["Cmd"] == ["--help"]
    labels = cfg.get("Labels") or {}
    assert labels.get("org.opencontainers.image.title") == "podtriage"
    assert labels.get("org.opencontainers.image.version") == __version__
    for key in ("description", "licenses", "revision", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert "PYTHONDONTWRITEBYTECODE=1" in cfg["Env"]


def test_runs_as_numeric_non_root_user(image):
    # no --user: the image's own USER applies (what runAsNonRoot checks)
    p = _podman("run", "--rm", "--entrypoint", "id", image.tag, check=True)
    assert p.stdout.split()[0] == f"uid={USER}(podtriage)"
    p = _podman("run", "--rm", "--entrypoint", "id", image.tag, "-u", check=True)
    assert p.stdout.strip() == USER


def test_version_and_help(image):
    p = _podman("run", "--rm", image.tag, "--version", check=True)
    assert p.stdout.strip() == f"podtriage {__version__}"
    p = _podman("run", "--rm", image.tag)  # CMD ["--help"]
    assert p.returncode == 0 and "diagnose" in p.stdout and "resolve" in p.stdout


def test_human_output_without_pygments(image):
    """rich's tables and colours need no pygments (dropped from the image); a usage error is
    typer's plain message, exit 2."""
    p = _run(image, "resolvconf", extra=("--read-only", "-t", "-e", "COLUMNS=100"))
    assert p.returncode in (0, 1), p.stderr
    assert "resolver settings" in p.stdout and "\u2503" in p.stdout and "\x1b[" in p.stdout, p.stdout
    p = _run(image, "--bogus", extra=("--read-only",))
    assert p.returncode == 2 and "No such option" in p.stdout + p.stderr and "Traceback" not in p.stderr


CONTENT_CHECK = r"""
# files on PATH (busybox's sh runs its own applets by name, so `command -v` would not do)
for t in gcc cc c++ g++ clang ld as make pip pip3 setcap apt-get dpkg perl; do
  for d in $(echo "$PATH" | tr : ' '); do [ -e "$d/$t" ] && echo "TOOL $d/$t"; done
done
ls /opt/podtriage/bin/pip* >/dev/null 2>&1 && echo "TOOL venv-pip"
exit 0
"""


def test_no_compiler_pip_or_package_manager(image):
    p = _podman("run", "--rm", "--user", "0", "--entrypoint", "sh", image.tag, "-c",
                CONTENT_CHECK, check=True)
    assert p.stdout.strip() == "", f"unwanted content in the image:\n{p.stdout}"


# What is never needed at run time, anywhere in the image.
UNWANTED = [
    (r"/(tests?|idle_test)/", "test suite"),
    (r"\.(h|hpp|a|o|c|pyi|pxd|pyx)$", "headers, static libraries, sources of extensions"),
    (r"^/usr/share/(doc|man|info|locale|i18n|zoneinfo|lintian|bash-completion)/", "docs, locales"),
    (r"^/var/(lib|cache)/(apt|dpkg|debconf)/", "package manager state"),
    (r"/(pip|setuptools|wheel|pkg_resources|_distutils_hack|ensurepip|pygments|markdown_it|mdurl)/",
     "installers, unused packages"),
    (r"^/(root|tmp|var/tmp|run)/.", "left-over files"),
    (r"^/usr/lib/python3\.11/(lib2to3|tkinter|idlelib|distutils|ensurepip|venv|turtledemo)/",
     "unused standard library"),
    (r"/scapy/(contrib|layers/(?!__init__)|modules|tools)", "scapy beyond what podtriage loads"),
]
# The kinds of file the image is made of; the largest files must each be one of these.
NEEDED = [
    r"^/usr/bin/(python3\.11|bash|busybox)$",
    r"^/usr/sbin/ldconfig$",
    r"^/usr/lib/(x86_64|aarch64)-linux-gnu/lib[\w+-]+\.so[.\d]*$",
    r"^/usr/lib(64)?/ld-linux",
    r"^/usr/lib/python3\.11/lib-dynload/[\w.-]+\.so$",
    r"^/usr/lib/python3\.11/.*\.pyc$",
    r"^/opt/podtriage/lib/python3\.11/site-packages/[^/]+/.*\.(pyc|so)$",
    r"^/opt/podtriage/lib/python3\.11/site-packages/toolkit/.*\.py$",
    r"^/etc/ld\.so\.cache$",
    # mypyc's shared library of the capture's compiled hot path (scripts/build-mypyc; amd64)
    r"^/opt/podtriage/lib/python3\.11/site-packages/toolkit_capture_hot__mypyc\.cpython-311-x86_64-linux-gnu\.so$",
    # importlib.metadata and pip read it; podtriage's carries the README as its long
    # description (about 0.1 MB), as every wheel built from pyproject's readme does
    r"^/opt/podtriage/lib/python3\.11/site-packages/podtriage-[\d.]+\.dist-info/METADATA$",
]


def _image_files(tag: str) -> list[tuple[int, str]]:
    mnt = _podman("image", "mount", tag, check=True).stdout.strip()
    try:
        files = []
        for dirpath, _dirs, names in os.walk(mnt):
            for n in names:
                full = os.path.join(dirpath, n)
                if not os.path.islink(full):
                    files.append((os.lstat(full).st_size, full[len(mnt):]))
        return sorted(files, reverse=True)
    finally:
        _podman("image", "unmount", tag)


def test_largest_paths_are_all_needed(image):
    """List what the image is made of (largest files, and per directory) and fail on anything
    not needed at run time: tests, headers, docs, locales, pip, caches of dropped sources."""
    files = _image_files(image.tag)
    total = sum(size for size, _ in files)
    per_dir: dict[str, int] = {}
    for size, path in files:
        depth = 7 if path.startswith("/opt/podtriage/lib/") else 5 if path.startswith("/usr/lib/python") else 4
        key = "/".join(path.split("/")[:depth])
        per_dir[key] = per_dir.get(key, 0) + size
    print(f"\n{image.tag}: {len(files)} files, {total / 1e6:.1f} MB")
    for key, size in sorted(per_dir.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {size / 1e6:6.2f} MB  {key}")
    for size, path in files[:15]:
        print(f"  {size / 1e6:6.2f} MB  {path}")
    bad = [f"{path} ({why})" for _size, path in files for pat, why in UNWANTED if re.search(pat, path)]
    paths = {p for _s, p in files}
    for _size, path in files:  # __pycache__/x.cpython-311.pyc is only read beside x.py
        m = re.match(r"(.*)/__pycache__/(\w+)\.cpython-\d+\.pyc$", path)
        if m and f"{m.group(1)}/{m.group(2)}.py" not in paths:
            bad.append(f"{path} (bytecode cache of a dropped source)")
    assert not bad, "not needed at run time:\n" + "\n".join(bad[:40])
    odd = [f"{size / 1e6:.2f} MB {path}" for size, path in files[:60]
           if not any(re.search(pat, path) for pat in NEEDED)]
    assert not odd, "large files of no known use:\n" + "\n".join(odd)
    # bytecode only: the sources left are podtriage's own (its tracebacks) and the runbooks
    sources = [p for _s, p in files if p.endswith(".py") and "/site-packages/toolkit/" not in p]
    assert not sources, sources[:20]


def test_sbom_lists_python_and_debian_packages(image):
    doc = json.loads((ROOT / "dist" / f"podtriage-{__version__}-amd64.cdx.json").read_text())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5"
    purls = {c["purl"].split("@")[0] for c in doc["components"]}
    for want in ("pkg:pypi/podtriage", "pkg:pypi/scapy", "pkg:pypi/dnspython", "pkg:pypi/typer",
                 "pkg:deb/debian/python3.11-minimal", "pkg:deb/debian/libc6", "pkg:deb/debian/libpcap0.8",
                 "pkg:deb/debian/bash", "pkg:deb/debian/busybox-static"):
        assert want in purls, (want, sorted(purls))
    assert "pkg:pypi/pygments" not in purls and "pkg:pypi/pip" not in purls
    inside = _run(image, "/usr/share/podtriage/sbom.cdx.json", entrypoint="cat", user="0")
    assert json.loads(inside.stdout) == doc


SCAPY_CHECK = r"""
import importlib, socket, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
from toolkit.capture.live import attach_bpf
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    print(attach_bpf(s, "udp port 53 or tcp port 53"))
"""


def test_every_scapy_module_podtriage_uses_imports(image):
    """scapy is cut down to what podtriage loads: import every scapy module podtriage's sources
    name, inside the image, and compile+attach a BPF filter through libpcap as capture does."""
    used = sorted({m.group(1) for py in (ROOT / "toolkit").rglob("*.py")
                   for m in re.finditer(r"^\s*(?:from|import)\s+(scapy(?:\.\w+)*)", py.read_text(), re.M)})
    assert used, "no scapy import found in toolkit/"
    p = _run(image, "-c", SCAPY_CHECK, *used, entrypoint="/opt/podtriage/bin/python",
             extra=("--read-only",))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "(True, None)", p.stdout


def test_runbooks_run_in_image(image):
    """The runbooks need bash, awk, sed, date, mktemp and python3: all present."""
    for name in ("service-unreachable", "dns-slow", "check-coredns-config"):
        p = _run(image, f"/opt/podtriage/runbooks/{name}.sh", "--help", entrypoint="bash",
                 extra=("--read-only",))
        assert p.returncode == 0 and "Usage:" in p.stdout, (name, p.stdout, p.stderr)


def test_readme_names_the_default_image():
    text = (ROOT / "README.md").read_text()
    assert DEFAULT_IMAGE in text


def test_capture_hot_path_is_compiled_on_amd64(image):
    """The amd64 image runs the capture's hot path as mypyc extensions (scripts/build-mypyc,
    README "Reading a capture file fast"); a pcap read gives what the host's pure Python does."""
    code = ("import toolkit.capture.decode as d, toolkit.capture.analysis as a, "
            "toolkit.capture.dnswire as w; print(d.__file__, a.__file__, w.__file__)")
    p = _run(image, "-c", code, entrypoint="/opt/podtriage/bin/python")
    assert p.returncode == 0, p.stderr
    assert all(f.endswith("-x86_64-linux-gnu.so") for f in p.stdout.split()), p.stdout
    # a hostile public pcap (nDPI's bad DNS traffic): the decoder's odd paths, compiled
    pcap = ROOT / "tests" / "data" / "pcaps" / "ndpi-bad-dns-traffic.pcap"
    inside = _run(image, "capture", "-R", f"/in/{pcap.name}", "-o", "json", extra=("-v", f"{pcap.parent}:/in:ro"))
    host = subprocess.run([str(ROOT / ".venv" / "bin" / "podtriage"), "capture", "-R", str(pcap), "-o", "json"],
                          capture_output=True, text=True, timeout=120)
    assert inside.returncode == host.returncode, (inside.stderr, host.stderr)
    varies = {"generated_at", "duration_ms", "elapsed_s", "source", "tool_version"}
    got, want = json.loads(inside.stdout), json.loads(host.stdout)
    assert {k: v for k, v in got.items() if k not in varies} == {k: v for k, v in want.items() if k not in varies}


def test_bytecode_precompiled(image):
    """Read-only root: every module the CLI imports must already be compiled, and nothing may
    be written at run time (checked with podman diff after a real run)."""
    name = f"pt-img-{uuid.uuid4().hex[:8]}"
    try:
        p = _podman("run", "--name", name, "--user", USER, image.tag, "resolvconf", "--help")
        assert p.returncode == 0, p.stderr
        diff = _podman("diff", name, check=True).stdout.split()
        # podman's own per-container files are the only allowed changes
        allowed = {"/etc", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/run",
                   "/run/.containerenv", "/etc/passwd", "/etc/group"}
        written = [x for x in diff if x not in ("A", "C", "D") and x not in allowed]
        assert not written, f"podtriage wrote into the image filesystem: {written}"
    finally:
        _podman("rm", "-f", name)


def test_interpreter_file_capabilities(image):
    """cap_net_admin,cap_net_raw in the permitted set, the effective bit clear (see
    README.md "Capabilities": an effective bit makes exec fail where the pod lacks a cap)."""
    code = ("import os,struct,sys;p=os.path.realpath('/usr/bin/python3');"
            "v=os.getxattr(p,'security.capability');print(struct.unpack('<5I',v[:20]))")
    p = _run(image, "-c", code, entrypoint="/usr/bin/python3", user="0")
    assert p.returncode == 0, p.stderr
    magic, perm_lo, inh_lo, perm_hi, inh_hi = eval(p.stdout)  # noqa: S307 - a tuple of ints we printed
    assert magic & 0xFF000000 in (0x02000000, 0x03000000)
    assert magic & 1 == 0, "effective bit set: exec fails in pods without NET_ADMIN"
    assert perm_lo == NET_CAPS and perm_hi == 0 and inh_lo == inh_hi == 0


STATUS = ("import sys;s=dict(l.split(':',1) for l in open('/proc/self/status') if l.startswith('Cap'));"
          "print(int(s['CapEff'],16), int(s['CapPrm'],16), int(s['CapAmb'],16))")


@pytest.mark.parametrize("opts,expected", [
    (("--cap-add", "NET_RAW,NET_ADMIN"), NET_CAPS),
    (("--cap-add", "NET_RAW,NET_ADMIN", "--security-opt", "no-new-privileges"), NET_CAPS),
    (("--cap-add", "NET_RAW"), 1 << CAP_NET_RAW),
    (("--cap-drop", "ALL"), 0),
], ids=["netadmin", "netadmin-no-new-privs", "net-raw-only", "drop-all"])
def test_podman_non_root_gets_granted_caps_only(image, opts, expected):
    p = _run(image, "-c", STATUS, entrypoint="/opt/podtriage/bin/python", extra=("--read-only", *opts))
    assert p.returncode == 0, p.stderr
    eff, prm, _amb = map(int, p.stdout.split())
    assert eff & NET_CAPS == expected and prm & NET_CAPS == expected


# Kubernetes (containerd/CRI-O + runc) sets bounding = effective = permitted = the container's
# capabilities for a non-root user and NO ambient set (podman adds ambient ones, so podman
# alone would hide a broken image). Run the image's rootfs with runc and exactly that spec.
K8S_DEFAULT = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


@pytest.fixture(scope="module")
def runc_rootfs(image, tmp_path_factory):
    mnt = _podman("image", "mount", image.tag, check=True).stdout.strip()
    root = tmp_path_factory.mktemp("rootfs") / "rootfs"
    try:
        subprocess.run(["cp", "-a", "--preserve=all", f"{mnt}/.", str(root)], check=True, timeout=300)
    finally:
        _podman("image", "unmount", image.tag)
    spec_dir = tmp_path_factory.mktemp("spec")
    subprocess.run(["runc", "spec"], cwd=spec_dir, check=True)
    return root, json.loads((spec_dir / "config.json").read_text())


@pytest.mark.parametrize("caps,nnp,expected", [
    (K8S_DEFAULT + ["CAP_NET_ADMIN"], False, NET_CAPS),
    (K8S_DEFAULT + ["CAP_NET_ADMIN"], True, NET_CAPS),
    (K8S_DEFAULT, False, 1 << CAP_NET_RAW),
    ([], True, 0),
], ids=["netadmin", "netadmin-allowPrivilegeEscalation-false", "default-caps", "restricted"])
def test_kubernetes_style_runc_caps(runc_rootfs, tmp_path, caps, nnp, expected):
    root, spec = runc_rootfs
    spec = json.loads(json.dumps(spec))
    spec["root"] = {"path": str(root), "readonly": True}
    proc = spec["process"]
    proc.update(terminal=False, user={"uid": 65532, "gid": 65532}, noNewPrivileges=nnp,
                capabilities={"bounding": caps, "effective": caps, "permitted": caps},
                env=["PATH=/opt/podtriage/bin:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"])
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    cid = f"pt-img-{uuid.uuid4().hex[:8]}"
    results = []
    for args in (["/opt/podtriage/bin/python", "-c", STATUS], ["podtriage", "--version"]):
        proc["args"] = args
        (bundle / "config.json").write_text(json.dumps(spec))
        try:
            p = subprocess.run(["runc", "run", "--bundle", str(bundle), cid], capture_output=True,
                               text=True, timeout=60)
        finally:
            subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
        assert p.returncode == 0, f"{args}: rc={p.returncode} {p.stdout} {p.stderr}"
        results.append(p.stdout)
    eff, prm, amb = map(int, results[0].split())
    assert amb == 0
    assert eff & NET_CAPS == expected and prm & NET_CAPS == expected
    assert results[1].strip() == f"podtriage {__version__}"


# ------------------------------------------------------------------ end to end in the lab


def _command(image: Built) -> str:
    forced = os.environ.get("PT_IMAGE_COMMAND")
    if forced:
        return forced
    return "diagnose" if _run(image, "diagnose", "--help").returncode == 0 else "resolve"


def _args(command: str) -> list[str]:
    return [command, SEED_NAME, "--reference", REFERENCE, "-o", "json", "--deadline", "20"]


def _in_pod(image: Built, lab, command: str, *opts: str) -> tuple[int, dict, str]:
    ns = lab.ns("pod")
    mounts = []
    for f in ("resolv.conf", "hosts"):  # what `ip netns exec` bind-mounts and podman does not
        if Path(f"/etc/netns/{ns}/{f}").exists():
            mounts += ["-v", f"/etc/netns/{ns}/{f}:/etc/{f}:ro"]
    p = _run(image, *_args(command), extra=("--network", f"ns:/run/netns/{ns}", *mounts, *opts),
             timeout=90)
    assert p.returncode in (0, 1), f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.returncode, json.loads(p.stdout), p.stderr


@pytest.fixture(scope="module")
def host_run(image, lab):
    command = _command(image)
    exe = ROOT / ".venv" / "bin" / "podtriage"
    p = lab.exec("pod", str(exe), *_args(command), timeout=90)
    assert p.returncode in (0, 1), f"host run rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return command, p.returncode, json.loads(p.stdout)


def test_seed_verdict_in_image_matches_host(image, lab, host_run):
    command, host_rc, host = host_run
    assert host["verdict"] == "bad-answer", host["findings"]
    rc, doc, err = _in_pod(image, lab, command, "--read-only", "--cap-add", "NET_RAW,NET_ADMIN")
    assert (rc, doc["verdict"]) == (host_rc, host["verdict"]), err
    assert {f["code"] for f in doc["findings"]} == {f["code"] for f in host["findings"]}
    assert doc["tool_version"] == __version__
    print(f"\n{command} in the image: verdict {doc['verdict']}, findings "
          f"{[f['code'] for f in doc['findings']]}")


def test_seed_verdict_without_net_raw(image, lab, host_run):
    command, host_rc, host = host_run
    rc, doc, err = _in_pod(image, lab, command, "--read-only", "--cap-drop", "NET_RAW")
    assert doc["verdict"] == host["verdict"], err
    if command == "diagnose":  # it wanted raw sockets: it must say which capability was missing
        assert "NET_RAW" in json.dumps(doc["notes"]) + json.dumps(doc["findings"]) + err


def test_seed_verdict_read_only_without_tmpfs(image, lab, host_run):
    """readOnlyRootFilesystem without any writable emptyDir: not even /tmp is writable."""
    command, host_rc, host = host_run
    rc, doc, err = _in_pod(image, lab, command, "--read-only", "--read-only-tmpfs=false",
                           "--security-opt", "no-new-privileges", "--cap-add", "NET_RAW,NET_ADMIN")
    assert (rc, doc["verdict"]) == (host_rc, host["verdict"]), err


def test_live_capture_in_image_with_kernel_filter(image, lab):
    """Live capture as a non-root user with NET_RAW granted: packets seen, the BPF filter
    compiled by libpcap (shipped in the image) and attached, a valid summary."""
    ns = lab.ns("pod")
    traffic = subprocess.Popen(
        ["ip", "netns", "exec", ns, "sh", "-c",
         "sleep 1; for i in 1 2 3 4 5; do dig +time=1 +tries=1 @169.254.25.10 www.example.org >/dev/null; done"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p = _run(image, "capture", "--duration", "4", "-o", "json",
                 extra=("--network", f"ns:/run/netns/{ns}", "--read-only", "--cap-add", "NET_RAW,NET_ADMIN"),
                 timeout=90)
    finally:
        traffic.wait(timeout=30)
    assert p.returncode in (0, 1), f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    doc = json.loads(p.stdout)
    assert doc["queries"] >= 5 and doc["responses"] >= 5, doc
    assert not any("no kernel filter" in n for n in doc["notes"]), doc["notes"]


def test_runbook_service_unreachable_in_lab(image, lab):
    """A runbook end to end in the image (bash, awk, date, mktemp, python3 for the summary):
    the seed incident gives its verdict and the next step."""
    ns = lab.ns("pod")
    mounts = []
    for f in ("resolv.conf", "hosts"):
        if Path(f"/etc/netns/{ns}/{f}").exists():
            mounts += ["-v", f"/etc/netns/{ns}/{f}:/etc/{f}:ro"]
    p = _run(image, "/opt/podtriage/runbooks/service-unreachable.sh", SEED_NAME, "80",
             "--reference", REFERENCE, entrypoint="bash",
             extra=("--network", f"ns:/run/netns/{ns}", *mounts, "--read-only",
                    "--cap-add", "NET_RAW,NET_ADMIN"), timeout=120)
    assert p.returncode == 1, f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "verdict bad-answer" in p.stdout and "\nnext: " in p.stdout, p.stdout


def test_runbook_dns_slow_in_lab(image, lab):
    """dns-slow.sh: capture then the conntrack race test against the pod's nameserver, both
    JSON documents saved and summarised (busybox date/mktemp/awk, python3, bash arrays)."""
    ns = lab.ns("pod")
    mounts = []
    for f in ("resolv.conf", "hosts"):
        if Path(f"/etc/netns/{ns}/{f}").exists():
            mounts += ["-v", f"/etc/netns/{ns}/{f}:/etc/{f}:ro"]
    p = _run(image, "/opt/podtriage/runbooks/dns-slow.sh", "-d", "2", "-n", "10", entrypoint="bash",
             extra=("--network", f"ns:/run/netns/{ns}", *mounts, "--read-only",
                    "--cap-add", "NET_RAW,NET_ADMIN"), timeout=180)
    assert p.returncode in (0, 1), f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    assert re.search(r"^capture: verdict \S+ \(exit [01]\), JSON in /tmp/podtriage-capture-", p.stdout, re.M), p.stdout
    assert re.search(r"^race-test: verdict \S+ \(exit [01]\), JSON in /tmp/podtriage-race-", p.stdout, re.M), p.stdout


# ------------------------------------------------------------------ arm64 under emulation


@pytest.fixture(scope="session")
def image_arm64(image) -> Built:
    """The arm64 image, built here under qemu-user (binfmt_misc) from the same Containerfile."""
    return _build("--arch", "arm64", "--tag", f"{IMAGE}-arm64")


def test_arm64_image_is_arm64_within_budget(image_arm64):
    info = json.loads(_podman("image", "inspect", image_arm64.tag, check=True).stdout)[0]
    assert info["Architecture"] == "arm64" and info["Os"] == "linux"
    assert image_arm64.size_bytes <= SIZE_BUDGET, f"arm64 image is {image_arm64.size_bytes / 1e6:.1f} MB"
    mnt = _podman("image", "mount", image_arm64.tag, check=True).stdout.strip()
    try:
        py = Path(mnt) / "usr/bin/python3.11"
        head = py.read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 0xB7, "not aarch64"
        caps = os.getxattr(py, "security.capability")  # the permitted-only caps travel too
        magic, perm = int.from_bytes(caps[:4], "little"), int.from_bytes(caps[4:8], "little")
        assert magic & 1 == 0 and perm == NET_CAPS
    finally:
        _podman("image", "unmount", image_arm64.tag)


def _dns_pcap(path: Path) -> None:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.utils import wrpcap
    q = IP(src="10.244.1.5", dst="169.254.25.10") / UDP(sport=40000, dport=53) / DNS(
        id=7, rd=1, qd=DNSQR(qname=SEED_NAME))
    r = IP(src="169.254.25.10", dst="10.244.1.5") / UDP(sport=53, dport=40000) / DNS(
        id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=SEED_NAME), an=DNSRR(rrname=SEED_NAME, rdata="192.168.50.77"))
    q.time, r.time = 1000.0, 1000.002
    wrpcap(str(path), [q, r])


def test_arm64_runs_commands_under_emulation(image_arm64, tmp_path):
    p = _run(image_arm64, "--version", timeout=180)
    assert p.returncode == 0 and p.stdout.strip() == f"podtriage {__version__}", p.stderr
    _dns_pcap(tmp_path / "dns.pcap")
    tmp_path.chmod(0o755)  # the image's user 65532 reads it
    (tmp_path / "dns.pcap").chmod(0o644)
    p = _run(image_arm64, "capture", "--read", "/data/dns.pcap", "-o", "json",
             extra=("--read-only", "-v", f"{tmp_path}:/data:ro"), timeout=180)
    assert p.returncode in (0, 1), f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    doc = json.loads(p.stdout)
    assert doc["queries"] == 1 and doc["responses"] == 1, doc
    p = _run(image_arm64, "corefile", "lint", "/seed/coredns-configmap.yaml",
             "/seed/nodelocaldns-configmap.yaml", "-o", "json",
             extra=("--read-only", "-v", f"{SEED_DIR}:/seed:ro"), timeout=180)
    assert p.returncode == 1, f"rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    codes = {f["code"] for f in json.loads(p.stdout)["findings"]}
    assert "stub-forward" in codes, codes


def test_arm64_resolve_in_lab_matches_host(image_arm64, lab):
    exe = ROOT / ".venv" / "bin" / "podtriage"
    host = lab.exec("pod", str(exe), *_args("resolve"), timeout=90)
    assert host.returncode in (0, 1), host.stderr
    rc, doc, err = _in_pod(image_arm64, lab, "resolve", "--read-only")
    host_doc = json.loads(host.stdout)
    assert (rc, doc["verdict"]) == (host.returncode, host_doc["verdict"]), err
    assert {f["code"] for f in doc["findings"]} == {f["code"] for f in host_doc["findings"]}


# ------------------------------------------------------------------ reproducible


def _layers(tag: str) -> tuple[str, list[str]]:
    info = json.loads(_podman("image", "inspect", tag, check=True).stdout)[0]
    return info["Id"], info["RootFS"]["Layers"]


def test_same_input_same_layers(image):
    """Two builds from scratch (no layer cache) of the same commit: the same layer digests and
    the same image (SOURCE_DATE_EPOCH for every mtime and the creation time, hash-based .pyc
    compiled in one process, a fixed wheel time, the base pinned by digest)."""
    tags = [f"localhost/podtriage:repro-{i}" for i in (1, 2)]
    try:
        for tag in tags:
            _build("--arch", "amd64", "--tag", tag, "--no-cache")
        (id1, layers1), (id2, layers2) = (_layers(t) for t in tags)
        assert layers1 == layers2
        assert id1 == id2
        assert _layers(image.tag)[1] == layers1, "the cached build differs from a clean one"
    finally:
        for tag in tags:
            _podman("rmi", tag)


# ------------------------------------------------------------------ publish


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on loopback, with a config of its own; stopped afterwards."""
    if not shutil.which("docker-registry"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-registry"],
                       check=True, capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    port = _free_port()
    cfg = tmp_path / "registry.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                   f"    rootdirectory: {tmp_path}/data\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # bounded: 10 s
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not listen")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_publish_pushes_both_architectures_and_pulls_back(image, image_arm64, registry):
    ref = f"{registry}/podtriage/podtriage:test"
    p = subprocess.run([str(ROOT / "scripts" / "publish-image"), "--tls-verify=false", ref],
                       capture_output=True, text=True, timeout=3600, cwd=ROOT)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr[-3000:]}"
    m = re.search(r"published (\S+) (sha256:[0-9a-f]{64})", p.stdout)
    assert m and m.group(1) == ref, p.stdout
    # the local list was only the vehicle of the push: gone, and local storage still lists
    assert _podman("manifest", "exists", f"localhost/podtriage:{__version__}-list").returncode != 0
    _podman("images", check=True)
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    index = json.loads(raw)
    assert sorted(d["platform"]["architecture"] for d in index["manifests"]) == ["amd64", "arm64"]
    want = {"amd64": _layers(image.tag)[1], "arm64": _layers(image_arm64.tag)[1]}
    for arch in ("amd64", "arm64"):
        pulled = f"{registry}/podtriage/podtriage:pulled-{arch}"
        try:
            _podman("pull", "-q", "--tls-verify=false", "--arch", arch, ref, check=True, timeout=300)
            _podman("tag", ref, pulled, check=True)
            info = json.loads(_podman("image", "inspect", pulled, check=True).stdout)[0]
            assert info["Architecture"] == arch
            assert info["RootFS"]["Layers"] == want[arch], arch
        finally:
            _podman("rmi", pulled)  # untags: the image itself is the one built here
            _podman("rmi", ref)
