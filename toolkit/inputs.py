"""The one place that reads a file the user names: bounded in size and in time.

Every user-named input (resolv.conf, hosts, nsswitch.conf, Corefiles and ConfigMaps, pcaps)
is read through here, because any of them may be hostile or just odd:

- regular files and ``-`` (stdin) are the normal case;
- FIFOs and ``/dev/fd/N`` pipes are legitimate: the kubectl plugin passes Corefiles as bash
  process substitutions (``<(kubectl get cm ...)``), which are pipes. A FIFO nobody writes to
  blocks ``open()`` forever (fifo(7)), so FIFOs are opened with O_NONBLOCK and every read
  waits in ``poll()`` for at most the command's deadline;
- character devices (``/dev/zero``, ``/dev/urandom``, a tty) never end: they are read under
  the same size cap and deadline, and exceeding the cap is an error, never an 11 GB read;
- block devices, sockets and directories are refused.

A read that runs out of time or past the cap raises ``InputFileError`` (exit 3, "could not
observe"), with one line saying which file and why.

The deadline comes from the caller, or else from ``deadline_scope`` (the CLI sets it around
each command, so library code deep below needs no extra parameter), or else
``FALLBACK_WAIT_S``.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import os
import select
import stat
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

from toolkit import signals
from toolkit.errors import InputFileError, StoppedBySignal, open_error

# Configuration files (resolv.conf, hosts, nsswitch.conf): glibc reads them line by line, a
# real one is a few KB (resolvconf reports anything near the cap as a finding).
# Corefiles/ConfigMaps: Kubernetes caps a ConfigMap's data at 1 MiB (etcd's request limit is
# 1.5 MiB), so NodeLocal's and CoreDNS's together with their metadata fit in 4 MiB. The cap
# also bounds the parse: a 4 MiB Corefile of 100k server blocks takes ~14 s and ~450 MB to
# parse and lint on a 2-vCPU machine, and the cost grows linearly with the size.
CONFIG_LIMIT = 32 << 20
CONFIGMAP_LIMIT = 4 << 20
# How long a FIFO/pipe read may wait when nobody set a deadline.
FALLBACK_WAIT_S = 30.0
_CHUNK = 1 << 16


class _HasRemaining(Protocol):
    def remaining(self) -> float: ...


_SCOPE: contextvars.ContextVar[float | None] = contextvars.ContextVar("input_deadline", default=None)
# The same expiry for worker threads: a threading.Thread starts in an empty context (not a
# copy of its creator's) before Python 3.14, so it would not see _SCOPE.
_PROCESS_EXPIRY: float | None = None


# How long after SIGINT/SIGTERM a reader still gets data that is already there (see _wait).
STOP_GRACE_S = 0.5


@contextlib.contextmanager
def deadline_scope(seconds: float | None) -> Iterator[None]:
    """Reads inside this block wait at most until ``seconds`` from now (monotonic)."""
    global _PROCESS_EXPIRY
    at = None if seconds is None else time.monotonic() + seconds
    token = _SCOPE.set(at)
    previous, _PROCESS_EXPIRY = _PROCESS_EXPIRY, at
    try:
        yield
    finally:
        _SCOPE.reset(token)
        _PROCESS_EXPIRY = previous


def _expiry(deadline: _HasRemaining | float | None) -> float:
    if deadline is None:
        at = _SCOPE.get()
        if at is None:
            at = _PROCESS_EXPIRY
        return at if at is not None else time.monotonic() + FALLBACK_WAIT_S
    if isinstance(deadline, (int, float)):
        return time.monotonic() + float(deadline)
    return time.monotonic() + deadline.remaining()


def _describe(mode: int) -> str | None:
    """Why this kind of file cannot be an input, or None when it can."""
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISBLK(mode):
        return "is a block device"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return None


class BoundedReader:
    """A raw, binary reader of one input: ``read(n)`` and ``close()``.

    Every read waits in ``poll()`` for at most the deadline (FIFO, pipe, character device,
    stdin, and the procfs files that look regular but block), and at most ``limit`` bytes
    are read in total (``limit`` None: no cap, e.g. a streamed pcap, which the
    deadline bounds instead).
    """

    def __init__(self, path: str, *, what: str, deadline: _HasRemaining | float | None = None,
                 limit: int | None = None) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.what = what
        self.limit = limit
        self.read_bytes = 0
        self._expires = _expiry(deadline)
        self._own = path != "-"
        if path == "-":
            fd = _stdin_fd()
            if fd is None:
                raise InputFileError(self.name, "stdin is closed")
            self._fd = fd
        else:
            try:
                # O_NONBLOCK: open() of a FIFO without a writer returns at once instead of
                # blocking (fifo(7)); regular files ignore the flag.
                self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
            except OSError as exc:
                raise open_error(path, exc, what) from None
        try:
            st = os.fstat(self._fd)
            mode, self.size = st.st_mode, st.st_size
        except OSError as exc:
            self.close()
            raise open_error(path, exc, what) from None
        why = _describe(mode)
        if why is not None:
            self.close()
            raise InputFileError(self.name, f"{why}, expected {what}")
        self.regular = stat.S_ISREG(mode)
        self.fifo = stat.S_ISFIFO(mode)
        # Every read waits in poll(), regular files too: poll() returns at once for a disk
        # file, but procfs/sysfs/debugfs files that look regular can block forever
        # (/proc/kmsg, tracing/trace_pipe) and do implement poll.
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLPRI)

    def _wait(self) -> None:
        """Block until the fd is readable (or the writer hung up), at most until the deadline."""
        while True:
            left = self._expires - time.monotonic()
            if left <= 0:
                hint = ("a FIFO or pipe that nobody writes to? give a regular file, or write "
                        "to the pipe before the deadline" if self.fifo else
                        "give a regular file or '-' with the data on stdin")
                raise InputFileError(self.name, f"no end of input within the deadline ({self.read_bytes} "
                                                f"bytes read)", hint=hint)
            try:
                events = self._poll.poll(signals.tick(left) * 1000.0)
            except InterruptedError:  # PEP 475 retries, but a handler may raise: keep going
                continue
            since = signals.stopped_for()
            if events and (since is None or since < STOP_GRACE_S):
                return
            if since is not None:
                # SIGINT/SIGTERM end a wait for input as the deadline does (toolkit.signals):
                # a FIFO nobody writes to held the first signal for the whole --deadline. Data
                # already there is still read for STOP_GRACE_S, so a reader that checks the
                # stop itself (capture --read -, every 1024 records) ends with its partial report.
                raise StoppedBySignal(f"{self.name}: {signals.describe()} while waiting for "
                                      f"input ({self.read_bytes} bytes read)",
                                      exit_code=signals.exit_code())

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all, for -1), each wait bounded by the deadline; past the cap
        InputFileError."""
        if n is None or n < 0:
            return self.readall()
        if self.limit is not None:
            room = self.limit - self.read_bytes
            if room <= 0:
                # One byte past the cap says "larger than the cap" (not merely "exactly the cap").
                if self._read_some(1):
                    raise self._too_big()
                return b""
            n = min(n, room)
        out = bytearray()
        while len(out) < n:
            chunk = self._read_some(n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def _read_some(self, n: int) -> bytes:
        while True:
            self._wait()
            try:
                chunk = os.read(self._fd, n)
            except BlockingIOError:
                continue  # woke without data (another reader of the pipe got it)
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.EISDIR:
                    raise InputFileError(self.name, f"is a directory, expected {self.what}") from None
                raise InputFileError(self.name, f"read error: {exc.strerror or exc}") from None
            self.read_bytes += len(chunk)
            return chunk

    def _too_big(self) -> InputFileError:
        assert self.limit is not None
        return InputFileError(self.name, f"larger than {_size(self.limit)}: not {self.what}",
                              hint="give the file itself (an endless device or a stream "
                                   "that never ends cannot be read)")

    def readall(self, *, truncate: bool = False) -> bytes:
        """Everything up to EOF; past ``limit``: the first ``limit`` bytes when ``truncate``,
        else InputFileError."""
        chunks = []
        while True:
            want = _CHUNK
            if self.limit is not None:
                want = min(want, self.limit - self.read_bytes + 1)
            chunk = self._read_some(want)
            if not chunk:
                break
            chunks.append(chunk)
            if self.limit is not None and self.read_bytes > self.limit:
                if truncate:
                    return b"".join(chunks)[: self.limit]
                raise self._too_big()
        return b"".join(chunks)

    def readinto(self, b: Any) -> int:  # Any: a writable buffer (bytearray, memoryview)
        """Read into ``b`` (io.RawIOBase's protocol); the number of bytes read."""
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close the file descriptor (never stdin's)."""
        if self._own and getattr(self, "_fd", -1) >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def __enter__(self) -> "BoundedReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def read_bytes(path: str, *, what: str, limit: int = CONFIG_LIMIT,
               deadline: _HasRemaining | float | None = None, truncate: bool = False) -> bytes:
    """All bytes of PATH (``-``: stdin), at most ``limit`` (``truncate``: cut there instead of
    failing), waiting at most until the deadline. Raises InputFileError."""
    if path == "-" and _stdin_fd() is None:
        return _read_stdin_object(what, limit, truncate)
    with BoundedReader(path, what=what, deadline=deadline, limit=limit) as r:
        return r.readall(truncate=truncate)


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno() if sys.stdin is not None else None
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


def _read_stdin_object(what: str, limit: int, truncate: bool) -> bytes:
    """sys.stdin replaced by an in-memory stream (an embedding caller, a test runner): it has
    no fd to poll, and cannot block; only the cap applies."""
    if sys.stdin is None:
        raise InputFileError("<stdin>", "stdin is closed")
    stream = getattr(sys.stdin, "buffer", sys.stdin)
    data = stream.read(limit + 1)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if len(data) > limit:
        if truncate:
            return data[:limit]
        raise InputFileError("<stdin>", f"larger than {_size(limit)}: not {what}")
    return data


def read_text(path: str, *, what: str, limit: int = CONFIG_LIMIT,
              deadline: _HasRemaining | float | None = None) -> str:
    """The UTF-8 text of PATH (see ``read_bytes``); not UTF-8 -> InputFileError."""
    raw = read_bytes(path, what=what, limit=limit, deadline=deadline)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        name = "<stdin>" if path == "-" else path
        raise InputFileError(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def open_stream(path: str, *, what: str, deadline: _HasRemaining | float | None = None,
                limit: int | None = None) -> BinaryIO:
    """A binary stream for large inputs read piecewise (pcaps): regular files get an
    ordinary buffered file; pipes, FIFOs, devices and stdin get a buffered ``BoundedReader``
    whose every read obeys the deadline."""
    reader = BoundedReader(path, what=what, deadline=deadline, limit=limit)
    if reader.regular and reader._own and reader.size > 0:
        # A file on disk (procfs files that may block report size 0): plain buffered reads.
        fd, reader._fd = reader._fd, -1
        os.set_blocking(fd, True)
        return open(fd, "rb", buffering=1 << 20, closefd=True)  # noqa: SIM115 - caller closes
    return io.BufferedReader(_RawAdapter(reader), buffer_size=1 << 16)


class _RawAdapter(io.RawIOBase):
    """Makes a BoundedReader an ``io.RawIOBase`` for io.BufferedReader."""

    def __init__(self, reader: BoundedReader) -> None:
        super().__init__()
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._reader.readinto(b)

    def close(self) -> None:
        self._reader.close()
        super().close()
