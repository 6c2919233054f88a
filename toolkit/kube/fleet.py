"""The fleet: podtriage in every pod a selector matches (``pods -l``: one ephemeral
container each) or on every node (``nodes``: one Job each), at most ``--parallel`` at a
time under one deadline, and their JSON documents merged into one report
(``toolkit.kube.merge``). Each pod or node that ends is a progress line with the counts
(done, running, queued) and the time it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_OK, CannotObserve, UsageError
from toolkit.kube.cleanup import deleting
from toolkit.kube.container import Outcome
from toolkit.kube.ephemeral import (
    Ephemeral, ProfileCache, Retry, container_command, corefile_env, debug_env, pod_target,
    run_ephemeral,
)
from toolkit.kube.jobs import NodesRequest, delete_jobs, job_nodes, plan_jobs, print_jobs, run_job
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError
from toolkit.kube.merge import Missing, Source, merge
from toolkit.kube.output import print_yaml, progress, render_merged, say
from toolkit.kube.specs import Profile, ephemeral_container
from toolkit.report import OutputFormat
from toolkit.report.reader import Scan, read_documents


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
    custom: str | None = None
    retry: Retry = field(default_factory=Retry)
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


@dataclass(frozen=True, kw_only=True)
class Ran:
    """One pod's or node's outcome, and its log read once (the progress line and the merge
    both use this one scan)."""

    outcome: Outcome
    scan: Scan

    @classmethod
    def read(cls, out: Outcome, origin: str) -> Ran:
        """``out`` with its log scanned for documents."""
        return cls(outcome=out, scan=read_documents(out.log, origin))


def _verdict_of(ran: Ran) -> str:
    out, docs = ran.outcome, ran.scan.documents
    verdict = docs[-1].get("verdict") if docs else None
    if out.exit_code is None:
        return "no exit code: %s" % out.error
    return "exit %d%s" % (out.exit_code, " (%s)" % verdict if isinstance(verdict, str) else "")


class _Tally:
    """Counts for the progress lines: how many are done, running and queued."""

    def __init__(self, total: int, kind: str) -> None:
        self.total, self.kind = total, kind
        self.done = self.running = 0
        self.lock = threading.Lock()

    def start(self, key: str) -> float:
        with self.lock:
            self.running += 1
            queued = self.total - self.done - self.running
        progress("%s %s: started (%d running, %d queued)" % (self.kind, key, self.running, queued))
        return time.monotonic()

    def end(self, key: str, t0: float, ran: Ran) -> None:
        with self.lock:
            self.running -= 1
            self.done += 1
            done, running = self.done, self.running
        progress("%s %s: %s in %.1f s [%d/%d done, %d running]" % (
            self.kind, key, _verdict_of(ran), time.monotonic() - t0, done, self.total, running))


def fan_out(keys: Sequence[str], work: Callable[[str], Outcome], parallel: int,
            kind: str) -> dict[str, Ran]:
    """Bounded parallelism: at most ``parallel`` kubectl conversations at once. The
    workers stop on their own at the global deadline (every wait in them is bounded by it).
    On Ctrl-C the queued work is cancelled and nothing waits for the running workers: the
    caller deletes what they started, which also ends their log streams. Each log is
    scanned for documents once, here ("KIND KEY" is its origin, as in ``Place``)."""
    results: dict[str, Ran] = {}
    tally = _Tally(len(keys), kind)

    def timed(key: str) -> Ran:
        t0 = tally.start(key)
        try:
            out = work(key)
        except (CannotObserve, KubectlError) as e:
            out = Outcome.failed(e.message)
        ran = Ran.read(out, "%s %s" % (kind, key))
        tally.end(key, t0, ran)
        return ran

    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="pt")
    try:
        futs = {key: pool.submit(timed, key) for key in keys}
        for key, fut in futs.items():
            results[key] = fut.result()
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


def collect(runs: Sequence[tuple[Place, Ran]]) -> tuple[list[Source], list[Missing]]:
    """Each run's documents as merge sources; a run without one is Missing, with why."""
    sources: list[Source] = []
    missing: list[Missing] = []
    for place, ran in runs:
        out, scan = ran.outcome, ran.scan
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
    with deleting("this run's Jobs", lambda: delete_jobs(k, plan.namespace, plan.run_id)):
        say("running podtriage %s on %d node(s) as Jobs in namespace %s (run %s), %d at "
                 "a time" % (" ".join(args), len(nodes), plan.namespace, plan.run_id,
                             max(1, req.parallel)))
        results = fan_out(nodes, lambda n: run_job(k, plan.manifest(n), deadline, None),
                          req.parallel, "node")
    not_run = Ran.read(Outcome.failed("not run (deadline)"), "")
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
    try:
        pods: list[JsonObject] = k.json(argv).get("items") or []
    except KubectlError as e:
        raise CannotObserve("cannot list pods -l %s: %s" % (req.selector, e.message)) from None
    if not pods:
        raise CannotObserve("no running pod matches -l %s" % req.selector)
    if len(pods) > req.max_pods and not req.yes:
        raise UsageError(
            "%d pods match -l %s, more than --max %d: each gets an ephemeral container that "
            "cannot be removed (it stays in the pod spec until the pod is replaced); narrow "
            "the selector, raise --max, or confirm with --yes" % (len(pods), req.selector,
                                                                   req.max_pods))
    return pods


def _pods_dry_run(req: PodsRequest, args: list[str], custom: JsonObject | None) -> int:
    env = debug_env("POD", req.namespace or "NAMESPACE", "NODE")
    spec = ephemeral_container(name="podtriage-TIME-XXXX", image=req.image,
                               command=container_command(args, runbook=None, corefile_args=[]),
                               env=env, target="CONTAINER", profile=req.profile or Profile.NETADMIN,
                               custom=custom)
    print_yaml([{"ephemeralContainers": [spec]}])
    return EXIT_OK


def pods_mode(k: Kubectl, req: PodsRequest, custom: JsonObject | None = None) -> int:
    """podtriage in every running pod -l matches (one ephemeral container each); merged report."""
    args = with_json(req.args)
    if req.dry_run:
        return _pods_dry_run(req, args, custom)
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
        env = {**debug_env(md["name"], md["namespace"], pod["spec"].get("nodeName")), **cm_env}
        return run_ephemeral(k, pod=pod, target=target, deadline=deadline, sink=None,
                             profiles=profiles,
                             e=Ephemeral(image=req.image, command=cmd, env=env,
                                         profile=profiles.get(md["namespace"]).profile,
                                         custom=req.custom, retry=req.retry))

    say("running podtriage %s in %d pod(s), %d at a time" % (" ".join(args), len(pods),
                                                            max(1, req.parallel)))
    results = fan_out(list(by_key), one, req.parallel, "pod")
    not_run = Ran.read(Outcome.failed("not run"), "")
    sources, missing = collect([
        (Place(origin="pod %s" % key, pod=pod["metadata"]["name"],
               namespace=pod["metadata"]["namespace"], node=pod["spec"].get("nodeName")),
         results.get(key) or not_run) for key, pod in by_key.items()])
    return render_merged(merge(sources, missing, subject="%d pods -l %s" % (len(pods),
                                                                           req.selector)),
                         req.output)
