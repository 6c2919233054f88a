"""The `podtriage` command line: thin Typer adapters over the toolkit library.

Keep this module and the command modules cheap to import: they import typer only, and
each command imports its library code inside its function body, so `podtriage --help`
and `podtriage resolve --help` never load dnspython or scapy.
"""

from __future__ import annotations

import os
import sys

if sys.argv and (os.path.basename(sys.argv[0]) == "podtriage"
                 or sys.argv[0].endswith(os.path.join("toolkit", "__main__.py"))):
    # The podtriage process itself (not a test or a library importing this module): take
    # SIGINT/SIGTERM over before the 0.1-0.3 s of imports, so that even an early signal ends
    # the run with a report instead of a KeyboardInterrupt traceback or a silent kill.
    from toolkit import signals as _signals

    _signals.install()

from typing import Annotated  # noqa: E402

import typer  # noqa: E402

from toolkit import __version__

app = typer.Typer(
    name="podtriage",
    no_args_is_help=True,
    add_completion=False,
    # Plain click help: rich-formatted help costs ~100 ms more at every start (measured
    # with scripts/bench startup), which matters in a debug container started per run.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "One-shot DNS and network triage for a Kubernetes pod.\n\n"
        "Attach it to a sick pod:  kubectl debug -it POD --target=CONTAINER "
        "--profile=netadmin --image=podtriage -- podtriage diagnose NAME\n\n"
        "Exit codes: 0 healthy, 1 problem found, 2 usage error, 3 could not observe "
        "(missing capability, file or namespace), 4 internal error."
    ),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"podtriage {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """One-shot DNS and network triage for a Kubernetes pod."""


# Importing a command module registers its commands on `app` (each module is cheap: typer only).
# The order here is the order of `podtriage --help`: the one-shot triage first.
from toolkit.cli import diagnose as _diagnose  # noqa: E402,F401,I001
from toolkit.cli import resolve as _resolve  # noqa: E402,F401
from toolkit.cli import resolvconf as _resolvconf  # noqa: E402,F401
from toolkit.cli import reach as _reach  # noqa: E402,F401
from toolkit.cli import capture as _capture  # noqa: E402,F401
from toolkit.cli import conntrack as _conntrack  # noqa: E402,F401
from toolkit.cli import corefile as _corefile  # noqa: E402,F401
from toolkit.cli import merge as _merge  # noqa: E402,F401


def main() -> None:
    from toolkit import deadline, signals

    deadline.count_from_process_start()  # --deadline is the wall time the caller sees
    signals.install()  # SIGINT/SIGTERM end any command cooperatively, with its partial report
    app()
