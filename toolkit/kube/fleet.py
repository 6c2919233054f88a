"""The fleet: podtriage in every pod a selector matches (``pods -l``: one ephemeral
container each) or on every node (``nodes``: one Job each), at most ``--parallel`` at a
time under one deadline, and their JSON documents merged into one report
(``toolkit.kube.merge``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_OK, CannotObserve, UsageError
from toolkit.kube.container import Outcome
from toolkit.kube.ephemeral import (
    ProfileCache, container_command, corefile_env, debug_env, pod_target, run_ephemeral,
)
from toolkit.kube.jobs import NodesRequest, job_nodes, jobs_cleanup, plan_jobs, print_jobs, run_job
from toolkit.kube.kubectl import JsonObject, Kubectl
from toolkit.kube.merge import Missing, Source, merge
from toolkit.kube.output import print_yaml, render_merged, say
from toolkit.kube.specs import Profile, ephemeral_container
from toolkit.report import OutputFormat
from toolkit.report.reader import read_documents


@dataclass(frozen=True, kw_only=True)
class PodsRequest:
    """``pods -l SELECTOR ... -- ARGS``: which pods, and what to run in each."""

    selector: str
    namespace: str | None = None
    all_namespaces: bool = False
    container: str | None = None
    image: str
    args: tuple[str, ...]
    max_pods: int = 20
    parallel: int = 5
    yes: bool = False
    corefiles: bool = False
    profile: Profile | None = None
    timeout_s: float = 300.0
    output: OutputFormat = OutputFormat.table
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class Place:
    """Where one run of the fleet happened."""

    origin: str                 # 'pod shop/web-1' or 'node worker-3'
    pod: str | None = None
    namespace: str | None = None
    node: str | None = None


def with_json(args: Sequence[str]) -> list[str]:
    """A fleet merges JSON: ask for it unless the user chose a format."""
    if any(a in ("-o", "--output") or a.startswith(("--output=", "-o=")) or
           (a.startswith("-o") and len(a) > 2 and not a.startswith("--")) for a in args):
        return list(args)
    return [*args, "-o", "json"]


def fan_out(keys: Sequence[str], work: Callable[[str], Outcome], parallel: int) -> dict[str, Outcome]:
    """Bounded parallelism: at most ``parallel`` kubectl conversations at once. The
    workers stop on their own at the global deadline (every wait in them is bounded by it).
    On Ctrl-C the queued work is cancelled and nothing waits for the running workers: the
    caller deletes what they started, which also ends their log streams."""
    results: dict[str, Outcome] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="pt")
    try:
        futs = {key: pool.submit(work, key) for key in keys}
        for key, fut in futs.items():
            try:
                results[key] = fut.result()
            except CannotObserve as e:
                results[key] = Outcome.failed(e.message)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _with_context(doc: JsonObject, place: Place) -> JsonObject:
    """Fill in context the container could not know (an image older than the context key)."""
    ctx = dict(doc.get("context") or {})
    for key, val in (("pod", place.pod), ("namespace", place.namespace), ("node", place.node)):
        if not ctx.get(key) and val:
            ctx[key] = val
    return {**doc, "context": ctx}


def collect(runs: Sequence[tuple[Place, Outcome]]) -> tuple[list[Source], list[Missing]]:
    """Each run's documents as merge sources; a run without one is Missing, with why."""
    sources: list[Source] = []
    missing: list[Missing] = []
    for place, out in runs:
        scan = read_documents(out.log, place.origin)
        if scan.documents:
            sources += [Source(doc=_with_context(d, place), origin=place.origin) for d in scan.documents]
        else:
            # A document that is there but unusable is named with why, never "no document".
            bad = scan.unusable[0] if scan.unusable else None
            unusable = ("no usable JSON document in the log (exit %s): %s: %s"
                        % (out.exit_code, bad.where, bad.reason)) if bad is not None else None
            missing.append(Missing(where=place.origin, node=place.node, exit_code=out.exit_code,
                                   reason=out.error or out.message or unusable or
                                   "no JSON document in the log (exit %s)" % out.exit_code))
    return sources, missing


# ---------------------------------------------------------------- nodes
def nodes_mode(k: Kubectl, req: NodesRequest) -> int:
    """One Job per node; logs collected; Jobs deleted (also on Ctrl-C); merged report."""
    args = with_json(req.args)
    plan = plan_jobs(k, req, args)
    if req.dry_run:
        return print_jobs(plan, req.nodes)
    nodes = job_nodes(k, req, plan)
    deadline = Deadline(req.timeout_s + 30)
    with jobs_cleanup(k, plan):
        say("running podtriage %s on %d node(s) as Jobs in namespace %s (run %s)"
            % (" ".join(args), len(nodes), plan.namespace, plan.run_id))
        results = fan_out(nodes, lambda n: run_job(k, plan.manifest(n), deadline, None),
                          req.parallel)
    not_run = Outcome.failed("not run (deadline)")
    sources, missing = collect([(Place(origin="node %s" % n, node=n), results.get(n) or not_run)
                                for n in nodes])
    return render_merged(merge(sources, missing, subject="%d nodes" % len(nodes)), req.output)


# ---------------------------------------------------------------- pods
def _pods(k: Kubectl, req: PodsRequest) -> list[JsonObject]:
    """The running pods -l matches; UsageError above --max without --yes (each keeps its
    ephemeral container until it is replaced)."""
    argv = ["get", "pods", "-l", req.selector, "--field-selector=status.phase=Running"]
    if req.all_namespaces:
        argv.append("-A")
    elif req.namespace:
        argv += ["-n", req.namespace]
    pods: list[JsonObject] = k.json(argv).get("items") or []
    if not pods:
        raise CannotObserve("no running pod matches -l %s" % req.selector)
    if len(pods) > req.max_pods and not req.yes:
        raise UsageError(
            "%d pods match -l %s, more than --max %d: each gets an ephemeral container that "
            "cannot be removed (it stays in the pod spec until the pod is replaced); narrow "
            "the selector, raise --max, or confirm with --yes" % (len(pods), req.selector,
                                                                   req.max_pods))
    return pods


def _pods_dry_run(req: PodsRequest, args: list[str]) -> int:
    env = debug_env("POD", req.namespace or "NAMESPACE", "NODE")
    spec = ephemeral_container(name="podtriage-TIME-XXXX", image=req.image,
                               command=container_command(args, runbook=None, corefile_args=[]),
                               env=env, target="CONTAINER", profile=req.profile or Profile.NETADMIN)
    print_yaml([{"ephemeralContainers": [spec]}])
    return EXIT_OK


def pods_mode(k: Kubectl, req: PodsRequest) -> int:
    """podtriage in every running pod -l matches (one ephemeral container each); merged report."""
    args = with_json(req.args)
    if req.dry_run:
        return _pods_dry_run(req, args)
    pods = _pods(k, req)
    deadline = Deadline(req.timeout_s)
    profiles = ProfileCache(k, req.profile)
    cm_env: dict[str, str] = {}
    cf_args: list[str] = []
    if req.corefiles:
        cm_env, cf_args = corefile_env(k)
    cmd = container_command(args, runbook=None, corefile_args=cf_args)
    by_key = {"%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}

    def one(key: str) -> Outcome:
        pod = by_key[key]
        md = pod["metadata"]
        try:
            target = pod_target(pod, req.container)
        except CannotObserve as e:
            return Outcome.failed(e.message)
        choice = profiles.get(md["namespace"])
        env = {**debug_env(md["name"], md["namespace"], pod["spec"].get("nodeName")), **cm_env}
        return run_ephemeral(k, pod=pod, target=target, image=req.image, command=cmd, env=env,
                             profile=choice.profile, deadline=deadline, stream=None)

    say("running podtriage %s in %d pod(s), %d at a time" % (" ".join(args), len(pods),
                                                            max(1, req.parallel)))
    results = fan_out(list(by_key), one, req.parallel)
    not_run = Outcome.failed("not run")
    sources, missing = collect([
        (Place(origin="pod %s" % key, pod=pod["metadata"]["name"],
               namespace=pod["metadata"]["namespace"], node=pod["spec"].get("nodeName")),
         results.get(key) or not_run) for key, pod in by_key.items()])
    return render_merged(merge(sources, missing, subject="%d pods -l %s" % (len(pods),
                                                                           req.selector)),
                         req.output)
