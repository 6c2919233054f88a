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
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from toolkit.cli import validate
from toolkit.errors import (EXIT_INTERNAL, EXIT_USAGE, OutputClosed, OutputError, PodtriageError,
                            StoppedBySignal, translate)
from toolkit.model import Report, verdict_exit_code
from toolkit.report import OutputFormat

if TYPE_CHECKING:
    from toolkit.report.document import RunError

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
# issue 26's contract: the live endpoints of the DNS Service (the plugin passes them)
DnsEndpointsOpt = Annotated[
    list[str],
    typer.Option(
        "--dns-endpoints", parser=validate.ip_addresses, metavar="IP[,IP...]",
        help="The live endpoints of the DNS Service (kube-dns EndpointSlices; repeatable): DNS "
             "conntrack entries DNATed elsewhere are stale. Without it, on a node, kube-proxy's "
             "rules for kube-dns are read.",
    ),
]

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


def fail(exc: PodtriageError, output: OutputFormat | None = None) -> NoReturn:
    """Say what went wrong (and the hint) on stderr, then exit with the error's code; with
    ``-o json``/``ndjson`` the error document goes to stdout too (README "Exit codes")."""
    from toolkit.report.document import ErrorKind, RunError
    from toolkit.report.sanitize import for_terminal
    from toolkit.report.stream import say

    # The message may carry a hostile file name or value: no control characters to stderr.
    say(f"podtriage: error: {for_terminal(exc.message)}")
    if exc.hint:
        say(f"podtriage: hint: {for_terminal(exc.hint)}")
    kind = {EXIT_USAGE: ErrorKind.USAGE, EXIT_INTERNAL: ErrorKind.INTERNAL}.get(exc.exit_code,
                                                                                ErrorKind.CANNOT_OBSERVE)
    if isinstance(exc, StoppedBySignal):
        kind = ErrorKind.INTERRUPTED
    error_to_stdout(output, RunError(kind=kind, message=exc.message, hint=exc.hint,
                                     exit_code=exc.exit_code, data=exc.data))
    raise typer.Exit(exc.exit_code)


def error_to_stdout(output: OutputFormat | None, error: RunError, command: str | None = None) -> None:
    """The error document on stdout when the chosen format is json or ndjson (one document,
    whatever failed: a runbook's `jq -r .verdict` always has something to read). Nothing
    when stdout itself is what failed."""
    from toolkit.report import OutputFormat as Fmt

    if output not in (Fmt.json, Fmt.ndjson):
        return
    from toolkit.deadline import Deadline
    from toolkit.kube.context import run_context
    from toolkit.report.document import error_document
    from toolkit.report.jsondoc import render_error

    doc = error_document(command if command is not None else current_command(), error,
                         Deadline.for_command(0.0).elapsed(), run_context())
    try:
        render_error(doc, output is Fmt.ndjson, sys.stdout)
        sys.stdout.flush()
    except (OSError, ValueError, OutputClosed, OutputError):
        pass


def current_command() -> str | None:
    """The subcommand being run ("corefile lint"), from the click context; None outside one."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return None
    words = ctx.command_path.split()[1:]
    return " ".join(words) or None


def _output_failed(exc: PodtriageError, output: OutputFormat) -> NoReturn:
    """stdout is gone (EPIPE: quiet, 141) or failing (ENOSPC...: one line, exit 3). A file
    other than stdout that cannot be written (capture --write) is an ordinary failure."""
    from toolkit.report.stream import STDOUT_NAME, silence_stdout

    if isinstance(exc, OutputError) and exc.path != STDOUT_NAME:
        fail(exc, output)
    silence_stdout()
    if isinstance(exc, OutputClosed):
        raise typer.Exit(exc.exit_code)
    fail(exc)


def run(build: Callable[[], Report], output: OutputFormat, *,
        termination_log: bool = False, deadline: float | None = None) -> NoReturn:
    """Build the report, render it, exit with its verdict's code (0 ok, 1 problem, 5
    indeterminate; toolkit.model.verdict_exit_code).

    Exceptions are mapped here and only here: ours carry their exit code, foreign ones go
    through ``toolkit.errors.translate``, anything else is an internal error (exit 4)
    with the traceback shown only when PODTRIAGE_DEBUG is set. ``deadline`` bounds the
    reading of input files (FIFOs, pipes: ``toolkit.inputs``) and the rendering.
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
    report = _build(build, deadline, output)
    if not report.duration_ms:
        report = replace(report, duration_ms=(time.monotonic() - t0) * 1000.0)
    if signals.stopped():
        from toolkit.report.interrupted import mark_interrupted

        report = mark_interrupted(report)
    report = _render(report, output, deadline)
    if termination_log:
        write_termination_log(report)
    if signals.stopped():
        raise typer.Exit(signals.exit_code())
    raise typer.Exit(verdict_exit_code(report.verdict))


def _build(build: Callable[[], Report], deadline: float | None, output: OutputFormat) -> Report:
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
        _output_failed(exc, output)
    except KeyboardInterrupt:
        _interrupted(output)
    except Exception as exc:  # noqa: BLE001 - this is the one mapping point
        mapped = translate(exc)
        if mapped is None:
            _internal_error(exc, output)
        fail(mapped, output)


def _interrupted(output: OutputFormat) -> NoReturn:
    """A second SIGINT/SIGTERM: the user insists. One line, the error document, 130/143."""
    from toolkit import signals
    from toolkit.report.document import ErrorKind, RunError
    from toolkit.report.stream import say

    say("podtriage: interrupted")
    code = signals.exit_code()
    error_to_stdout(output, RunError(kind=ErrorKind.INTERRUPTED, exit_code=code,
                                     message=f"interrupted by {signals.describe()} twice: no partial report",
                                     hint="send one signal and wait up to a second for the partial report"))
    raise typer.Exit(code) from None


def _internal_error(exc: BaseException, output: OutputFormat | None = None) -> NoReturn:
    """A bug: one line (the traceback only with PODTRIAGE_DEBUG), exit 4."""
    from toolkit.report.document import ErrorKind, RunError
    from toolkit.report.sanitize import for_terminal
    from toolkit.report.stream import say

    if os.environ.get("PODTRIAGE_DEBUG") and sys.stderr is not None:
        traceback.print_exception(exc)
    say(f"podtriage: internal error: {type(exc).__name__}: {for_terminal(exc)}")
    hint = "this is a bug; rerun with PODTRIAGE_DEBUG=1 and report the traceback"
    say(f"podtriage: hint: {hint}")
    error_to_stdout(output, RunError(kind=ErrorKind.INTERNAL, exit_code=EXIT_INTERNAL, hint=hint,
                                     message=f"internal error: {type(exc).__name__}: {exc}"))
    raise typer.Exit(EXIT_INTERNAL) from None


def _render(report: Report, output: OutputFormat, deadline: float | None) -> Report:
    """The report on stdout, with the run's context (the kubectl plugin's pod, namespace
    and node, read from the environment it sets) in the JSON document; rendered under the
    deadline and the stop signals (toolkit.report.budget). Returns the report as rendered."""
    from toolkit.deadline import Deadline
    from toolkit.kube.context import run_context
    from toolkit.report.budget import RENDER_GRACE_S, render_bounded

    until = None if deadline is None else Deadline.for_command(deadline).expires_at + RENDER_GRACE_S
    try:
        rendered = render_bounded(report, output, sys.stdout, run_context(), until)
        sys.stdout.flush()
    except (OutputClosed, OutputError) as exc:
        _output_failed(exc, output)
    except Exception as exc:  # noqa: BLE001 - a renderer bug is exit 4, never a traceback
        _internal_error(exc, output)
    return rendered


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
