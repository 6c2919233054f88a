"""The ``kubectl-podtriage`` console script: parse argv, call toolkit.kube.plugin, exit.

Hand-parsed rather than Typer: kubectl plugin syntax puts a free POD word and the two mode
words (``pods``, ``nodes``) in one position, and everything after ``--`` belongs to podtriage.
Bad usage prints the usage and exits 2; anything the plugin could not observe exits 3.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from toolkit import DEFAULT_IMAGE
from toolkit.errors import EXIT_USAGE, PodtriageError
from toolkit.kube.specs import Profile

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
    pass


VALUED = {"-n": "namespace", "--namespace": "namespace", "-c": "container",
          "--container": "container", "--image": "image", "--node": "node",
          "--runbook": "runbook", "--context": "context", "--kubeconfig": "kubeconfig",
          "-l": "selector", "--selector": "selector", "--max": "max", "--parallel": "parallel",
          "--timeout": "timeout", "-o": "output", "--output": "output", "--profile": "profile"}
FLAGS = {"--corefiles": "corefiles", "-A": "all_namespaces", "--all-namespaces": "all_namespaces",
         "--all": "all", "-y": "yes", "--yes": "yes", "--dry-run": "dry_run"}


def parse(argv: Sequence[str]) -> dict:
    opts: dict = {"nodes": [], "positional": [], "args": None, "kflags": []}
    i = 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        if a == "--":
            opts["args"] = argv[i + 1:]
            break
        if a in ("-h", "--help"):
            opts["help"] = True
            i += 1
            continue
        name, val = a, None
        if a.startswith("--") and "=" in a:
            name, val = a.split("=", 1)
        if name in VALUED:
            if val is None:
                if i + 1 >= len(argv):
                    raise Usage("%s needs a value" % a)
                val = argv[i + 1]
                i += 1
            key = VALUED[name]
            if key in ("context", "kubeconfig"):
                opts["kflags"].append("--%s=%s" % (key, val))
            elif key == "node":
                opts["nodes"].append(val)
            else:
                if key in opts:
                    raise Usage("%s given twice" % name)
                opts[key] = val
        elif a in FLAGS:
            opts[FLAGS[a]] = True
        elif a.startswith("-") and a != "-":
            raise Usage("unknown option: %s" % a)
        else:
            opts["positional"].append(a)
        i += 1
    return opts


def _int(opts: dict, key: str, default: int, lo: int, hi: int) -> int:
    if key not in opts:
        return default
    try:
        v = int(opts[key])
    except ValueError:
        raise Usage("--%s must be a whole number, not %r" % (key, opts[key])) from None
    if not lo <= v <= hi:
        raise Usage("--%s must be between %d and %d" % (key, lo, hi))
    return v


def _common(opts: dict) -> dict:
    image = opts.get("image", os.environ.get("PODTRIAGE_IMAGE") or DEFAULT_IMAGE)
    if not image.strip():
        raise Usage("--image must not be empty")
    profile = None
    if "profile" in opts:
        try:
            profile = Profile(opts["profile"])
        except ValueError:
            raise Usage("unknown --profile %r (%s)" % (
                opts["profile"], ", ".join(p.value for p in Profile))) from None
    timeout = float(_int(opts, "timeout", 300, 5, 86400))
    output = opts.get("output", "table")
    if output not in ("table", "json", "ndjson", "markdown"):
        raise Usage("unknown --output %r (table, json, ndjson, markdown)" % output)
    return {"image": image, "profile": profile, "timeout": timeout, "output": output}


def _forbid(opts: dict, keys: Sequence[str], why: str) -> None:
    for key in keys:
        if opts.get(key) not in (None, False, []):
            flag = {"nodes": "--node", "all_namespaces": "-A", "dry_run": "--dry-run"}.get(
                key, "--" + key.replace("_", "-"))
            raise Usage("%s %s" % (flag, why))


def dispatch(argv: Sequence[str]) -> int:
    from toolkit.kube import plugin
    from toolkit.kube.kubectl import Kubectl

    opts = parse(argv)
    if opts.get("help"):
        print(USAGE, end="")
        return 0
    c = _common(opts)
    k = Kubectl(flags=tuple(opts["kflags"]))
    pos = opts["positional"]
    args = opts["args"] or []
    mode = pos[0] if pos and pos[0] in ("pods", "nodes") else None
    if mode == "pods":
        if len(pos) > 1:
            raise Usage("'pods' takes no POD name; select pods with -l")
        _forbid(opts, ["nodes", "runbook", "all"], "has no meaning with 'pods'")
        if not opts.get("selector"):
            raise Usage("'pods' needs -l SELECTOR (the pods to triage)")
        if opts.get("all_namespaces") and opts.get("namespace"):
            raise Usage("-n and -A exclude each other")
        if not args:
            raise Usage("give podtriage's arguments after --, e.g. -- diagnose NAME")
        if opts.get("corefiles") and args[0] != "diagnose":
            raise Usage("--corefiles goes with diagnose (got: %s)" % args[0])
        req = plugin.PodsRequest(
            selector=opts["selector"], namespace=opts.get("namespace"),
            all_namespaces=bool(opts.get("all_namespaces")), container=opts.get("container"),
            image=c["image"], args=tuple(args), max_pods=_int(opts, "max", 20, 1, 10000),
            parallel=_int(opts, "parallel", 5, 1, 100), yes=bool(opts.get("yes")),
            corefiles=bool(opts.get("corefiles")), profile=c["profile"],
            timeout_s=c["timeout"], output=c["output"], dry_run=bool(opts.get("dry_run")))
        if not req.dry_run:
            k.check_binary()
        return plugin.pods_mode(k, req)
    if mode == "nodes" or (opts["nodes"] and not pos):
        single = mode is None
        if mode == "nodes" and len(pos) > 1:
            raise Usage("'nodes' takes nodes as --node NAME")
        _forbid(opts, ["container", "runbook", "corefiles", "all_namespaces", "max", "yes",
                       "profile"], "has no meaning with node Jobs")
        if single:
            if len(opts["nodes"]) > 1:
                raise Usage("one --node without 'nodes'; use 'nodes --node A --node B' for many")
            _forbid(opts, ["selector", "all", "output"], "goes with 'nodes'")
        else:
            given = sum(bool(x) for x in (opts["nodes"], opts.get("selector"), opts.get("all")))
            if given != 1:
                raise Usage("'nodes' needs exactly one of --node NAME..., -l SELECTOR, --all")
        req = plugin.NodesRequest(
            nodes=tuple(opts["nodes"]), selector=opts.get("selector"),
            all_nodes=bool(opts.get("all")), namespace=opts.get("namespace"), image=c["image"],
            args=tuple(args or ["conntrack"]), parallel=_int(opts, "parallel", 10, 1, 100),
            timeout_s=c["timeout"], output=c["output"], dry_run=bool(opts.get("dry_run")))
        if not req.dry_run:
            k.check_binary()
        return plugin.nodes_mode(k, req, single=single)
    # pod mode
    if not pos:
        raise Usage("POD is required (or pods -l SELECTOR, or --node NODE)")
    if len(pos) > 1:
        raise Usage("one pod only (got %r and %r); podtriage's arguments go after --"
                    % (pos[0], pos[1]))
    if opts["nodes"]:
        raise Usage("--node and POD exclude each other")
    _forbid(opts, ["selector", "all", "all_namespaces", "max", "parallel", "yes", "output"],
            "goes with 'pods' or 'nodes', not with one POD")
    pod = pos[0][4:] if pos[0].startswith("pod/") else pos[0]
    runbook = opts.get("runbook")
    if runbook is not None:
        if runbook not in plugin.RUNBOOKS:
            raise Usage("unknown runbook: %s (%s)" % (runbook, ", ".join(plugin.RUNBOOKS)))
        if opts.get("corefiles"):
            raise Usage("--corefiles goes with diagnose, not --runbook")
    else:
        if not args:
            raise Usage("give podtriage's arguments after --, e.g. -- diagnose NAME")
        if opts.get("corefiles") and args[0] != "diagnose":
            raise Usage("--corefiles goes with diagnose (got: %s)" % args[0])
    req = plugin.PodRequest(pod=pod, namespace=opts.get("namespace"),
                            container=opts.get("container"), image=c["image"],
                            args=tuple(args), runbook=runbook,
                            corefiles=bool(opts.get("corefiles")), profile=c["profile"],
                            timeout_s=c["timeout"])
    if opts.get("dry_run"):
        return plugin.pod_dry_run(req)
    k.check_binary()
    return plugin.pod_mode(k, req)


def main(argv: Sequence[str] | None = None) -> None:
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
        os._exit(130)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
