"""The ``kubectl-podtriage`` console script: parse argv, run the mode (``toolkit.kube``'s
``ephemeral``, ``jobs`` or ``fleet``), exit.

Hand-parsed rather than Typer: kubectl plugin syntax puts a free POD word and the two mode
words (``pods``, ``nodes``) in one position, and everything after ``--`` belongs to podtriage.
Bad usage prints the usage and exits 2; anything the plugin could not observe exits 3.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from toolkit import DEFAULT_IMAGE
from toolkit.errors import EXIT_OK, EXIT_USAGE, PodtriageError
from toolkit.kube.kubectl import Kubectl
from toolkit.kube.specs import Profile
from toolkit.report import OutputFormat

PROG = "kubectl podtriage"

USAGE = f"""\
Usage:
  {PROG} POD [-n NS] [-c CONTAINER] [--image IMG] [--corefiles] -- PODTRIAGE-ARGS...
  {PROG} POD [-n NS] [-c CONTAINER] --runbook NAME [-- RUNBOOK-ARGS...]
  {PROG} --node NODE [-n JOB-NS] [--image IMG] [-- PODTRIAGE-ARGS...]
  {PROG} pods -l SELECTOR [-n NS | -A] [--max N] [--parallel P] [--yes] [-o FMT] -- diagnose NAME ...
  {PROG} nodes [--node NAME]... [-l NODE-SELECTOR | --all] [-n JOB-NS] [-o FMT] [-- ARGS...]

Pod mode adds an ephemeral container to POD (kubectl debug --target CONTAINER
--profile=netadmin: the pod's network namespace, its processes, NET_RAW and NET_ADMIN),
follows its log and exits with podtriage's exit code (0 ok, 1 problem found, 3 could not
observe, 4 internal error). Ephemeral containers cannot be removed: one call does the
whole triage, so give podtriage everything at once.

--node NODE runs podtriage (default: conntrack) once on NODE as a Job: hostNetwork, NET_ADMIN
and NET_RAW, the image's non-root user; the Job is deleted afterwards.

'pods' runs podtriage in every running pod matching -l (one ephemeral container each, at
most --parallel at a time, one deadline for all) and prints one merged report; above --max
pods (default 20) it asks for --yes. 'nodes' runs one Job per node and merges.

Options:
  -n, --namespace NS     namespace of POD / of the pods / of the node Jobs (default: the
                         context's)
  -A, --all-namespaces   pods: match in every namespace
  -c, --container NAME   container to target (default: the pod's first container)
  -l, --selector SEL     pods: label selector of the pods; nodes: of the nodes
      --all              nodes: every node
      --image IMG        podtriage image (default: $PODTRIAGE_IMAGE or {DEFAULT_IMAGE})
      --profile P        kubectl debug profile (default: netadmin, or baseline/restricted
                         where the namespace enforces that PodSecurity level)
      --corefiles        fetch kube-system's coredns, coredns-custom, nodelocaldns and
                         node-local-dns ConfigMaps with your kubectl (those that exist)
                         and hand them to 'diagnose --corefile'
      --runbook NAME     run the image's runbook NAME (dns-slow, service-unreachable,
                         check-coredns-config) instead of one podtriage command
      --max N            pods: ask for --yes above N pods (default 20)
      --parallel P       pods/nodes: at most P at a time (default 5 pods, 10 nodes)
  -y, --yes              pods: go on above --max
      --timeout SECONDS  one deadline for the whole run (default 300)
  -o, --output FMT       pods/nodes: merged report as table, json, ndjson or markdown
      --dry-run          print the ephemeral-container spec or the Job manifests (YAML)
                         without contacting the cluster
      --context CTX, --kubeconfig FILE   passed to every kubectl call
  -h, --help             this text

Examples:
  {PROG} web-7d9c -n shop -- diagnose api.corp.example --port 443 --reference 10.0.0.53
  {PROG} web-7d9c -n shop --corefiles -- diagnose api.corp.example -o json
  {PROG} pods -l app=web -n shop -- diagnose api.corp.example --port 443
  {PROG} nodes --all -n podtriage -- conntrack race-test 169.254.25.10
"""


class Usage(Exception):
    """Bad usage: the message, then the usage text, exit 2."""


class Mode(StrEnum):
    """The mode words that take the place of POD."""

    PODS = "pods"
    NODES = "nodes"


VALUED = {"-n": "namespace", "--namespace": "namespace", "-c": "container",
          "--container": "container", "--image": "image", "--node": "node",
          "--runbook": "runbook", "--context": "context", "--kubeconfig": "kubeconfig",
          "-l": "selector", "--selector": "selector", "--max": "max", "--parallel": "parallel",
          "--timeout": "timeout", "-o": "output", "--output": "output", "--profile": "profile"}
FLAGS = {"--corefiles": "corefiles", "-A": "all_namespaces", "--all-namespaces": "all_namespaces",
         "--all": "all", "-y": "yes", "--yes": "yes", "--dry-run": "dry_run"}
_KUBECTL_FLAGS = ("context", "kubeconfig")       # passed to every kubectl call
_MODE_WORDS = {m.value: m for m in Mode}
_OUTPUTS = {f.value: f for f in OutputFormat}


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """The command line, sorted: option values and flags by key (VALUED, FLAGS), the --node
    names, the free words, podtriage's arguments (after --) and kubectl's own flags."""

    values: Mapping[str, str]
    flags: frozenset[str]
    nodes: tuple[str, ...]
    positional: tuple[str, ...]
    args: tuple[str, ...] | None          # None: no --
    kflags: tuple[str, ...]
    help: bool = False

    def given(self, key: str) -> bool:
        """Whether option ``key`` (a VALUED or FLAGS key, or ``nodes``) is on the line."""
        if key == "nodes":
            return bool(self.nodes)
        return key in self.values or key in self.flags


def parse(argv: Sequence[str]) -> Parsed:
    """Sort argv into a Parsed; Usage for an unknown option, a missing or repeated value."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    nodes: list[str] = []
    positional: list[str] = []
    kflags: list[str] = []
    args: tuple[str, ...] | None = None
    want_help = False
    argv = list(argv)
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args = tuple(argv[i:])
            break
        name, sep, val = a.partition("=") if a.startswith("--") else (a, "", "")
        if a in ("-h", "--help"):
            want_help = True
        elif name in VALUED:
            if not sep:
                if i >= len(argv):
                    raise Usage("%s needs a value" % a)
                val, i = argv[i], i + 1
            key = VALUED[name]
            if key in _KUBECTL_FLAGS:
                kflags.append("--%s=%s" % (key, val))
            elif key == "node":
                nodes.append(val)
            elif key in values:
                raise Usage("%s given twice" % name)
            else:
                values[key] = val
        elif a in FLAGS:
            flags.add(FLAGS[a])
        elif a.startswith("-") and a != "-":
            raise Usage("unknown option: %s" % a)
        else:
            positional.append(a)
    return Parsed(values=values, flags=frozenset(flags), nodes=tuple(nodes),
                  positional=tuple(positional), args=args, kflags=tuple(kflags), help=want_help)


def _int(p: Parsed, key: str, default: int, lo: int, hi: int) -> int:
    if key not in p.values:
        return default
    try:
        v = int(p.values[key])
    except ValueError:
        raise Usage("--%s must be a whole number, not %r" % (key, p.values[key])) from None
    if not lo <= v <= hi:
        raise Usage("--%s must be between %d and %d" % (key, lo, hi))
    return v


@dataclass(frozen=True, kw_only=True)
class Common:
    """The options every mode takes."""

    image: str
    profile: Profile | None
    timeout: float
    output: OutputFormat


def _common(p: Parsed) -> Common:
    image = p.values.get("image", os.environ.get("PODTRIAGE_IMAGE") or DEFAULT_IMAGE)
    if not image.strip():
        raise Usage("--image must not be empty")
    profile = None
    if "profile" in p.values:
        try:
            profile = Profile(p.values["profile"])
        except ValueError:
            raise Usage("unknown --profile %r (%s)" % (
                p.values["profile"], ", ".join(x.value for x in Profile))) from None
    timeout = float(_int(p, "timeout", 300, 5, 86400))
    output = p.values.get("output", "table")
    if output not in _OUTPUTS:
        raise Usage("unknown --output %r (table, json, ndjson, markdown)" % output)
    return Common(image=image, profile=profile, timeout=timeout, output=_OUTPUTS[output])


def _forbid(p: Parsed, keys: Sequence[str], why: str) -> None:
    for key in keys:
        if p.given(key):
            flag = {"nodes": "--node", "all_namespaces": "-A", "dry_run": "--dry-run"}.get(
                key, "--" + key.replace("_", "-"))
            raise Usage("%s %s" % (flag, why))


def _check_diagnose_args(p: Parsed, args: Sequence[str]) -> None:
    if not args:
        raise Usage("give podtriage's arguments after --, e.g. -- diagnose NAME")
    if "corefiles" in p.flags and args[0] != "diagnose":
        raise Usage("--corefiles goes with diagnose (got: %s)" % args[0])


def _pods(k: Kubectl, p: Parsed, c: Common) -> int:
    from toolkit.kube.fleet import PodsRequest, pods_mode

    if len(p.positional) > 1:
        raise Usage("'pods' takes no POD name; select pods with -l")
    _forbid(p, ["nodes", "runbook", "all"], "has no meaning with 'pods'")
    if not p.values.get("selector"):
        raise Usage("'pods' needs -l SELECTOR (the pods to triage)")
    if "all_namespaces" in p.flags and p.values.get("namespace"):
        raise Usage("-n and -A exclude each other")
    args = p.args or ()
    _check_diagnose_args(p, args)
    req = PodsRequest(
        selector=p.values["selector"], namespace=p.values.get("namespace"),
        all_namespaces="all_namespaces" in p.flags, container=p.values.get("container"),
        image=c.image, args=args, max_pods=_int(p, "max", 20, 1, 10000),
        parallel=_int(p, "parallel", 5, 1, 100), yes="yes" in p.flags,
        corefiles="corefiles" in p.flags, profile=c.profile, timeout_s=c.timeout,
        output=c.output, dry_run="dry_run" in p.flags)
    if not req.dry_run:
        k.check_binary()
    return pods_mode(k, req)


def _nodes(k: Kubectl, p: Parsed, c: Common, *, single: bool) -> int:
    from toolkit.kube.fleet import nodes_mode
    from toolkit.kube.jobs import NodesRequest, node_mode

    if not single and len(p.positional) > 1:
        raise Usage("'nodes' takes nodes as --node NAME")
    _forbid(p, ["container", "runbook", "corefiles", "all_namespaces", "max", "yes",
                "profile"], "has no meaning with node Jobs")
    if single:
        if len(p.nodes) > 1:
            raise Usage("one --node without 'nodes'; use 'nodes --node A --node B' for many")
        _forbid(p, ["selector", "all", "output"], "goes with 'nodes'")
    elif sum((bool(p.nodes), bool(p.values.get("selector")), "all" in p.flags)) != 1:
        raise Usage("'nodes' needs exactly one of --node NAME..., -l SELECTOR, --all")
    req = NodesRequest(
        nodes=p.nodes, selector=p.values.get("selector"), all_nodes="all" in p.flags,
        namespace=p.values.get("namespace"), image=c.image, args=p.args or ("conntrack",),
        parallel=_int(p, "parallel", 10, 1, 100), timeout_s=c.timeout, output=c.output,
        dry_run="dry_run" in p.flags)
    if not req.dry_run:
        k.check_binary()
    return node_mode(k, req) if single else nodes_mode(k, req)


def _pod(k: Kubectl, p: Parsed, c: Common) -> int:
    from toolkit.kube.ephemeral import RUNBOOKS, PodRequest, pod_dry_run, pod_mode

    pos = p.positional
    if not pos:
        raise Usage("POD is required (or pods -l SELECTOR, or --node NODE)")
    if len(pos) > 1:
        raise Usage("one pod only (got %r and %r); podtriage's arguments go after --"
                    % (pos[0], pos[1]))
    if p.nodes:
        raise Usage("--node and POD exclude each other")
    _forbid(p, ["selector", "all", "all_namespaces", "max", "parallel", "yes", "output"],
            "goes with 'pods' or 'nodes', not with one POD")
    runbook = p.values.get("runbook")
    if runbook is not None:
        if runbook not in RUNBOOKS:
            raise Usage("unknown runbook: %s (%s)" % (runbook, ", ".join(RUNBOOKS)))
        if "corefiles" in p.flags:
            raise Usage("--corefiles goes with diagnose, not --runbook")
    else:
        _check_diagnose_args(p, p.args or ())
    req = PodRequest(pod=pos[0].removeprefix("pod/"), namespace=p.values.get("namespace"),
                     container=p.values.get("container"), image=c.image, args=p.args or (),
                     runbook=runbook, corefiles="corefiles" in p.flags, profile=c.profile,
                     timeout_s=c.timeout)
    if "dry_run" in p.flags:
        return pod_dry_run(req)
    k.check_binary()
    return pod_mode(k, req)


def dispatch(argv: Sequence[str]) -> int:
    """Run the command line ``argv``: the exit code (Usage and PodtriageError propagate)."""
    p = parse(argv)
    if p.help:
        print(USAGE, end="")
        return EXIT_OK
    c = _common(p)
    k = Kubectl(flags=p.kflags)
    pos = p.positional
    mode = _MODE_WORDS.get(pos[0]) if pos else None
    if mode is Mode.PODS:
        return _pods(k, p, c)
    if mode is Mode.NODES or (p.nodes and not pos):
        return _nodes(k, p, c, single=mode is None)
    return _pod(k, p, c)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run, print the error and hint of what failed, exit with its code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = dispatch(argv)
    except Usage as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        code = EXIT_USAGE
    except PodtriageError as e:
        print("%s: %s" % (PROG, e.message), file=sys.stderr)
        if e.hint:
            print("%s: hint: %s" % (PROG, e.hint), file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        print("%s: interrupted" % PROG, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # fleet workers may still sit in a kubectl call (bounded by the deadline); their
        # Jobs are already deleted: do not wait for them at interpreter exit
        os._exit(128 + signal.SIGINT)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
