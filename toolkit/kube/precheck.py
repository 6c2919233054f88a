"""Check before touching: podtriage's arguments (everything after ``--``) are parsed by
podtriage's own command line, in the plugin process, before any ``kubectl debug`` or Job.

An ephemeral container can never be removed from a pod spec: one added to a production pod
only to exit 2 on a typo (``-- diagnos NAME``) is junk forever. So the plugin parses the
arguments with the same Typer application the container runs (options, types, ranges,
names: ``toolkit.cli.validate``), without running the command, and refuses a usage error
with podtriage's own message (exit 2, nothing created). A plugin option written after
``--`` (``-- diagnose x --corefiles``) is refused with the place it belongs. ``--help``
after ``--`` prints podtriage's help here, and nothing is started.

What the parse cannot judge is left to the container: files named on the command line
exist in the container, not here (podtriage checks them when it runs), and so do network
interfaces: a link-local address's ``%IF`` scope is checked against ``lo`` here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from toolkit.kube.argv import Usage, plugin_flag, shown

# fe80::1%eth0, [fe80::1%eth0]:53, fe80::1%eth0:53 inside a comma list: the scope names an
# interface of the container's network namespace
_SCOPED = re.compile(r"(?i)(fe[89ab][0-9a-f]?:[0-9a-f:.]*)%([^\],\s]+)")

# the runbooks' command lines (scripts/runbooks/*.sh: their own parsers, mirrored here):
# valued options, whether each value is a number, and how many positional words
RUNBOOK_ARGS: dict[str, tuple[dict[str, bool], int, int]] = {
    "service-unreachable": ({"--reference": False, "--corefile": False, "--server": False}, 1, 2),
    "dns-slow": ({"-d": True, "-i": False, "-t": False, "-n": True}, 0, 0),
    "check-coredns-config": ({}, 0, 1_000),
}


RUNBOOK_HELP = {
    "service-unreachable": "service-unreachable.sh NAME [PORT] [--reference IP]... [--corefile "
                           "FILE]...: one podtriage diagnose, its JSON, the next step",
    "dns-slow": "dns-slow.sh [-d SECONDS] [-i INTERFACE] [-t TARGET] [-n COUNT]: a DNS capture, "
                "then the conntrack race test against the first nameserver",
    "check-coredns-config": "check-coredns-config.sh [FILE...]: podtriage corefile lint and "
                            "check of the Corefiles or ConfigMaps named",
}


class Help(Exception):
    """Help was asked for after --: ``text`` to print (empty: podtriage's own help was
    printed by its parser); nothing to start."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.text = text


def _command() -> Any:
    """podtriage's click command tree (Any: click's objects, vendored by Typer, untyped)."""
    import typer.main

    from toolkit.cli import app

    return typer.main.get_command(app)


def _rest(ctx: Any) -> list[str]:
    # what a group left for its subcommand (Typer 0.28's vendored click keeps it in
    # _protected_args + args; pinned in pyproject.toml, checked by the plugin's unit tests)
    protected = getattr(ctx, "_protected_args", None)
    if protected is None:
        protected = getattr(ctx, "protected_args", [])
    return [*protected, *ctx.args]


def _where(ctx: Any) -> str:
    return " ".join(shown(p) for p in ctx.command_path.split()) or "podtriage"


def check_podtriage_args(args: Sequence[str], *, fleet: bool = False) -> None:
    """Usage (exit 2) when podtriage would refuse ``args``; Help when they ask for help
    (printed); nothing else happens."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, NoSuchOption

    from typer import Exit

    if not args:
        raise Usage("give podtriage's arguments after --, e.g. -- diagnose NAME")
    local = [_SCOPED.sub(r"\1%lo", a) for a in args]
    cmd = _command()
    ctx: Any = None
    try:
        ctx = cmd.make_context("podtriage", list(local))
        while hasattr(cmd, "commands"):
            rest = _rest(ctx)
            if not rest:
                if not getattr(cmd, "invoke_without_command", False):
                    raise Usage("podtriage needs a command after --, e.g. -- diagnose NAME")
                break
            name, sub, tail = cmd.resolve_command(ctx, rest)
            cmd = sub
            ctx = sub.make_context(name, tail, parent=ctx)
    except Exit:
        raise Help() from None
    except NoArgsIsHelpError as e:
        sub = sorted(getattr(e.ctx.command, "commands", {})) if e.ctx is not None else []
        raise Usage("%s needs a command after it%s" % (
            _where(e.ctx) if e.ctx is not None else "podtriage",
            ": " + ", ".join(sub) if sub else "")) from None
    except NoSuchOption as e:
        misplaced = plugin_flag(e.option_name)
        where = _where(e.ctx) if e.ctx is not None else "podtriage"
        if e.ctx is not None and e.ctx.parent is None and misplaced in ("-o", "--output"):
            raise Usage("podtriage's own options go after its command: -- diagnose NAME -o "
                        "json (before --, -o is the format of a fleet's merged report)") from None
        if misplaced is not None:
            raise Usage("%s is an option of kubectl podtriage, not of %s: put it before --, "
                        "e.g. kubectl podtriage %s%s ... -- %s" % (
                            shown(misplaced), where, "pods -l SELECTOR " if fleet else "POD ",
                            shown(misplaced), " ".join(shown(a) for a in args[:2]))) from None
        raise Usage("%s: %s" % (where, shown(e.format_message()))) from None
    except ClickException as e:
        err_ctx = getattr(e, "ctx", None)
        where = _where(err_ctx) if err_ctx is not None else "podtriage"
        raise Usage("%s: %s" % (where, shown(e.format_message()))) from None


def check_runbook_args(runbook: str, args: Sequence[str]) -> None:
    """Usage when the runbook's own parser would refuse ``args`` (scripts/runbooks)."""
    options, low, high = RUNBOOK_ARGS[runbook]
    words: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a in ("-h", "--help"):
            raise Help("runbook %s\n" % RUNBOOK_HELP[runbook])
        if a.startswith("-") and a != "-":
            if a not in options:
                hint = plugin_flag(a)
                raise Usage("%s: unknown option %s%s" % (runbook, shown(a), (
                    " (an option of kubectl podtriage: put it before --)" if hint else "")))
            if i >= len(args):
                raise Usage("%s: %s needs a value" % (runbook, shown(a)))
            if options[a] and not args[i].isdigit():
                raise Usage("%s: %s takes a whole number, not %s" % (runbook, a, shown(args[i])))
            i += 1
        else:
            words.append(a)
    if not low <= len(words) <= high:
        raise Usage("%s takes %s" % (runbook, {
            "service-unreachable": "NAME [PORT] after --",
            "dns-slow": "no words after -- (only -d, -i, -t, -n)",
        }.get(runbook, "FILE... after --")))
    if runbook == "service-unreachable" and len(words) == 2 and not words[1].isdigit():
        raise Usage("service-unreachable: PORT must be a number, not %s" % shown(words[1]))
