"""The root of the command tree: the Typer application every `podtriage` command registers
on, and its --version (cheap to import: typer only)."""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit import __version__

app = typer.Typer(
    name="podtriage",
    no_args_is_help=True,
    add_completion=True,    # Typer's completion: --install-completion, --show-completion
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
    """--version: print it and exit."""
    if value:
        typer.echo(f"podtriage {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """One-shot DNS and network triage for a Kubernetes pod."""
