"""Which resolver library a process uses, read from /proc while it runs, and what that
library does with what the capture saw (issue 24, item 5).

``read_library(pid)`` looks at the files the process maps (``/proc/PID/maps``): musl's
dynamic linker (``ld-musl-*.so.1``, the version from Alpine's package database where
readable), glibc's ``libc.so.6`` (the version from its banner string), a JVM (``libjvm.so``,
over one of those), or none: a static binary, then Go's build information (the
``\\xff Go buildinf:`` block, Go 1.18+ inline strings) or musl's/glibc's own symbols. The
process's ``GODEBUG`` (``/proc/PID/environ``) says which resolver a Go program uses.
Everything here is best effort: unreadable means unknown, never a guess.
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from enum import StrEnum

MAX_SCAN = 64 << 20  # bytes of an executable searched for its build information or symbols
_GLIBC_BANNER = re.compile(rb"GNU C Library [^\n\0]*?version (\d+\.\d+(?:\.\d+)?)")
_GO_MAGIC = b"\xff Go buildinf:"
_GO_NETDNS = re.compile(r"(?:^|,)netdns=([a-z0-9+]+)")
_APK_MUSL = re.compile(rb"\nP:musl\nV:([0-9][^\n]*)")
# musl's own internal names (src/network/res_msend.c, src/network/dns_parse.c): only in
# a static musl binary that kept its symbol table
_MUSL_SYMBOLS = (b"__res_msend_rc\0", b"__dns_parse\0")
_GLIBC_SYMBOLS = (b"__res_context_send\0", b"__libc_res_nsend\0", b"GLIBC_PRIVATE\0")


class Library(StrEnum):
    """A resolver library family."""

    GLIBC = "glibc"
    MUSL = "musl"
    GO = "go"  # Go's own resolver (net/dnsclient_unix.go) unless netdns=cgo
    JAVA = "java"  # a JVM: InetAddress over the libc below it, with its own cache


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolverLibrary:
    """What a process resolves names with; ``how`` says what it was read from."""

    kind: Library
    version: str | None = None
    detail: str = ""  # e.g. "netdns=go", "static", "over glibc 2.36"
    how: str = ""  # "maps", "buildinfo", "symbols"

    def label(self) -> str:
        """A short text: 'musl 1.2.3 (static)'."""
        text = f"{self.kind}{' ' + self.version if self.version else ''}"
        return f"{text} ({self.detail})" if self.detail else text


def version_tuple(v: str | None) -> tuple[int, ...] | None:
    """'1.2.4-r2' -> (1, 2, 4); None when there is no leading number."""
    m = re.match(r"(\d+(?:\.\d+)*)", v or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def read_library(pid: int, proc: str = "/proc") -> ResolverLibrary | None:
    """The resolver library of process ``pid``, or None when it cannot be told."""
    base = f"{proc}/{pid}"
    maps = _mapped_paths(f"{base}/maps")
    if maps is None:
        return None
    root = f"{base}/root"
    libc = _libc_from_maps(maps, root)
    if any("/libjvm.so" in p for p in maps):
        over = f"over {libc.label()}" if libc else ""
        return ResolverLibrary(kind=Library.JAVA, detail=over, how="maps")
    exe = f"{base}/exe"
    go = _go_buildinfo(exe)
    if go is not None:
        version, settings = go
        netdns = _netdns(_read(f"{base}/environ", 1 << 16).replace("\0", "\n"), settings)
        cgo = "CGO_ENABLED=1" in settings
        detail = ", ".join(x for x in (netdns, "cgo" if cgo else "static" if not libc else "") if x)
        return ResolverLibrary(kind=Library.GO, version=version, detail=detail, how="buildinfo")
    if libc is not None:
        return libc
    static = _static_libc(exe)
    return ResolverLibrary(kind=static, detail="static", how="symbols") if static else None


def _mapped_paths(path: str) -> list[str] | None:
    """The distinct file paths in a maps file, or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(4 << 20)
    except OSError:
        return None
    seen: dict[str, None] = {}
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            seen[parts[5].removesuffix(" (deleted)")] = None
    return list(seen)


def _libc_from_maps(maps: list[str], root: str) -> ResolverLibrary | None:
    """musl's dynamic linker or glibc's libc.so.6 among the mapped files."""
    for p in maps:
        name = p.rsplit("/", 1)[-1]
        if name.startswith("ld-musl-"):
            m = _APK_MUSL.search(_read_bytes(f"{root}/lib/apk/db/installed", 8 << 20))
            return ResolverLibrary(kind=Library.MUSL, version=m.group(1).decode("ascii", "replace") if m else None,
                                   how="maps")
    for p in maps:
        if p.rsplit("/", 1)[-1] in ("libc.so.6", "libc-2.so") or re.search(r"/libc-\d+\.\d+\.so$", p):
            m = _find(f"{root}{p}", _GLIBC_BANNER)
            return ResolverLibrary(kind=Library.GLIBC, version=m.group(1).decode() if m else None, how="maps")
    return None


def _go_buildinfo(exe: str) -> tuple[str | None, str] | None:
    """(Go version, module/build settings text) from a Go binary's build information block
    (Go 1.18+: flags bit 2 = strings inline, each a uvarint length then the bytes, after the
    32-byte header; src/debug/buildinfo/buildinfo.go). None when the file is not Go."""
    data = _head(exe, _GO_MAGIC)
    if data is None:
        return None
    if len(data) < 32 or not data[15] & 2:
        return (None, "")  # Go before 1.18: pointers into the data segment, not read here
    version, p = _uvarint_bytes(data, 32)
    mod, _ = _uvarint_bytes(data, p)
    if len(mod) >= 33 and mod[-17] == 0x0A:  # 16-byte sentinels around the module text
        mod = mod[16:-16]
    return (version.decode("utf-8", "replace") or None, mod.decode("utf-8", "replace"))


def _uvarint_bytes(b: bytes, p: int) -> tuple[bytes, int]:
    n = shift = 0
    while p < len(b) and shift < 35:
        c = b[p]
        p += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            break
    return b[p:p + n], p + n


def _netdns(environ: str, settings: str) -> str:
    """Go's resolver choice: GODEBUG netdns in the environment, else the build's default
    GODEBUG, else the netgo/netcgo build tags; '' when none says (Go then picks at run time)."""
    for src in (re.findall(r"^GODEBUG=(.*)$", environ, re.M), re.findall(r"DefaultGODEBUG=(\S*)", settings)):
        for val in src:
            m = _GO_NETDNS.search(val)
            if m:
                return f"netdns={m.group(1)}"
    tags = re.search(r"-tags=(\S+)", settings)
    if tags and "netgo" in tags.group(1).split(","):
        return "netgo"
    if tags and "netcgo" in tags.group(1).split(","):
        return "netcgo"
    return ""


def _static_libc(exe: str) -> Library | None:
    """A static C binary's libc by its own internal symbol names (when not stripped)."""
    if _head(exe, *_MUSL_SYMBOLS) is not None:
        return Library.MUSL
    if _head(exe, *_GLIBC_SYMBOLS) is not None:
        return Library.GLIBC
    return None


def _head(path: str, *needles: bytes) -> bytes | None:
    """16 KiB from the first of ``needles`` found in ``path`` (first MAX_SCAN bytes)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if not size:
                return None
            with mmap.mmap(fh.fileno(), min(size, MAX_SCAN), access=mmap.ACCESS_READ) as mm:
                for n in needles:
                    i = mm.find(n)
                    if i >= 0:
                        return bytes(mm[i:i + 16384])
    except (OSError, ValueError):
        return None
    return None


def _find(path: str, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
    """PATTERN in the 512 bytes from glibc's banner in ``path`` (read as ``_head`` reads)."""
    head = _head(path, b"GNU C Library")
    return pattern.search(head[:512]) if head is not None else None


def _read(path: str, limit: int) -> str:
    return _read_bytes(path, limit).decode("utf-8", "replace")


def _read_bytes(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return b""
