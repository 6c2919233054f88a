"""The application next to us, when the process namespace is shared
(`kubectl debug --target`, or `shareProcessNamespace: true`): its sockets and which libc
resolver it uses. Best effort: without the shared namespace we see only ourselves, and
reading another user's memory maps needs ptrace rights (AccessDenied is normal)."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from toolkit.errors import best_effort

if TYPE_CHECKING:
    import psutil

MAX_PROCESSES = 64


class Libc(StrEnum):
    """Which C library's resolver a process uses (musl ignores nsswitch.conf, handles
    search and ndots differently, and sends A and AAAA in parallel)."""

    GLIBC = "glibc"
    MUSL = "musl"
    UNKNOWN = "static/unknown"     # no libc mapped: a static binary (Go), or another libc
    UNREADABLE = "unreadable"      # its memory maps cannot be read (no ptrace rights)


class SocketKind(StrEnum):
    """The transport of an observed socket."""

    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True)
class ProcInfo:
    """A process we can see beside us, and its libc."""

    pid: int
    name: str
    cmdline: str
    libc: Libc


@dataclass(frozen=True, kw_only=True)
class SockInfo:
    """A socket of a visible process, to an address we care about."""

    pid: int | None
    process: str
    local: str
    remote: str
    status: str  # psutil's CONN_* value: SYN_SENT, ESTABLISHED, NONE (UDP)...
    kind: SocketKind


def _own_pids() -> set[int]:
    pids = {os.getpid()}
    with best_effort(None, "our parent processes"):
        import psutil

        for p in psutil.Process().parents():
            pids.add(p.pid)
    return pids


def libc_of(proc: psutil.Process, proc_root: str = "/proc") -> Libc:
    """glibc or musl, from the libraries mapped into the process (musl: ld-musl-*.so.1).

    Read from /proc/PID/maps (the pathname column) rather than psutil's memory_maps(), which
    reads /proc/PID/smaps: the kernel walks every mapping's page tables for its sizes
    (fs/proc/task_mmu.c show_smap), ~0.2 ms a process and 14 ms for the 64 we look at,
    beside a diagnose that wants the CPU. Both need the same ptrace read access."""
    try:
        with open(os.path.join(proc_root, str(proc.pid), "maps"), "rb") as fh:
            raw = fh.read()
    except OSError:  # PermissionError (no ptrace rights), the process gone
        return Libc.UNREADABLE
    # a maps line: address perms offset dev inode [pathname]; the pathname may hold spaces
    paths = {parts[5].decode("utf-8", "replace").strip()
             for parts in (line.split(None, 5) for line in raw.splitlines()) if len(parts) == 6}
    if any(_is_musl(p) for p in paths):
        return Libc.MUSL
    if any(os.path.basename(p).startswith("libc.so.6") or os.path.basename(p).startswith("libc-2.")
           for p in paths):
        return Libc.GLIBC
    return Libc.UNKNOWN


def _is_musl(path: str) -> bool:
    """Alpine maps /lib/ld-musl-ARCH.so.1 itself; Debian's musl package makes that name a
    symlink to /usr/lib/ARCH-linux-musl/libc.so, and the kernel's maps show the target."""
    return ("ld-musl" in path or "libc.musl" in path
            or (os.path.basename(path) == "libc.so" and "musl" in os.path.dirname(path)))


def other_processes(limit: int = MAX_PROCESSES) -> tuple[ProcInfo, ...]:
    """The processes we can see that are not us or our parents (at most ``limit``)."""
    import psutil

    own = _own_pids()
    out: list[ProcInfo] = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        if proc.pid in own or proc.pid <= 0:
            continue
        if len(out) >= limit:
            break
        cmd = " ".join(proc.info.get("cmdline") or [])[:200]
        out.append(ProcInfo(proc.pid, proc.info.get("name") or "?", cmd, libc_of(proc)))
    return tuple(out)


_PROC_NET = (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6), ("udp", socket.AF_INET),
             ("udp6", socket.AF_INET6))


def _peer(hexaddr: str, family: int) -> str:
    """rem_address of /proc/net/{tcp,udp}[6]: the address's 32-bit words, each printed by
    the kernel as a host-order integer (%08X, net/ipv4/tcp_ipv4.c get_tcp4_sock)."""
    raw = b"".join(struct.pack("=I", int(hexaddr[i:i + 8], 16)) for i in range(0, len(hexaddr), 8))
    return socket.inet_ntop(family, raw)


def netns_remotes(proc_root: str = "/proc") -> set[str] | None:
    """The peer addresses of every TCP/UDP socket of this network namespace (IPv4-mapped
    IPv6 peers also in their IPv4 form), from /proc/net: what psutil.net_connections reads
    too, without its scan of every process's file descriptors. None: not readable."""
    out: set[str] = set()
    try:
        for name, family in _PROC_NET:
            with open(os.path.join(proc_root, "net", name), encoding="ascii", errors="replace") as fh:
                lines = fh.read().splitlines()[1:]
            for line in lines:
                fields = line.split()
                if len(fields) < 3 or ":" not in fields[2]:
                    continue
                peer = _peer(fields[2].partition(":")[0], family)
                out.add(peer)
                if peer.startswith("::ffff:") and "." in peer:
                    out.add(peer[7:])
    except (OSError, ValueError):
        return None
    return out


def sockets_to(addresses: Iterable[str]) -> tuple[SockInfo, ...]:
    """Sockets of any visible process whose remote end is one of ``addresses``."""
    wanted = set(addresses)
    if not wanted:
        return ()
    remotes = netns_remotes()
    if remotes is not None and not remotes & wanted:
        return ()  # no socket of this netns has such a peer: psutil could find none either
    import psutil  # after the look above: diagnose's processes thread may still be importing it
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return ()
    own = _own_pids()
    names: dict[int, str] = {}
    out = []
    for c in conns:
        raddr, laddr = c.raddr, c.laddr
        if not raddr or raddr.ip not in wanted or (c.pid in own):
            continue
        if c.pid is not None and c.pid not in names:
            try:
                names[c.pid] = psutil.Process(c.pid).name()
            except (psutil.Error, OSError):
                names[c.pid] = "?"
        out.append(SockInfo(pid=c.pid, process=names.get(c.pid, "?") if c.pid else "?",
                            local=f"{laddr.ip}:{laddr.port}" if laddr else "?",
                            remote=f"{raddr.ip}:{raddr.port}", status=c.status,
                            kind=SocketKind.TCP if c.type == 1 else SocketKind.UDP))
    return tuple(out)
