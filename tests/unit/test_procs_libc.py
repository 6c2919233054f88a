"""toolkit.sysinfo.procs.libc_of reads /proc/PID/maps (not psutil's smaps-based
memory_maps, ~14 ms for 64 processes): on real processes, a glibc one (this Python), a
dynamic musl one (musl-gcc, ld-musl-x86_64.so.1) and a static one, it says what psutil's
mapped paths say. The musl case is Debian's layout, which the rule missed before (it looked
for ld-musl in the path; Debian's is a symlink to .../x86_64-linux-musl/libc.so)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from toolkit.sysinfo.procs import Libc, libc_of

# "up" once the dynamic loader has mapped the libc (reading maps any earlier races it)
SRC = "#include <unistd.h>\nint main(void) { write(1, \"up\\n\", 3); pause(); return 0; }\n"


def _spawn(tmp: Path, compiler: str, *flags: str) -> subprocess.Popen[bytes]:
    if shutil.which(compiler) is None:
        pytest.fail(f"{compiler} missing (scripts/programs.tsv lists it)")
    (tmp / "p.c").write_text(SRC)
    exe = tmp / f"p-{compiler}{'-'.join(flags)}"
    subprocess.run([compiler, *flags, "-O2", "-o", str(exe), str(tmp / "p.c")], check=True, timeout=60)
    proc = subprocess.Popen([str(exe)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    return proc


def _psutil_says(pid: int) -> set[str]:
    return {m.path for m in psutil.Process(pid).memory_maps(grouped=True)}


@pytest.mark.parametrize(("compiler", "flags", "want"), [
    ("musl-gcc", (), Libc.MUSL), ("gcc", (), Libc.GLIBC), ("gcc", ("-static",), Libc.UNKNOWN)])
def test_libc_of_real_processes(tmp_path, compiler, flags, want):
    proc = _spawn(tmp_path, compiler, *flags)
    try:
        assert libc_of(psutil.Process(proc.pid)) is want
        names = _psutil_says(proc.pid)
        if want is Libc.MUSL:
            # Debian: /lib/ld-musl-x86_64.so.1 -> /usr/lib/x86_64-linux-musl/libc.so, the
            # target is what the kernel shows (Alpine maps ld-musl itself)
            assert any("musl" in n for n in names), names
        elif want is Libc.GLIBC:
            assert any(os.path.basename(n).startswith(("libc.so.6", "libc-2.")) for n in names), names
    finally:
        proc.kill()
        proc.wait()


def test_libc_of_this_python_and_a_gone_process():
    assert libc_of(psutil.Process(os.getpid())) is Libc.GLIBC
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    p = psutil.Process(proc.pid)
    proc.wait()
    assert libc_of(p) is Libc.UNREADABLE  # reaped: /proc/PID is gone
