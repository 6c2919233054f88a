"""The plugin's command line, parsed as kubectl parses its own (spf13/pflag conventions):
``-n shop``, ``-nshop``, ``-n=shop``, ``--namespace shop``, ``--namespace=shop``; chained
boolean shorthands (``-Aq``); kubectl's global flags (``kubectl options``) taken wherever
they stand and handed to every kubectl call; everything after ``--`` is podtriage's.

Hand-written rather than Typer: kubectl plugin syntax puts a free POD word, ``node/NAME``
and the two mode words (``pods``, ``nodes``) in one position, and kubectl's flags must
pass through untouched. The one-letter flags mean what they mean in kubectl: ``-n``
namespace, ``-c`` container, ``-o`` output, ``-l`` selector, ``-A`` all namespaces, ``-q``
quiet, ``-s`` server, ``-v`` kubectl's log level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from toolkit.report.sanitize import for_terminal


class Usage(Exception):
    """Bad usage: the message, then the usage text, exit 2."""


# the plugin's own options that take a value: flag -> key
VALUED = {"-n": "namespace", "--namespace": "namespace", "-c": "container",
          "--container": "container", "--image": "image", "--node": "node",
          "--runbook": "runbook", "-l": "selector", "--selector": "selector", "--max": "max",
          "--parallel": "parallel", "--timeout": "timeout", "-o": "output", "--output": "output",
          "--profile": "profile", "--custom": "custom", "--job-ttl": "job_ttl",
          "--dns-service": "dns_service"}
REPEATABLE = frozenset({"node"})
FLAGS = {"--corefiles": "corefiles", "-A": "all_namespaces", "--all-namespaces": "all_namespaces",
         "--all": "all", "-y": "yes", "--yes": "yes", "--dry-run": "dry_run", "-q": "quiet",
         "--quiet": "quiet", "--no-retry": "no_retry", "-h": "help", "--help": "help",
         "--version": "version"}
# kubectl's global flags (kubectl options, v1.34) that make sense for the calls the plugin
# makes; --profile/--profile-output (kubectl's own CPU profiling) are left out: --profile
# is kubectl debug's profile here, as in `kubectl debug`.
KUBECTL_VALUED = {"--as", "--as-group", "--as-uid", "--cache-dir", "--certificate-authority",
                  "--client-certificate", "--client-key", "--cluster", "--context",
                  "--kubeconfig", "--kuberc", "--password", "--request-timeout", "--server",
                  "--tls-server-name", "--token", "--user", "--username", "--v", "--vmodule",
                  "--log-flush-frequency"}
KUBECTL_SHORT = {"-s": "--server", "-v": "--v"}
KUBECTL_BOOL = {"--disable-compression", "--insecure-skip-tls-verify", "--match-server-version",
                "--warnings-as-errors"}
_SHORT_VALUED = {f for f in VALUED if len(f) == 2} | set(KUBECTL_SHORT)
_SHORT_BOOL = {f for f in FLAGS if len(f) == 2}


def flag_names(key: str) -> str:
    """How a key is spelled on the command line (for messages): '-n/--namespace'."""
    names = [f for f, k in {**VALUED, **FLAGS}.items() if k == key]
    return "/".join(sorted(names, key=len)) or "--" + key.replace("_", "-")


def shown(text: str) -> str:
    """An argument echoed in a message: control, bidi and line-break characters escaped."""
    return for_terminal(text)


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """The command line, sorted: option values and flags by key, the repeated ones, the
    free words, podtriage's arguments (after --), kubectl's global flags (``--name=value``)
    and the plugin's own words before -- (for the exact command of a retry hint)."""

    values: Mapping[str, str]
    multi: Mapping[str, tuple[str, ...]]
    flags: frozenset[str]
    positional: tuple[str, ...]
    args: tuple[str, ...] | None          # None: no --
    kflags: tuple[str, ...]
    before: tuple[str, ...]

    def given(self, key: str) -> bool:
        """Whether option ``key`` is on the line."""
        return key in self.values or key in self.flags or bool(self.multi.get(key))

    @property
    def nodes(self) -> tuple[str, ...]:
        """The --node NAME values (and node/NAME words)."""
        return self.multi.get("node", ())


class _State:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.multi: dict[str, list[str]] = {}
        self.flags: set[str] = set()
        self.positional: list[str] = []
        self.kflags: list[str] = []

    def value(self, key: str, val: str) -> None:
        if key in REPEATABLE:
            self.multi.setdefault(key, []).append(val)
        elif key in self.values:
            raise Usage("%s given twice" % flag_names(key))
        else:
            self.values[key] = val


def _long(a: str, argv: list[str], i: int, st: _State) -> int:
    name, sep, val = a.partition("=")
    if name in VALUED or name in KUBECTL_VALUED:
        if not sep:
            if i >= len(argv) or argv[i] == "--":
                raise Usage("%s needs a value" % shown(name))
            val, i = argv[i], i + 1
        if name in VALUED:
            st.value(VALUED[name], val)
        else:
            st.kflags.append("%s=%s" % (name, val))
    elif name in KUBECTL_BOOL:
        if sep and val.lower() not in ("true", "false", "1", "0", "t", "f"):
            raise Usage("%s takes true or false, not %s" % (name, shown(val)))
        st.kflags.append(a)
    elif name in FLAGS and not sep:
        st.flags.add(FLAGS[name])
    elif name in FLAGS:
        raise Usage("%s takes no value" % shown(name))
    else:
        raise Usage("unknown option: %s" % shown(name))
    return i


def _short(a: str, argv: list[str], i: int, st: _State) -> int:
    """-x, -xVALUE, -x=VALUE, -x VALUE, and chained booleans (-Aq, -qnshop)."""
    j = 1
    while j < len(a):
        f = "-" + a[j]
        rest = a[j + 1:]
        if f in _SHORT_VALUED:
            if rest:
                val = rest[1:] if rest.startswith("=") else rest
            elif i < len(argv) and argv[i] != "--":
                val, i = argv[i], i + 1
            else:
                raise Usage("%s needs a value" % f)
            if f in KUBECTL_SHORT:
                st.kflags.append("%s=%s" % (KUBECTL_SHORT[f], val))
            else:
                st.value(VALUED[f], val)
            return i
        if f in _SHORT_BOOL:
            st.flags.add(FLAGS[f])
            j += 1
            continue
        raise Usage("unknown option: %s" % shown(f if j > 1 else a))
    return i


def parse(argv: Sequence[str]) -> Parsed:
    """Sort argv into a Parsed; Usage for an unknown option, a missing or repeated value."""
    st = _State()
    args: tuple[str, ...] | None = None
    items = list(argv)
    i = 0
    while i < len(items):
        a = items[i]
        i += 1
        if a == "--":
            args = tuple(items[i:])
            break
        if a.startswith("--"):
            i = _long(a, items, i, st)
        elif a.startswith("-") and a != "-":
            i = _short(a, items, i, st)
        elif a.startswith("node/") or a.startswith("nodes/"):
            st.value("node", a.partition("/")[2])      # kubectl debug node/NAME
        else:
            st.positional.append(a)
    before = tuple(items[: len(items) - len(args) - 1]) if args is not None else tuple(items)
    return Parsed(values=st.values, multi={k: tuple(v) for k, v in st.multi.items()},
                  flags=frozenset(st.flags), positional=tuple(st.positional), args=args,
                  kflags=tuple(st.kflags), before=before)


def plugin_flag(arg: str) -> str | None:
    """The plugin option ``arg`` spells (``--corefiles``, ``-n``, ``--image=x``...), or None."""
    if arg.startswith("--"):
        name = arg.partition("=")[0]
        return name if name in VALUED or name in FLAGS or name in KUBECTL_VALUED \
            or name in KUBECTL_BOOL else None
    if arg.startswith("-") and len(arg) >= 2 and ("-" + arg[1]) in _SHORT_VALUED | _SHORT_BOOL:
        return "-" + arg[1]
    return None
