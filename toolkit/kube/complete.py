"""Shell completion for ``kubectl podtriage`` (kubectl >= 1.26 runs ``kubectl_complete-podtriage
ARGS... WORD`` for a plugin and reads Cobra's ``__complete`` answer: one candidate per
line, then ``:DIRECTIVE``). Before ``--``: the mode words, pods, namespaces, containers,
nodes, profiles, runbooks and formats (asked with the user's kubectl and the global flags
typed so far); after ``--``: podtriage's own completion (Typer's, as ``podtriage`` gives it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from toolkit.kube.argv import FLAGS, KUBECTL_VALUED, VALUED, Usage, parse
from toolkit.kube.kubectl import Kubectl

# Cobra's ShellCompDirective values (spf13/cobra completions.go)
DEFAULT = 0
NO_FILES = 4


def _names(k: Kubectl, args: list[str]) -> list[str]:
    """``kubectl get ... -o name`` without the kind prefix; [] when kubectl cannot say."""
    p = k.run([*args, "-o", "name"], timeout=5)
    if p.returncode != 0:
        return []
    return [line.partition("/")[2] for line in p.stdout.split() if "/" in line]


def _podtriage(words: Sequence[str], current: str) -> list[str]:
    """podtriage's own candidates for the words after --."""
    import typer.main
    from typer._completion_classes import BashComplete

    from toolkit.cli import app

    shell = BashComplete(typer.main.get_command(app), {}, "podtriage", "_PODTRIAGE_COMPLETE")
    return [item.value for item in shell.get_completions(list(words), current)]


def _value(flag: str, k: Kubectl, namespace: list[str], pod: str | None) -> tuple[list[str], int]:
    from toolkit.kube.ephemeral import RUNBOOKS
    from toolkit.kube.specs import Profile
    from toolkit.report import OutputFormat

    key = VALUED.get(flag, "")
    if key == "namespace":
        return _names(k, ["get", "namespaces"]), NO_FILES
    if key == "container" and pod:
        out = k.run(["get", "pod", pod, *namespace, "-o",
                     "jsonpath={.spec.containers[*].name}"], timeout=5)
        return (out.stdout.split() if out.returncode == 0 else []), NO_FILES
    if key == "node":
        return _names(k, ["get", "nodes"]), NO_FILES
    if key == "profile":
        return [p.value for p in Profile], NO_FILES
    if key == "runbook":
        return list(RUNBOOKS), NO_FILES
    if key == "output":
        return [f.value for f in OutputFormat], NO_FILES
    if key == "dns_service":
        from toolkit.kube.endpoints import KNOWN_SERVICES

        return list(KNOWN_SERVICES), NO_FILES
    if key == "custom" or flag in ("--kubeconfig", "--certificate-authority",
                                   "--client-certificate", "--client-key"):
        return [], DEFAULT                       # a file: the shell completes it
    return [], NO_FILES


def candidates(words: Sequence[str]) -> tuple[list[str], int]:
    """The candidates for the last word of ``words`` (the word being typed, maybe '')."""
    done, current = list(words[:-1]), (words[-1] if words else "")
    if "--" in done:
        return _podtriage(done[done.index("--") + 1:], current), NO_FILES
    prev = done[-1] if done else ""
    valued = prev in VALUED or prev in KUBECTL_VALUED or prev in ("-s", "-v")
    try:
        p = parse(done[:-1] if valued else done)
    except Usage:
        return [], NO_FILES
    k = Kubectl(flags=p.kflags)
    namespace = ["-n", p.values["namespace"]] if "namespace" in p.values else []
    pod = p.positional[0] if p.positional and p.positional[0] not in ("pods", "nodes") else None
    if valued:
        return _value(prev, k, namespace, pod)
    if current.startswith("-"):
        return sorted(f for f in [*VALUED, *FLAGS, *KUBECTL_VALUED] if f.startswith(current)), NO_FILES
    if not p.positional and not p.nodes:
        pods = _names(k, ["get", "pods", *namespace])
        words_ = ["pods", "nodes", *("node/" + n for n in _names(k, ["get", "nodes"])), *pods]
        return [w for w in words_ if w.startswith(current)], NO_FILES
    return ["--"] if not current else [], NO_FILES


def complete(words: list[str]) -> int:
    """Print the candidates and the directive (Cobra's format); always exit 0."""
    from toolkit.kube.output import write_out

    try:
        cands, directive = candidates(words or [""])
    except Exception:  # noqa: BLE001 - completion must never print a traceback into a shell
        cands, directive = [], NO_FILES
    safe = [c for c in cands if c.isprintable() and "\t" not in c]
    write_out("".join(c + "\n" for c in safe) + ":%d\n" % directive)
    return 0


def main() -> None:
    """The ``kubectl_complete-podtriage`` console script (kubectl runs it to complete)."""
    from toolkit.errors import PodtriageError

    try:
        code = complete(sys.argv[1:])
    except PodtriageError as e:          # stdout closed or full: the shell gets nothing
        code = e.exit_code
    sys.exit(code)
