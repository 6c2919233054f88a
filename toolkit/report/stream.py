"""stdout as podtriage writes results to it: closed pipes, full disks and narrow encodings are
outcomes of the environment, not bugs.

- A reader that goes away (``podtriage capture -R big.pcap | head -1``): Python ignores
  SIGPIPE, so the next write raises BrokenPipeError. That is the conventional quiet end of a
  pipeline: exit 128 + SIGPIPE = 141, the status a shell reports for a process killed by
  SIGPIPE, and nothing on stderr.
- Any other write error (``> /dev/full``: ENOSPC, EIO, EDQUOT, EFBIG): one line on stderr,
  exit 3 (could not deliver what was observed).
- An encoding that cannot show a character (``PYTHONIOENCODING=ascii`` and an IDN name, a
  name from argv that is not UTF-8): backslash escapes instead of UnicodeEncodeError.

Whatever happened, stdout is then pointed at /dev/null so that the interpreter's final flush
of what is still buffered cannot fail a second time ("Exception ignored ... BrokenPipeError").
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable
from typing import Any, Protocol

from toolkit.errors import OutputClosed, OutputError

EXIT_SIGPIPE = 128 + 13
STDOUT_NAME = "stdout"     # the name write errors of stdout carry (OutputError.path)


class TextSink(Protocol):
    """What GuardedStream needs of the stream it guards."""

    def write(self, text: str, /) -> int:
        """Write text, return the number of characters."""
        ...

    def flush(self) -> None:
        """Push buffered text out."""
        ...


class GuardedStream:
    """A text stream whose write errors become OutputClosed / OutputError."""

    def __init__(self, stream: TextSink, name: str = STDOUT_NAME) -> None:
        self._stream = stream
        self._name = name

    def _failed(self, exc: OSError) -> Exception:
        if isinstance(exc, BrokenPipeError) or exc.errno in (errno.EPIPE, errno.ECONNRESET):
            return OutputClosed(f"{self._name} closed")
        return OutputError(self._name, exc.strerror or str(exc))

    def write(self, text: str) -> int:
        """Write, or raise OutputClosed (EPIPE) / OutputError (ENOSPC, EIO...)."""
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._failed(exc) from None

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each line (as ``write``)."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Flush, or raise as ``write``."""
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def __getattr__(self, name: str) -> Any:  # Any: whatever the guarded stream has
        return getattr(self._stream, name)


class ClosedStream:
    """Stands in for sys.stdout when fd 1 is closed (``podtriage ... >&-``: Python then sets
    sys.stdout to None): every write is an OutputError."""

    encoding = "utf-8"
    errors = "strict"

    def write(self, _text: str) -> int:
        """Always fails: there is no stdout to write to."""
        raise OutputError(STDOUT_NAME, "it is closed (no file descriptor 1)")

    def flush(self) -> None:
        """Nothing to flush."""

    def isatty(self) -> bool:
        """Not a terminal."""
        return False


def tolerant_encoding(stream: object) -> None:
    """Unencodable characters become backslash escapes rather than UnicodeEncodeError."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is None or getattr(stream, "errors", None) == "backslashreplace":
        return
    try:
        reconfigure(errors="backslashreplace")
    except (ValueError, OSError, AttributeError):
        pass


def guard_stdout() -> tuple[Any, Any]:  # Any: sys.stdout as it is, and our stand-in for it
    """Install the guard on sys.stdout; returns (original, guarded) for ``restore``."""
    original = sys.stdout
    tolerant_encoding(original)
    tolerant_encoding(sys.stderr)
    if isinstance(original, GuardedStream):
        return original, original
    guarded = GuardedStream(original if original is not None else ClosedStream())
    sys.stdout = guarded
    return original, guarded


def restore(original: Any, guarded: Any) -> None:  # Any: guard_stdout's pair
    """Put back the sys.stdout that guard_stdout replaced (if it is still ours)."""
    if sys.stdout is guarded:
        sys.stdout = original


def silence_stdout() -> None:
    """Point fd 1 at /dev/null, so the exit flush of what is still buffered succeeds.
    Only when sys.stdout is fd 1 (not an in-memory stream of a test runner)."""
    try:
        if sys.stdout is None or sys.stdout.fileno() != 1:
            return
    except (OSError, ValueError, AttributeError):
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
        finally:
            os.close(devnull)
    except OSError:
        pass


def say(message: str) -> None:
    """A line on stderr that may itself fail (2>/dev/full) or be closed (2>&-, sys.stderr
    is None, and print(file=None) would write to stdout): then say nothing."""
    if sys.stderr is None:
        return
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
