"""What the kubectl plugin prints itself: warnings on stderr (``say``), progress on stderr
(``progress``: every wait longer than a second, quiet with -q and when stderr is not a
terminal unless PODTRIAGE_PROGRESS=1), the specs ``--dry-run`` shows (YAML), a merged fleet
report with the exit code it means, and stdout writes that fail as the README says (a
closed pipe: exit 141, quietly; a full disk: one line, exit 3).

Everything printed that came from outside (argv, kubectl's messages, names from the
cluster) goes through ``toolkit.report.sanitize.for_terminal``: one line, no escapes.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

from toolkit.errors import EXIT_CANNOT_OBSERVE, OutputClosed, OutputError
from toolkit.kube.kubectl import JsonObject
from toolkit.model import Report, verdict_exit_code
from toolkit.report import OutputFormat
from toolkit.report.sanitize import for_terminal

PROG = "kubectl podtriage"


def say(msg: str) -> None:
    """One line of the plugin's own on stderr (stdout carries podtriage's output)."""
    _err("%s: %s\n" % (PROG, for_terminal(msg)))


def err_line(text: str) -> None:
    """One line of ours on stderr, as it is (no prefix)."""
    _err(for_terminal(text) + "\n")


def _err(text: str) -> None:
    stream = sys.stderr
    if stream is None:                      # stderr closed (2>&-): nothing to tell
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass                                # a full or closed stderr must not cost the result


class Progress:
    """Progress lines with the time since the plugin started: ``[ 12.3s] ...``."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.enabled = False
        self._lock = threading.Lock()

    def configure(self, *, quiet: bool) -> None:
        """On when stderr is a terminal or PODTRIAGE_PROGRESS says so; off with -q."""
        flag = os.environ.get("PODTRIAGE_PROGRESS")
        if quiet:
            self.enabled = False
        elif flag is not None:
            self.enabled = flag not in ("", "0", "no")
        else:
            self.enabled = sys.stderr is not None and sys.stderr.isatty()

    def elapsed(self) -> float:
        """Seconds since the plugin started."""
        return time.monotonic() - self.t0

    def __call__(self, msg: str) -> None:
        if self.enabled:
            with self._lock:
                _err("%s: [%5.1fs] %s\n" % (PROG, self.elapsed(), for_terminal(msg)))


progress = Progress()


class Sink:
    """podtriage's output on its way to our stdout: the first write error is kept (and
    nothing more is written); the caller decides what it means once the run is over."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.error: OSError | None = None

    def write(self, text: str) -> None:
        """Copy ``text`` through, unless a write failed before."""
        if self.error is not None or self.stream is None:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError as e:
            self.error = e

    def check(self, where: str) -> None:
        """OutputClosed (141) or OutputError (3) when a write failed; ``where`` says how to
        get the output anyway."""
        if self.error is None:
            return
        if self.error.errno == errno.EPIPE:
            raise OutputClosed("stdout closed")
        raise OutputError("stdout", "%s; %s" % (self.error.strerror or self.error, where))


def write_out(text: str) -> None:
    """``text`` on stdout; OutputClosed or OutputError when it cannot be written."""
    sink = Sink(sys.stdout)
    if sys.stdout is None:
        raise OutputError("stdout", "it is closed")
    sink.write(text)
    sink.check("nothing was started")


def print_yaml(docs: Sequence[JsonObject]) -> None:
    """``docs`` as a YAML stream on stdout (--dry-run)."""
    import yaml

    write_out(yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False))


def render_merged(report: Report, output: OutputFormat) -> int:
    """Print a fleet report in ``output`` format; its exit code: 3 when no report came back,
    else its verdict's (toolkit.model.verdict_exit_code: 0 ok, 5 indeterminate, 1 a problem)."""
    import io

    from toolkit.report import render

    class _Buffer(io.StringIO):
        def isatty(self) -> bool:       # tables as wide as the terminal they go to
            return sys.stdout is not None and sys.stdout.isatty()

    buf = _Buffer()
    render(report, output, buf)
    write_out(buf.getvalue())
    if not report.data.get("reports"):
        return EXIT_CANNOT_OBSERVE
    return verdict_exit_code(report.verdict)
