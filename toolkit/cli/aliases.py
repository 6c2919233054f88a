"""Old short option letters kept as hidden aliases for one release (README "Options: one
meaning per letter").

Every short letter means one long option in every command (``-c`` is ``--corefile``,
``-n`` is ``--name``, ``-r`` is ``--reference``, ``-f`` is ``--file``); the letters that
used to mean something else in one command still work there, hidden from ``--help`` and with
a note on stderr, until the next release. A hidden alias is only kept where the letter means
nothing else in that command: a letter is never read two ways in one command line.

``OLD_SPELLINGS`` is the registry the unit test walks (tests/unit/test_cli_letters.py): every
hidden option of the command tree must be listed here, and nothing else may be hidden.
"""

from __future__ import annotations

from typing import TypeVar

import typer

T = TypeVar("T")

# (command path, old letter) -> (the long option it still means there, its new short or "")
OLD_SPELLINGS: dict[tuple[str, str], tuple[str, str]] = {
    ("capture", "-c"): ("--count", "-N"),
    ("capture", "-f"): ("--filter", ""),
    ("capture", "-r"): ("--read", "-R"),
    ("conntrack race-test", "-n"): ("--count", "-N"),
}


def old_spelling(command: str, letter: str, old_value: T | None, new_value: T | None) -> T | None:
    """The value of an option given either as its new spelling or as the hidden old letter:
    the old letter's value (with a note on stderr) when only it was given, a usage error
    (exit 2) when both were."""
    if old_value is None:
        return new_value
    long, short = OLD_SPELLINGS[(command, letter)]
    new = f"{short}/{long}" if short else long
    if new_value is not None:
        raise typer.BadParameter(f"{letter} is the old spelling of {long}: give {new} only",
                                 param_hint=letter)
    typer.echo(f"podtriage {command}: {letter} is the old spelling of {long} (kept for "
               f"this release only): use {new}", err=True)
    return old_value
