"""Gather the image's root filesystem: only what podtriage runs (build stage of image/Containerfile).

Usage (root, in the build stage, after the venv /opt/podtriage is installed):
    python3 image/mkroot.py /rootfs

What goes in, and why (README.md "The image"):
- /usr/bin/python3.11 with the file capabilities cap_net_admin,cap_net_raw+p (README.md
  "Capabilities"), and the shared libraries it, the standard library's extension modules,
  the venv's extension modules, libpcap (dlopened by scapy for the BPF filter), bash and
  ldconfig load, as ldd lists them (ldd runs the target's own loader, under qemu-user for a
  foreign architecture).
- the standard library as bytecode only (legacy `x.pyc` beside where `x.py` was: importable
  without the source), minus what podtriage and its dependencies never import (DROP_STDLIB).
- the venv: third-party packages as bytecode only; podtriage's own package with its sources
  (its tracebacks show its lines); scapy cut down to the modules podtriage's imports load.
- bash (the runbooks are bash), busybox (sh, awk, sed, date, mktemp, env... for the runbooks
  and for a human in the container), ldconfig and /etc/ld.so.cache (ctypes.util.find_library
  runs `/sbin/ldconfig -p` to find libpcap), the few /etc files glibc and scapy read.

Every .pyc is compiled in one process, in sorted order, with unchecked-hash invalidation: no
timestamps inside, and marshal's output does not depend on which worker compiled what (same
input, same bytes: the build is reproducible).
"""

from __future__ import annotations

import compileall
import os
import py_compile
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

VENV = Path("/opt/podtriage")
STDLIB = Path(sysconfig.get_paths()["stdlib"])            # /usr/lib/python3.11
MULTIARCH = sysconfig.get_config_var("MULTIARCH")          # x86_64-linux-gnu, aarch64-linux-gnu
PY = Path(os.path.realpath(sys.executable))                # /usr/bin/python3.11
UNCHECKED = py_compile.PycInvalidationMode.UNCHECKED_HASH

# Standard library parts nothing in the image imports (checked by the image tests, which run
# every command in the image). Kept on purpose although they look optional: sqlite3, ssl,
# unittest, asyncio, multiprocessing (pyroute2 imported them; it left the image with issue 27 and
# these have not been proven unneeded yet), email (importlib.metadata), xml and http (urllib).
DROP_STDLIB = {
    "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "lib2to3", "ensurepip",
    "pydoc_data", "distutils", "venv", "curses", "dbm", "xmlrpc", "wsgiref", "__phello__",
    "sitecustomize.py", "site-packages", "dist-packages", "pydoc.py", "doctest.py",
    "mailbox.py", "imaplib.py", "nntplib.py", "smtplib.py", "poplib.py", "ftplib.py",
    "telnetlib.py", "tabnanny.py", "cProfile.py", "profile.py", "pstats.py", "trace.py",
    "pdb.py", "bdb.py", "webbrowser.py", "cgi.py", "cgitb.py", "aifc.py", "sunau.py", "wave.py",
    "chunk.py", "sndhdr.py", "imghdr.py", "mailcap.py", "smtpd.py", "asynchat.py", "asyncore.py",
    "msilib", "crypt.py", "nis.py", "pipes.py", "xdrlib.py", "uu.py", "pty.py", "tty.py",
}
# extension modules in lib-dynload nothing imports (and the libraries they would pull in)
DROP_DYNLOAD = re.compile(
    r"^(_curses|_curses_panel|_dbm|_gdbm|readline|_tkinter|_test\w*|xxlimited\w*|_xxtestfuzz|"
    r"_ctypes_test|_xxsubinterpreters|audioop|ossaudiodev|nis|_crypt|spwd)\.")


def log(msg: str) -> None:
    print(f"mkroot: {msg}", file=sys.stderr)


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def under(dest: Path, path: str | Path) -> Path:
    """`path` inside dest, on the merged-/usr layout: /lib/x -> /usr/lib/x (never through the
    dest's own /lib symlink, which would be resolved against the build stage's root)."""
    p = str(path)
    for top in ("/bin/", "/sbin/", "/lib/", "/lib64/"):
        if p.startswith(top):
            p = "/usr" + p
    return dest / p.lstrip("/")


def copy_file(dest: Path, src: str | Path, *, at: str | Path | None = None) -> Path:
    target = under(dest, at or src)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(src), target)
    return target


# ---------------------------------------------------------------- venv


def scapy_modules_used() -> list[str]:
    """The scapy modules podtriage imports, read from its sources (every `from scapy.x import`
    or `import scapy.x`), so a new import elsewhere in podtriage is kept without editing this."""
    site = next(VENV.glob("lib/python3*/site-packages"))
    found = set()
    for py in (site / "toolkit").rglob("*.py"):
        for m in re.finditer(r"^\s*(?:from|import)\s+(scapy(?:\.\w+)*)", py.read_text(), re.M):
            found.add(m.group(1))
    return sorted(found)


EXERCISE = r"""
import importlib, json, socket, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
# the live capture's real path: compile a filter with libpcap and attach it (any socket takes
# a classic BPF program); scapy imports more modules inside compile_filter
from toolkit.capture.live import attach_bpf
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    ok, why = attach_bpf(s, "udp port 53 or tcp port 53")
assert ok, why
print(json.dumps(sorted(m for m in sys.modules if m == "scapy" or m.startswith("scapy."))))
"""


def trim_scapy(site: Path) -> None:
    import json
    used = scapy_modules_used()
    out = subprocess.run([str(VENV / "bin" / "python"), "-c", EXERCISE, *used], check=True,
                         capture_output=True, text=True).stdout
    keep = set(json.loads(out))
    root = site / "scapy"
    before = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    for path in sorted(root.rglob("*"), reverse=True):  # children before their parents
        if not path.exists():
            continue
        rel = path.relative_to(site)
        if path.is_dir():
            pkg = ".".join(rel.parts)
            if pkg not in keep and not any(k.startswith(pkg + ".") for k in keep):
                shutil.rmtree(path)
            continue
        if path.suffix != ".py":
            continue
        mod = ".".join(rel.with_suffix("").parts)
        if mod.endswith(".__init__"):
            mod = mod[: -len(".__init__")]
        if mod not in keep:
            path.unlink()
    after = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    log(f"scapy: kept {len(keep)} modules for {used}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")


def compile_sourceless(tree: Path) -> None:
    """Legacy .pyc beside each .py (importable without the source), then the sources go."""
    if not compileall.compile_dir(str(tree), quiet=1, legacy=True, workers=1,
                                  invalidation_mode=UNCHECKED):
        raise SystemExit(f"mkroot: compileall failed under {tree}")
    for py in tree.rglob("*.py"):
        if py.with_suffix(".pyc").exists():
            py.unlink()


def prepare_venv() -> Path:
    site = next(VENV.glob("lib/python3*/site-packages"))
    trim_scapy(site)
    for d in sorted(site.iterdir()):
        if d.name == "toolkit" or not (d.is_dir() or d.suffix == ".py"):
            continue
        if d.is_dir():
            compile_sourceless(d)
        else:
            py_compile.compile(str(d), cfile=str(d.with_suffix(".pyc")), invalidation_mode=UNCHECKED)
            d.unlink()
    # podtriage keeps its sources (tracebacks show its own lines) beside unchecked-hash .pyc
    if not compileall.compile_dir(str(site / "toolkit"), quiet=1, workers=1, invalidation_mode=UNCHECKED):
        raise SystemExit("mkroot: compileall failed for toolkit")
    return site


# ---------------------------------------------------------------- stdlib


def copy_stdlib(dest: Path) -> None:
    target = under(dest, STDLIB)
    target.mkdir(parents=True)
    for entry in sorted(STDLIB.iterdir()):
        if entry.name in DROP_STDLIB or entry.name.startswith("config-") or entry.name == "__pycache__":
            continue
        if entry.name == "lib-dynload":
            (target / entry.name).mkdir()
            for so in sorted(entry.iterdir()):
                if not DROP_DYNLOAD.match(so.name):
                    shutil.copy2(so, target / entry.name / so.name)
            continue
        if entry.is_dir():
            compileall.compile_dir(str(entry), quiet=1, legacy=True, workers=1, invalidation_mode=UNCHECKED)
            for f in sorted(entry.rglob("*")):
                rel = f.relative_to(STDLIB)
                if "__pycache__" in rel.parts or f.suffix == ".py" or f.is_dir():
                    continue
                if any(part in DROP_STDLIB for part in rel.parts):
                    continue
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target / rel)
        elif entry.suffix == ".py":
            py_compile.compile(str(entry), cfile=str(target / (entry.stem + ".pyc")),
                               dfile=str(entry), invalidation_mode=UNCHECKED, doraise=True)
        # other top-level files (LICENSE.txt, README) are not needed


# ---------------------------------------------------------------- programs and libraries


def merged_usr(dest: Path) -> None:
    for d in ("usr/bin", "usr/sbin", "usr/lib", "etc", "opt", "proc", "sys", "dev", "run", "var/tmp"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    for top in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{top}"):
            link = os.readlink(f"/{top}")
            (dest / f"usr/{top}").mkdir(exist_ok=True)
            os.symlink(link.lstrip("/") if link.startswith("/usr/") else link, dest / top)
    tmp = dest / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    (dest / "var/tmp").chmod(0o1777)


# busybox applets left out: a package manager has nothing to manage in this image
NO_APPLETS = {"dpkg", "dpkg-deb", "rpm", "rpm2cpio"}


def install_programs(dest: Path) -> None:
    copy_file(dest, PY)
    os.symlink(PY.name, under(dest, "/usr/bin/python3"))
    copy_file(dest, "/usr/bin/bash")
    copy_file(dest, "/sbin/ldconfig")
    busybox = copy_file(dest, "/bin/busybox")
    applets = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    for rel in sorted(applets):
        if not rel.startswith(("bin/", "sbin/", "usr/bin/", "usr/sbin/")):
            continue
        if os.path.basename(rel) in NO_APPLETS:
            continue
        link = under(dest, "/" + rel)
        if not os.path.lexists(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/usr/bin/busybox", link)


def libpcap() -> list[str]:
    """libpcap is dlopened by scapy (ctypes), so ldd of nothing lists it: take it by name."""
    out = subprocess.run(["dpkg", "-L", "libpcap0.8"], check=True, capture_output=True, text=True).stdout
    # the real file only: ldconfig -r makes its soname link (libpcap.so.0.8), which
    # ctypes.util.find_library("pcap") finds in /etc/ld.so.cache
    return [p for p in out.split()
            if re.search(r"/libpcap\.so\.[\d.]+$", p) and not os.path.islink(p)]


def ldd_closure(dest: Path) -> None:
    elves = [p for p in sorted(dest.rglob("*")) if p.is_file() and not p.is_symlink() and is_elf(p)]
    extra = libpcap()
    # glibc dlopens libgcc_s for pthread_exit/pthread_cancel unwinding (a thread ending at
    # interpreter shutdown): without it the process aborts instead of exiting
    extra += [f"/lib/{MULTIARCH}/libgcc_s.so.1"]
    for lib in extra:
        copy_file(dest, lib)
    wanted: dict[str, str] = {}
    for path in [str(p) for p in elves] + extra:
        p = subprocess.run(["ldd", path], capture_output=True, text=True)
        if p.returncode != 0:  # static (busybox) or not a dynamic object
            continue
        for line in p.stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
            if m:
                lib = m.group(m.lastindex)
                wanted[lib] = lib
            elif "not found" in line:
                raise SystemExit(f"mkroot: {path}: {line.strip()}")
    for lib in sorted(wanted):
        if not under(dest, lib).exists():
            copy_file(dest, lib)
    # libpcap's soname link (libpcap.so.0.8 -> libpcap.so.1.10.x) is a symlink in Debian:
    # copy_file took the content under each listed name, ldconfig makes the cache.
    log(f"{len(elves)} ELF files, {len(wanted)} shared libraries")


ETC_COPY = ("nsswitch.conf", "protocols", "services", "ethertypes", "rpc", "host.conf",
            "ld.so.conf", f"ld.so.conf.d/{MULTIARCH}.conf", "ld.so.conf.d/libc.conf")


def write_etc(dest: Path) -> None:
    etc = dest / "etc"
    for name in ETC_COPY:
        if os.path.exists(f"/etc/{name}"):
            (etc / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f"/etc/{name}", etc / name)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        "podtriage:x:65532:65532:podtriage:/tmp:/usr/sbin/nologin\n")
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\npodtriage:x:65532:\n")
    # the runtime bind-mounts these (kubelet, podman): the mount points exist in the image
    for name in ("hosts", "resolv.conf", "hostname"):
        (etc / name).write_text("")
    # os-release: what scanners (trivy, grype) read to know the distribution
    copy_file(dest, "/usr/lib/os-release")
    os.symlink("../usr/lib/os-release", etc / "os-release")
    subprocess.run(["ldconfig", "-r", str(dest)], check=True)
    # ldconfig leaves its auxiliary cache behind: run-time state, not needed
    shutil.rmtree(dest / "var/cache/ldconfig", ignore_errors=True)


def set_caps(dest: Path) -> None:
    py = under(dest, PY)
    subprocess.run(["setcap", "cap_net_admin,cap_net_raw+p", str(py)], check=True)
    log(subprocess.run(["getcap", str(py)], check=True, capture_output=True, text=True).stdout.strip())


def main() -> int:
    dest = Path(sys.argv[1])
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    dest.chmod(0o755)
    merged_usr(dest)
    prepare_venv()
    copy_stdlib(dest)
    shutil.copytree(VENV, dest / VENV.relative_to("/"), symlinks=True)
    install_programs(dest)
    ldd_closure(dest)
    write_etc(dest)
    set_caps(dest)
    total = sum(f.lstat().st_size for f in dest.rglob("*") if f.is_file() and not f.is_symlink())
    log(f"{dest}: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
