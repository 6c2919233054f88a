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

# `app` stays importable from here (tests, older command modules); new code imports toolkit.cli.root.
from toolkit.cli.root import app as app  # noqa: E402

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
    """The `podtriage` console script."""
    from toolkit import deadline, signals

    deadline.count_from_process_start()  # --deadline is the wall time the caller sees
    signals.install()  # SIGINT/SIGTERM end any command cooperatively, with its partial report
    _build_only(sys.argv[1:2])
    app()


def _build_only(first: list[str]) -> None:
    """When the first word names a command, Typer builds only that one: building the click
    command of every registered function (signatures, annotations, parameters) costs
    ~15 ms at every start, ~2 ms for one. Anything else (an option, --help, a typo, a
    completion request) keeps the whole tree, so root help and click's errors are unchanged.
    The root callback (--version) keeps the app a group: the command word is still needed."""
    if not first:
        return
    word = first[0]
    commands = [c for c in app.registered_commands if c.name == word]
    groups = [g for g in app.registered_groups if g.name == word]
    if commands or groups:
        app.registered_commands[:] = commands
        app.registered_groups[:] = groups
