"""What every command shares: the output and deadline options (defined once), progress on
stderr, and ``run``: the one place that turns a Report or an exception into output and an
exit code (README "Exit codes").
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, NoReturn

import typer

from toolkit.cli import validate
from toolkit.errors import (EXIT_INTERNAL, EXIT_OK, EXIT_PROBLEM, OutputClosed, OutputError,
                            PodtriageError, translate)
from toolkit.model import Report, Verdict
from toolkit.report import OutputFormat

OutputOpt = Annotated[
    OutputFormat,
    typer.Option(
        "--output", "-o", case_sensitive=False, metavar="table|json|ndjson|markdown",
        help="Result format on stdout: table (for people), json (one document), ndjson "
             "(one event per line, for log pipelines), markdown (for incident tickets).",
    ),
]
DeadlineOpt = Annotated[
    float,
    typer.Option(
        "--deadline", parser=validate.seconds(0.1, 3600.0), metavar="SECONDS",
        help="Time budget for the whole command; every network call is bounded by it and "
             "the command reports what it learned when it runs out.",
    ),
]
DEFAULT_DEADLINE = 10.0

TERMINATION_LOG = "/dev/termination-log"


def explicit_file(path: str, default: str) -> None:
    """A file the user named must exist (exit 3 otherwise). The default paths may be
    missing: glibc then has defaults of its own (nameserver 127.0.0.1, hosts: dns files),
    which the analysis reports as findings."""
    if path != default and path != "-" and not os.path.exists(path):
        from toolkit.errors import InputFileError

        raise InputFileError(path, "no such file")


def progress_enabled() -> bool:
    """Progress lines on stderr: PODTRIAGE_PROGRESS when set, else only on a terminal."""
    flag = os.environ.get("PODTRIAGE_PROGRESS")
    if flag is not None:
        return flag not in ("", "0", "no")
    return sys.stderr.isatty()


def progress(message: str) -> None:
    """Progress and logs go to stderr, never stdout (stdout is for results)."""
    if progress_enabled():
        from toolkit.report.sanitize import for_terminal
        from toolkit.report.stream import say

        say(f"podtriage: {for_terminal(message)}")


def fail(exc: PodtriageError) -> NoReturn:
    """Say what went wrong (and the hint) on stderr, then exit with the error's code."""
    from toolkit.report.sanitize import for_terminal
    from toolkit.report.stream import say

    # The message may carry a hostile file name or value: no control characters to stderr.
    say(f"podtriage: error: {for_terminal(exc.message)}")
    if exc.hint:
        say(f"podtriage: hint: {for_terminal(exc.hint)}")
    raise typer.Exit(exc.exit_code)


def _output_failed(exc: PodtriageError) -> NoReturn:
    """stdout is gone (EPIPE: quiet, 141) or failing (ENOSPC...: one line, exit 3)."""
    from toolkit.report.stream import silence_stdout

    silence_stdout()
    if isinstance(exc, OutputClosed):
        raise typer.Exit(exc.exit_code)
    fail(exc)


def run(build: Callable[[], Report], output: OutputFormat, *,
        termination_log: bool = False, deadline: float | None = None) -> NoReturn:
    """Build the report, render it, exit 0 for ``ok`` and 1 for any other verdict.

    Exceptions are mapped here and only here: ours carry their exit code, foreign ones go
    through ``toolkit.errors.translate``, anything else is an internal error (exit 4)
    with the traceback shown only when PODTRIAGE_DEBUG is set. ``deadline`` bounds the
    reading of input files (FIFOs, pipes: ``toolkit.inputs``).
    """
    from toolkit.report.stream import guard_stdout, restore

    original, guarded = guard_stdout()
    try:
        _run(build, output, termination_log, deadline)
    finally:
        restore(original, guarded)


def _run(build: Callable[[], Report], output: OutputFormat, termination_log: bool,
         deadline: float | None) -> NoReturn:
    from toolkit import signals

    t0 = time.monotonic()
    report = _build(build, deadline)
    if not report.duration_ms:
        report = replace(report, duration_ms=(time.monotonic() - t0) * 1000.0)
    interrupted = signals.stopped()
    if interrupted:
        from toolkit.report.interrupted import mark_interrupted

        report = mark_interrupted(report)
    _render(report, output)
    if termination_log:
        write_termination_log(report)
    if interrupted:
        raise typer.Exit(signals.exit_code())
    raise typer.Exit(EXIT_OK if report.verdict is Verdict.OK else EXIT_PROBLEM)


def _build(build: Callable[[], Report], deadline: float | None = None) -> Report:
    """The report, or the exit its exception maps to: the one exception boundary."""
    from toolkit import signals
    from toolkit.deadline import Deadline
    from toolkit.inputs import deadline_scope

    # The deadline also bounds the reading of input files (toolkit.inputs), counted like the
    # command's own budget (Deadline.for_command: from the process's start), so that a FIFO
    # read ends at the deadline itself, before Deadline.enforce's backstop a little later.
    reads = None if deadline is None else Deadline.for_command(deadline).remaining()
    try:
        # SIGINT/SIGTERM stop the run cooperatively: build() returns its partial report
        # (toolkit.signals); a second signal raises KeyboardInterrupt below.
        with signals.cooperative(), deadline_scope(reads):
            return build()
    except typer.Exit:
        raise
    except (OutputClosed, OutputError) as exc:
        _output_failed(exc)
    except KeyboardInterrupt:
        print("podtriage: interrupted", file=sys.stderr)
        raise typer.Exit(signals.exit_code()) from None
    except Exception as exc:  # noqa: BLE001 - this is the one mapping point
        mapped = translate(exc)
        if mapped is None:
            _internal_error(exc)
        fail(mapped)


def _internal_error(exc: Exception) -> NoReturn:
    """A bug: one line (the traceback only with PODTRIAGE_DEBUG), exit 4."""
    from toolkit.report.sanitize import for_terminal
    from toolkit.report.stream import say

    if os.environ.get("PODTRIAGE_DEBUG") and sys.stderr is not None:
        traceback.print_exc()
    say(f"podtriage: internal error: {type(exc).__name__}: {for_terminal(exc)}")
    say("podtriage: hint: this is a bug; rerun with PODTRIAGE_DEBUG=1 and report the traceback")
    raise typer.Exit(EXIT_INTERNAL) from None


def _render(report: Report, output: OutputFormat) -> None:
    """The report on stdout, with the run's context (the kubectl plugin's pod, namespace
    and node, read from the environment it sets) in the JSON document."""
    from toolkit.kube.context import run_context
    from toolkit.report import render

    try:
        render(report, output, sys.stdout, run_context())
        sys.stdout.flush()
    except (OutputClosed, OutputError) as exc:
        _output_failed(exc)


def write_termination_log(report: Report) -> None:
    """Kubernetes shows /dev/termination-log in the pod status: useful because
    `kubectl debug` does not pass exit codes back reliably. Best effort only."""
    if not os.path.exists(TERMINATION_LOG):
        return
    line = f"podtriage {report.command} {report.subject}: {report.verdict.value}"
    top = next(iter(report.findings), None)
    if top is not None:
        line += f" - {top.summary}"
    from toolkit.report.sanitize import for_terminal

    try:
        with open(TERMINATION_LOG, "w", encoding="utf-8") as fh:
            # kubectl describe prints it to a terminal: one line, no control characters.
            fh.write(for_terminal(line)[:4000] + "\n")
    except OSError:
        pass
