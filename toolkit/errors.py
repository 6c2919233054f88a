"""The one exception tree of podtriage.

An observed failure (NXDOMAIN, a timeout, ICMP unreachable) is *data* and lives in result
objects. Exceptions mean "could not observe": bad input, a missing capability, no access.
Each class carries its exit code; ``toolkit.cli.common.run`` is the one place that maps
exceptions (ours and foreign ones) to exit codes and messages.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable, Mapping, MutableSequence
from types import TracebackType
from dataclasses import dataclass

# Exit codes: the contract documented in README.md (DESIGN.md "Exit codes").
EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_CANNOT_OBSERVE = 3
EXIT_INTERNAL = 4
# The run completed but its evidence does not settle a verdict (`indeterminate`): "could not
# tell", told apart from 1 "problem found" so that a runbook can rerun with what the report's
# `settle` asks for instead of paging someone (README "Verdicts and exit codes").
EXIT_INDETERMINATE = 5


class PodtriageError(Exception):
    """Base class. ``hint`` tells the user what to do about it; ``data`` goes into the error
    document that ``-o json``/``ndjson`` still print (e.g. merge's unusable inputs)."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, hint: str | None = None,
                 data: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.data: Mapping[str, object] = data or {}


class UsageError(PodtriageError):
    """The command line asks for something that cannot work (exit 2, like Typer's own)."""

    exit_code = EXIT_USAGE


class CannotObserve(PodtriageError):
    """podtriage could not look at what it was asked to (exit 3)."""

    exit_code = EXIT_CANNOT_OBSERVE


class StoppedBySignal(CannotObserve):
    """SIGINT/SIGTERM ended work that has no partial result to give (parsing, linting):
    exit 128 + the signal number, as every interrupted run (toolkit.signals)."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class InputFileError(CannotObserve):
    """An input file is missing, unreadable, or not in a form that can be parsed at all."""

    def __init__(self, path: str, problem: str, *, hint: str | None = None,
                 data: Mapping[str, object] | None = None) -> None:
        super().__init__(f"{path}: {problem}", hint=hint, data=data)
        self.path = path
        self.problem = problem


def open_error(path: str, exc: OSError, expected: str) -> InputFileError:
    """The one wording for an input file that cannot be opened (``expected``: what it should
    have been, e.g. "a pcap or pcapng file")."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return InputFileError(path, "no such file")
    if isinstance(exc, IsADirectoryError):
        return InputFileError(path, f"is a directory, expected {expected}")
    if isinstance(exc, PermissionError):
        return InputFileError(path, "permission denied")
    return InputFileError(path, f"cannot read: {exc.strerror or exc}")


class OutputError(CannotObserve):
    """A result or capture file could not be written (ENOSPC, EIO, ...): exit 3."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"cannot write {path}: {problem}",
                         hint="free space or choose another destination" if "space" in problem
                         else None)
        self.path = path
        self.problem = problem


class OutputClosed(PodtriageError):
    """The reader of stdout went away (EPIPE): the quiet end of a pipeline, exit 141
    (128 + SIGPIPE, what the shell reports for a process SIGPIPE killed)."""

    exit_code = 141


class MissingCapability(CannotObserve):
    """A Linux capability (NET_RAW, NET_ADMIN) this step needs is not in CapEff."""

    def __init__(self, capability: str, needed_for: str) -> None:
        super().__init__(
            f"{needed_for} needs {capability}, which this process does not have",
            hint=(
                f"attach with `kubectl debug --profile=netadmin ...` (adds NET_RAW and "
                f"NET_ADMIN), or run the container with --cap-add {capability}"
            ),
        )
        self.capability = capability
        self.needed_for = needed_for


class KubectlError(CannotObserve):
    """The user's kubectl failed (kubectl-podtriage): the message is kubectl's own last
    error line."""


class InternalError(PodtriageError):
    """A bug in podtriage (exit 4)."""

    exit_code = EXIT_INTERNAL


# Write failures that are the environment's, not a bug: full disk, quota, file too large,
# I/O error, read-only file system.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


def translate(exc: BaseException) -> PodtriageError | None:
    """Map a foreign exception to ours, or None when it is a bug (exit 4).

    The one table of foreign exceptions: library code lets these escape only where it
    cannot know better; the CLI calls this in one place.
    """
    if isinstance(exc, PodtriageError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return InputFileError(exc.filename or "?", "no such file")
    if isinstance(exc, IsADirectoryError):
        return InputFileError(exc.filename or "?", "is a directory, expected a file")
    if isinstance(exc, PermissionError):
        name = exc.filename or "operation"
        return CannotObserve(f"{name}: permission denied",
                             hint="run as a user that may read it, or grant the capability "
                                  "(kubectl debug --profile=netadmin)")
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return OutputError(str(exc.filename or "the output"), exc.strerror or str(exc))
    if isinstance(exc, UnicodeDecodeError):
        return CannotObserve(f"input is not text ({exc.reason} at byte {exc.start})")
    return None


def failure_text(exc: BaseException) -> str:
    """What failed and why, for a note ("KeyError: 'x'" says more than "'x'")."""
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else str(exc)


# ---------------------------------------------------------------------------- best effort
# What "could not observe" looks like when it comes from below us: the OS (a file, a socket,
# /proc of a process that just exited), a library that is missing, psutil's NoSuchProcess /
# AccessDenied, pyroute2's NetlinkError, scapy's own errors, a truncated kernel record. Matched
# by module for the libraries so that importing them stays lazy (startup time).
_OBSERVATION_TYPES: tuple[type[BaseException], ...] = (
    OSError, CannotObserve, ImportError, EOFError, struct.error)
_OBSERVATION_MODULES = ("psutil", "pyroute2", "scapy")


def is_observation_error(exc: BaseException,
                         also: tuple[type[BaseException], ...] = ()) -> bool:
    """True when ``exc`` says an observation could not be made (not a bug in podtriage)."""
    if isinstance(exc, _OBSERVATION_TYPES + also):
        return True
    return any(type(exc).__module__.split(".", 1)[0] == m for m in _OBSERVATION_MODULES)


@dataclass
class Attempt:
    """What a ``best_effort`` block saw: the observation error that ended it, if any."""

    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        """The block ended on an observation error."""
        return self.error is not None


class best_effort:  # noqa: N801 - used as a function: `with best_effort(notes, "what") as attempt`
    """Run an optional observation: an observation error becomes the note "WHAT: why" and
    the block ends; anything else (a bug: AttributeError, TypeError...) propagates to the
    one exception boundary and exit 4, in production as in the tests.

        with best_effort(notes, "reading the ARP table") as attempt:
            table = read_neighbours()
        if attempt.failed: ...

    ``also`` adds exception types that mean "could not observe" at this one place (e.g.
    ValueError from a kernel table in an unexpected format). A class rather than a
    generator context manager: its ``__exit__`` is typed ``-> bool``, which tells mypy that
    the block may end early (code after it is reachable even when the block returns).
    """

    def __init__(self, notes: MutableSequence[str] | Callable[[str], object] | None, what: str, *,
                 also: tuple[type[BaseException], ...] = ()) -> None:
        self._notes = notes
        self._what = what
        self._also = also
        self._attempt = Attempt()

    def __enter__(self) -> Attempt:
        return self._attempt

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None or not isinstance(exc, Exception) or not is_observation_error(exc, self._also):
            return False        # no error, KeyboardInterrupt/SystemExit, or a bug: propagate
        self._attempt.error = exc
        if self._notes is not None:
            text = f"{self._what}: {failure_text(exc)}"
            if callable(self._notes):
                self._notes(text)
            else:
                self._notes.append(text)
        return True
