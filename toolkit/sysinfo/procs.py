"""The application next to us, when the process namespace is shared
(`kubectl debug --target`, or `shareProcessNamespace: true`): its sockets and which libc
resolver it uses. Best effort: without the shared namespace we see only ourselves, and
reading another user's memory maps needs ptrace rights (AccessDenied is normal)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from toolkit.errors import reraise_bug

MAX_PROCESSES = 64


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    name: str
    cmdline: str
    libc: str  # "glibc", "musl", "static/unknown", or "unreadable"


@dataclass(frozen=True)
class SockInfo:
    pid: int | None
    process: str
    local: str
    remote: str
    status: str  # psutil's: SYN_SENT, ESTABLISHED, NONE (UDP)...
    kind: str  # "tcp" | "udp"


def _own_pids() -> set[int]:
    pids = {os.getpid()}
    try:
        import psutil

        for p in psutil.Process().parents():
            pids.add(p.pid)
    except Exception as exc:  # noqa: BLE001 - best effort
        reraise_bug(exc)
    return pids


def libc_of(proc) -> str:
    """glibc or musl, from the libraries mapped into the process (musl maps ld-musl-*.so.1)."""
    import psutil

    try:
        paths = {m.path for m in proc.memory_maps(grouped=True)}
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
        return "unreadable"
    if any("ld-musl" in p or "libc.musl" in p for p in paths):
        return "musl"
    if any(os.path.basename(p).startswith("libc.so.6") or os.path.basename(p).startswith("libc-2.")
           for p in paths):
        return "glibc"
    return "static/unknown"


def other_processes(limit: int = MAX_PROCESSES) -> tuple[ProcInfo, ...]:
    import psutil

    own = _own_pids()
    out = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        if proc.pid in own or proc.pid <= 0:
            continue
        if len(out) >= limit:
            break
        cmd = " ".join(proc.info.get("cmdline") or [])[:200]
        out.append(ProcInfo(proc.pid, proc.info.get("name") or "?", cmd, libc_of(proc)))
    return tuple(out)


def sockets_to(addresses: Iterable[str]) -> tuple[SockInfo, ...]:
    """Sockets of any visible process whose remote end is one of ``addresses``."""
    import psutil

    wanted = set(addresses)
    if not wanted:
        return ()
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return ()
    own = _own_pids()
    names: dict[int, str] = {}
    out = []
    for c in conns:
        if not c.raddr or c.raddr.ip not in wanted or (c.pid in own):
            continue
        if c.pid is not None and c.pid not in names:
            try:
                names[c.pid] = psutil.Process(c.pid).name()
            except (psutil.Error, OSError):
                names[c.pid] = "?"
        out.append(SockInfo(c.pid, names.get(c.pid, "?") if c.pid else "?",
                            f"{c.laddr.ip}:{c.laddr.port}", f"{c.raddr.ip}:{c.raddr.port}",
                            c.status, "tcp" if c.type == 1 else "udp"))
    return tuple(out)
