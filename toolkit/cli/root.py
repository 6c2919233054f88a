"""The root of the command tree: the Typer application every `podtriage` command registers
on, and its --version (cheap to import: typer only)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from toolkit import __version__


class RootGroup(TyperGroup):
    """The root command: click's usage errors (an unknown option, a bad value, a missing
    argument: exit 2) still print the error document on stdout when the command line asked
    for ``-o json``/``ndjson``, as every other failure does (toolkit.cli.common)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:  # Any: click's signature
        """click's main, with its usage errors turned into an error document as well."""
        from typer._click.exceptions import ClickException

        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except ClickException as exc:
            exc.show()
            _usage_document(argv, exc)
            sys.exit(exc.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def _usage_document(argv: list[str], exc: Exception) -> None:
    """The error document of a command line click refused."""
    from toolkit.cli.common import error_to_stdout
    from toolkit.errors import EXIT_USAGE
    from toolkit.report.document import ErrorKind, RunError

    ctx = getattr(exc, "ctx", None)
    words = ctx.command_path.split()[1:] if ctx is not None else []
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    hint = f"see podtriage {' '.join(words)} --help".replace("  ", " ")
    error_to_stdout(output_in_argv(argv), RunError(kind=ErrorKind.USAGE, message=message, hint=hint,
                                                   exit_code=getattr(exc, "exit_code", EXIT_USAGE)),
                    command=" ".join(words) or None)


def output_in_argv(argv: Sequence[str]) -> Any:  # Any: an OutputFormat (imported lazily)
    """The ``-o``/``--output`` format a command line asks for (the last one, as click takes
    it), or None: read from the words themselves, since click refused to parse them."""
    from toolkit.report import OutputFormat

    found = None
    i = 0
    while i < len(argv):
        word, value = argv[i], None
        if word == "--":
            break
        if word in ("-o", "--output"):
            value = argv[i + 1] if i + 1 < len(argv) else None
            i += 1
        elif word.startswith("--output="):
            value = word[len("--output="):]
        elif word.startswith("-o") and not word.startswith("--"):
            value = word[2:]
        if value is not None:
            try:
                found = OutputFormat(value.lower())
            except ValueError:
                pass
        i += 1
    return found


app = typer.Typer(
    cls=RootGroup,
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
        "(missing capability, file or namespace), 4 internal error, 5 indeterminate (could "
        "not tell: the report says what would settle it), 130/143 interrupted."
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
