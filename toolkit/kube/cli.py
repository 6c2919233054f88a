"""The ``kubectl-podtriage`` console script: parse argv (``toolkit.kube.argv``), check
podtriage's arguments before touching anything (``toolkit.kube.precheck``), run the mode
(``ephemeral``, ``nodedebug``, ``fleet``), exit.

Bad usage prints the reason and a usage line and exits 2 with nothing created; anything the
plugin could not observe exits 3; a closed stdout 141, quietly; a full one 3, in one line.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from toolkit import DEFAULT_IMAGE, __version__
from toolkit.errors import (
    EXIT_OK, EXIT_USAGE, InputFileError, OutputClosed, OutputError, PodtriageError,
)
from toolkit.kube.argv import Parsed, Usage, flag_names, parse, shown
from toolkit.kube.endpoints import DnsService
from toolkit.kube.ephemeral import RUNBOOKS, Retry
from toolkit.kube.kubectl import JsonObject, Kubectl
from toolkit.kube.output import PROG, err_line, progress, say, write_out
from toolkit.kube.specs import Profile
from toolkit.report import OutputFormat

USAGE = f"""\
Usage:
  {PROG} POD [-n NS] [-c CONTAINER] [--image IMG] [--corefiles] -- PODTRIAGE-ARGS...
  {PROG} POD [-n NS] [-c CONTAINER] --runbook NAME [-- RUNBOOK-ARGS...]
  {PROG} node/NODE | --node NODE [-n NS] [--image IMG] [-- PODTRIAGE-ARGS...]
  {PROG} pods -l SELECTOR [-n NS | -A] [--max N] [--parallel P] [--yes] [-o FMT] -- diagnose NAME ...
  {PROG} nodes [--node NAME]... [-l NODE-SELECTOR | --all] [-n JOB-NS] [-o FMT] [-- ARGS...]

Pod mode adds an ephemeral container to POD (kubectl debug --target CONTAINER
--profile=netadmin: the pod's network namespace, its processes, NET_RAW and NET_ADMIN),
follows its log and exits with podtriage's exit code (0 ok, 1 problem found, 5 could not
tell, 3 could not observe, 4 internal error). Ephemeral containers cannot be removed: podtriage's arguments
are checked here first (a mistake exits 2 and adds nothing), and one call does the whole
triage, so give podtriage everything at once.

--node NODE runs podtriage (default: conntrack) once on NODE with kubectl debug node/NODE
--profile=netadmin (host network, NET_ADMIN and NET_RAW) and deletes the pod afterwards.

'pods' runs podtriage in every running pod matching -l (one ephemeral container each, at
most --parallel at a time, one deadline for all) and prints one merged report; above --max
pods (default 20) it asks for --yes. 'nodes' runs one Job per node and merges.

Options:
  -n, --namespace NS     namespace of POD / of the pods / of the node pods and Jobs
                         (default: the context's)
  -A, --all-namespaces   pods: match in every namespace
  -c, --container NAME   container to target (default: the pod's
                         kubectl.kubernetes.io/default-container, else its first)
  -l, --selector SEL     pods: label selector of the pods; nodes: of the nodes
      --all              nodes: every node
      --image IMG        podtriage image (default: $PODTRIAGE_IMAGE or {DEFAULT_IMAGE})
      --profile P        kubectl debug profile: netadmin (default), baseline, restricted,
                         general, sysadmin, legacy; where the namespace enforces PodSecurity
                         baseline or restricted, the profile that level admits
      --custom FILE      kubectl debug --custom: a partial container spec (JSON/YAML)
      --no-retry         when PodSecurity refuses the profile, stop with the command to run
                         instead of retrying once with the profile the refusal admits
      --corefiles        fetch kube-system's coredns, coredns-custom, nodelocaldns and
                         node-local-dns ConfigMaps with your kubectl (those that exist)
                         and hand them to 'diagnose --corefile'
      --runbook NAME     run the image's runbook NAME (dns-slow, service-unreachable,
                         check-coredns-config) instead of one podtriage command
      --max N            pods: ask for --yes above N pods (default 20)
      --parallel P       pods/nodes: at most P at a time (default 5 pods, 10 nodes)
  -y, --yes              pods: go on above --max
      --timeout SECONDS  one deadline for the whole run (default 300)
      --job-ttl SECONDS  nodes: ttlSecondsAfterFinished of the Jobs (default 600)
      --dns-service NS/NAME  the cluster DNS Service whose EndpointSlices give conntrack
                         and diagnose --dns-endpoints (default kube-system/kube-dns;
                         OpenShift: openshift-dns/dns-default)
  -o, --output FMT       pods/nodes: merged report as table, json, ndjson or markdown
      --dry-run          print the ephemeral-container spec, the kubectl debug node/ command
                         or the Job manifests without contacting the cluster
  -q, --quiet            no progress lines (they go to stderr on a terminal, or with
                         PODTRIAGE_PROGRESS=1)
  -h, --help             this text;  --version  the plugin's version
kubectl's global flags (--context, --kubeconfig, --as, --as-group, --user, --cluster,
--server, --token, --request-timeout, -v...: see kubectl options) go to every kubectl call.

Examples:
  {PROG} web-7d9c -n shop -- diagnose api.corp.example --port 443 --reference 10.0.0.53
  {PROG} web-7d9c -n shop --corefiles -- diagnose api.corp.example -o json
  {PROG} pods -l app=web -n shop -- diagnose api.corp.example --port 443
  {PROG} nodes --all -n podtriage -- conntrack race-test 169.254.25.10
"""
SHORT_USAGE = ("Usage: %s POD [options] -- PODTRIAGE-ARGS   (%s --help for every mode and option)"
               % (PROG, PROG))


class Mode(StrEnum):
    """The mode words that take the place of POD."""

    PODS = "pods"
    NODES = "nodes"


_MODE_WORDS = {m.value: m for m in Mode}
_OUTPUTS = {f.value: f for f in OutputFormat}
CUSTOM_LIMIT = 1 << 20


def _int(p: Parsed, key: str, default: int, lo: int, hi: int) -> int:
    if key not in p.values:
        return default
    raw = p.values[key]
    if not (raw.isascii() and raw.strip().lstrip("+").isdigit() and len(raw) < 12):
        raise Usage("%s must be a whole number, not %s" % (flag_names(key), shown(repr(raw))))
    v = int(raw)
    if not lo <= v <= hi:
        raise Usage("%s must be between %d and %d" % (flag_names(key), lo, hi))
    return v


@dataclass(frozen=True, kw_only=True)
class Common:
    """The options every mode takes."""

    image: str
    profile: Profile | None
    custom: str | None
    custom_spec: JsonObject | None
    timeout: float
    output: OutputFormat
    retry: Retry
    dns_service: DnsService


def read_custom(path: str) -> JsonObject:
    """--custom FILE: a JSON or YAML mapping (a partial container spec), read before
    anything is created; InputFileError (exit 3) when it is missing or not a mapping."""
    import yaml

    try:
        with open(path, "rb") as f:
            raw = f.read(CUSTOM_LIMIT + 1)
    except OSError as e:
        raise InputFileError(shown(path), e.strerror or str(e)) from None
    if len(raw) > CUSTOM_LIMIT:
        raise InputFileError(shown(path), "larger than 1 MiB")
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
        raise InputFileError(shown(path), "not JSON or YAML: %s" % str(e).splitlines()[0]) from None
    if not isinstance(doc, dict):
        raise InputFileError(shown(path), "not a container spec (a JSON/YAML mapping)")
    return doc


def _retry(p: Parsed) -> Retry:
    rerun: list[str] = []
    skip = False
    for a in p.before:
        if skip:
            skip = False
        elif a == "--profile":
            skip = True
        elif not a.startswith(("--profile=", "--no-retry")):
            rerun.append(a)
    return Retry(auto="profile" not in p.values and "no_retry" not in p.flags,
                 rerun=tuple(rerun), args=p.args or ())


def _common(p: Parsed) -> Common:
    image = p.values.get("image", os.environ.get("PODTRIAGE_IMAGE") or DEFAULT_IMAGE)
    if not image.strip() or not image.isprintable() or " " in image:
        raise Usage("--image must be an image reference, not %s" % shown(repr(image)))
    profile = None
    if "profile" in p.values:
        try:
            profile = Profile(p.values["profile"])
        except ValueError:
            raise Usage("unknown --profile %s (%s)" % (shown(repr(p.values["profile"])),
                                                       ", ".join(x.value for x in Profile))) from None
    timeout = float(_int(p, "timeout", 300, 5, 86400))
    output = p.values.get("output", "table")
    if output not in _OUTPUTS:
        raise Usage("unknown --output %s (table, json, ndjson, markdown)" % shown(repr(output)))
    custom = p.values.get("custom")
    return Common(image=image, profile=profile, custom=custom,
                  custom_spec=read_custom(custom) if custom else None, timeout=timeout,
                  output=_OUTPUTS[output], retry=_retry(p),
                  dns_service=DnsService.parse(p.values.get("dns_service")))


def _with_dns(k: Kubectl, c: Common, args: tuple[str, ...]) -> tuple[str, ...]:
    """conntrack and diagnose get the DNS Service's live endpoints (issue 26), read with the
    user's kubectl; a read that fails is a note, never a failed run."""
    from toolkit.kube.endpoints import READ_TIMEOUT_S, add_dns_endpoints

    return add_dns_endpoints(k, args, c.dns_service, timeout=min(READ_TIMEOUT_S, c.timeout))


def _forbid(p: Parsed, keys: Sequence[str], why: str) -> None:
    for key in keys:
        if p.given(key):
            raise Usage("%s %s" % (flag_names(key), why))


def _checked(p: Parsed, *, fleet: bool = False, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """podtriage's arguments, checked by podtriage's own parser before anything is touched."""
    from toolkit.kube.precheck import check_podtriage_args

    args = p.args if p.args else default
    check_podtriage_args(args, fleet=fleet)
    if "corefiles" in p.flags and args[0] != "diagnose":
        raise Usage("--corefiles goes with diagnose (got: %s)" % shown(args[0]))
    return args


def _pods(k: Kubectl, p: Parsed, c: Common) -> int:
    from toolkit.kube.fleet import PodsRequest, pods_mode

    if len(p.positional) > 1:
        raise Usage("'pods' takes no POD name; select pods with -l")
    _forbid(p, ["node", "runbook", "all", "job_ttl"], "has no meaning with 'pods'")
    if not p.values.get("selector"):
        raise Usage("'pods' needs -l SELECTOR (the pods to triage)")
    if "all_namespaces" in p.flags and p.values.get("namespace"):
        raise Usage("-n and -A exclude each other")
    req = PodsRequest(
        selector=p.values["selector"], namespace=p.values.get("namespace"),
        all_namespaces="all_namespaces" in p.flags, container=p.values.get("container"),
        image=c.image, args=_checked(p, fleet=True), max_pods=_int(p, "max", 20, 1, 10000),
        parallel=_int(p, "parallel", 5, 1, 100), yes="yes" in p.flags,
        corefiles="corefiles" in p.flags, profile=c.profile, custom=c.custom, retry=c.retry,
        timeout_s=c.timeout, output=c.output, dry_run="dry_run" in p.flags)
    if not req.dry_run:
        k.check_binary()
        req = dataclasses.replace(req, args=_with_dns(k, c, req.args))
    return pods_mode(k, req, c.custom_spec)


def _nodes(k: Kubectl, p: Parsed, c: Common) -> int:
    from toolkit.kube.fleet import nodes_mode
    from toolkit.kube.jobs import NodesRequest

    if len(p.positional) > 1:
        raise Usage("'nodes' takes nodes as --node NAME")
    _forbid(p, ["container", "runbook", "corefiles", "all_namespaces", "max", "yes",
                "profile", "custom", "no_retry"], "has no meaning with node Jobs")
    if sum((bool(p.nodes), bool(p.values.get("selector")), "all" in p.flags)) != 1:
        raise Usage("'nodes' needs exactly one of --node NAME..., -l SELECTOR, --all")
    req = NodesRequest(
        nodes=p.nodes, selector=p.values.get("selector"), all_nodes="all" in p.flags,
        namespace=p.values.get("namespace"), image=c.image,
        args=_checked(p, fleet=True, default=("conntrack",)),
        parallel=_int(p, "parallel", 10, 1, 100), timeout_s=c.timeout,
        job_ttl_s=_int(p, "job_ttl", 600, 0, 7 * 86400), output=c.output,
        dry_run="dry_run" in p.flags)
    if not req.dry_run:
        k.check_binary()
        req = dataclasses.replace(req, args=_with_dns(k, c, req.args))
    return nodes_mode(k, req)


def _node(k: Kubectl, p: Parsed, c: Common) -> int:
    from toolkit.kube.nodedebug import NodeDebugRequest, node_debug_argv, node_mode

    if p.positional:
        raise Usage("--node and POD exclude each other (podtriage's arguments go after --)")
    if len(p.nodes) > 1:
        raise Usage("one --node without 'nodes'; use 'nodes --node A --node B' for many")
    _forbid(p, ["container", "runbook", "corefiles", "all_namespaces", "max", "yes", "selector",
                "all", "output", "parallel", "job_ttl"], "has no meaning with one --node")
    req = NodeDebugRequest(node=p.nodes[0], namespace=p.values.get("namespace"), image=c.image,
                           args=_checked(p, default=("conntrack",)), profile=c.profile,
                           custom=c.custom, timeout_s=c.timeout)
    if "dry_run" in p.flags:
        import shlex

        write_out("kubectl %s\n" % shlex.join(node_debug_argv(req, req.namespace or "NAMESPACE")))
        return EXIT_OK
    k.check_binary()
    return node_mode(k, dataclasses.replace(req, args=_with_dns(k, c, req.args)))


def _pod(k: Kubectl, p: Parsed, c: Common) -> int:
    from toolkit.kube.ephemeral import PodRequest, pod_dry_run, pod_mode
    from toolkit.kube.precheck import check_runbook_args

    pos = p.positional
    if not pos:
        raise Usage("POD is required (or pods -l SELECTOR, or node/NODE)")
    if len(pos) > 1:
        raise Usage("one pod only (got %s and %s); podtriage's arguments go after --"
                    % (shown(repr(pos[0])), shown(repr(pos[1]))))
    _forbid(p, ["selector", "all", "all_namespaces", "max", "parallel", "yes", "output",
                "job_ttl"], "goes with 'pods' or 'nodes', not with one POD")
    runbook = p.values.get("runbook")
    if runbook is not None:
        if runbook not in RUNBOOKS:
            raise Usage("unknown runbook: %s (%s)" % (shown(runbook), ", ".join(RUNBOOKS)))
        if "corefiles" in p.flags:
            raise Usage("--corefiles goes with diagnose, not --runbook")
        check_runbook_args(runbook, p.args or ())
        args = p.args or ()
    else:
        args = _checked(p)
    req = PodRequest(pod=pos[0].removeprefix("pod/").removeprefix("pods/"),
                     namespace=p.values.get("namespace"), container=p.values.get("container"),
                     image=c.image, args=args, runbook=runbook, corefiles="corefiles" in p.flags,
                     profile=c.profile, custom=c.custom, retry=c.retry, timeout_s=c.timeout)
    if "dry_run" in p.flags:
        return pod_dry_run(req, c.custom_spec)
    k.check_binary()
    if runbook is None:
        req = dataclasses.replace(req, args=_with_dns(k, c, req.args))
    return pod_mode(k, req)


def dispatch(argv: Sequence[str]) -> int:
    """Run the command line ``argv``: the exit code (Usage and PodtriageError propagate)."""
    from toolkit.kube.precheck import Help

    if argv[:1] == ["__complete"]:
        from toolkit.kube.complete import complete

        return complete(list(argv[1:]))
    p = parse(argv)
    if "help" in p.flags:
        write_out(USAGE)
        return EXIT_OK
    if "version" in p.flags:
        write_out("kubectl-podtriage %s (default image %s)\n" % (__version__, DEFAULT_IMAGE))
        return EXIT_OK
    progress.configure(quiet="quiet" in p.flags)
    if sys.stdout is None and "dry_run" not in p.flags:
        raise OutputError("stdout", "it is closed: podtriage's output would be lost (nothing "
                                    "was started)")
    c = _common(p)
    k = Kubectl(flags=p.kflags)
    pos = p.positional
    mode = _MODE_WORDS.get(pos[0]) if pos else None
    try:
        if mode is Mode.PODS:
            return _pods(k, p, c)
        if mode is Mode.NODES:
            return _nodes(k, p, c)
        if p.nodes:
            return _node(k, p, c)
        return _pod(k, p, c)
    except Help as h:
        if h.text:
            write_out(h.text)
        say("help only: nothing was started in the cluster")
        return EXIT_OK


def _fail(e: BaseException) -> int:
    """The message of what failed (one line, and a hint), and its exit code."""
    if isinstance(e, Usage):
        say(str(e))
        err_line(SHORT_USAGE)
        return EXIT_USAGE
    assert isinstance(e, PodtriageError)
    if isinstance(e, OutputClosed):
        return e.exit_code              # the reader went away: the shell's 141, quietly
    say(e.message)
    if e.hint and not isinstance(e, OutputError):      # a write error is one line
        say("hint: %s" % e.hint)
    return e.exit_code


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run, print the error and hint of what failed, exit with its code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = dispatch(argv)
    except (Usage, PodtriageError) as e:
        code = _fail(e)
    except KeyboardInterrupt:
        say("interrupted")
        # fleet workers may still sit in a kubectl call (bounded by the deadline); what they
        # created is already deleted: do not wait for them at interpreter exit
        os._exit(128 + signal.SIGINT)
    _flush_quietly()
    sys.exit(code)


def _flush_quietly() -> None:
    """Flush stdout now, so that a reader gone or a full disk is seen here and not as a
    traceback at interpreter exit."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        pass
    finally:
        # nothing more may be written: stdout's own flush at exit must not fail loudly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        except OSError:
            pass


if __name__ == "__main__":
    main()
