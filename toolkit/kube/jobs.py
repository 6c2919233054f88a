"""Node Jobs, for the fleet over nodes (``toolkit.kube.fleet``): planning the run, creating a
Job and following the pod the Job controller makes, deleting the run's Jobs on the way out
(Ctrl-C and SIGTERM included). A single ``--node`` runs ``kubectl debug node/NAME`` instead
(``toolkit.kube.nodedebug``), as kubectl users expect; a fleet uses Jobs because their
``ttlSecondsAfterFinished`` and ``activeDeadlineSeconds`` clean up after a plugin that was
killed, on every node at once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_OK, CannotObserve
from toolkit.kube.container import Outcome, Target, call_timeout, poll_interval, run_to_end
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError, last_error
from toolkit.kube.output import Sink, print_yaml, progress, say
from toolkit.kube.specs import RUN_LABEL, Enforce, choose_profile, node_job
from toolkit.report import OutputFormat

JOB_CONTAINER = "podtriage"     # the container of node_job's pod template


@dataclass(frozen=True, kw_only=True)
class NodesRequest:
    """``nodes ...`` (or ``--node NODE``): which nodes, and what to run there."""

    nodes: tuple[str, ...] = ()
    selector: str | None = None
    all_nodes: bool = False
    namespace: str | None = None
    image: str
    args: tuple[str, ...] = ("conntrack",)
    parallel: int = 10
    timeout_s: float = 300.0
    job_ttl_s: int = 600
    output: OutputFormat = OutputFormat.table
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class JobPlan:
    """One run of node Jobs: its id (the label that finds its Jobs), namespace and spec."""

    run_id: str
    namespace: str
    image: str
    args: tuple[str, ...]
    deadline_s: int             # the Jobs' activeDeadlineSeconds
    ttl_s: int = 600

    def manifest(self, node: str) -> JsonObject:
        """The Job for ``node``."""
        return node_job(node=node, image=self.image, args=list(self.args), namespace=self.namespace,
                        run_id=self.run_id, deadline_s=self.deadline_s, ttl_s=self.ttl_s)


def namespace_of_context(k: Kubectl) -> str:
    """The namespace of the current kubeconfig context (``default`` when it names none)."""
    p = k.run(["config", "view", "--minify", "-o", "jsonpath={..namespace}"], timeout=20)
    ns = p.stdout.strip() if p.returncode == 0 else ""
    return ns or "default"


def plan_jobs(k: Kubectl, req: NodesRequest, args: Sequence[str]) -> JobPlan:
    """A new run: a fresh id, the namespace (-n, else the context's; not asked in --dry-run)."""
    run_id = secrets.token_hex(3)
    namespace = req.namespace or ("default" if req.dry_run else namespace_of_context(k))
    return JobPlan(run_id=run_id, namespace=namespace, image=req.image, args=tuple(args),
                   deadline_s=int(max(30, req.timeout_s)), ttl_s=req.job_ttl_s)


def print_jobs(plan: JobPlan, nodes: Sequence[str]) -> int:
    """--dry-run: the Job manifests (YAML), one per node named (or for a NODE placeholder)."""
    print_yaml([plan.manifest(n) for n in (list(nodes) or ["NODE"])])
    return EXIT_OK


def node_names(k: Kubectl, req: NodesRequest) -> list[str]:
    """The nodes asked for: each --node checked to exist, or those -l / --all select."""
    if req.nodes:
        for n in req.nodes:
            try:
                k.json(["get", "node", n])
            except KubectlError as e:
                raise CannotObserve("cannot read node %s: %s" % (n, e.message)) from None
        return list(dict.fromkeys(req.nodes))
    argv = ["get", "nodes"] + (["-l", req.selector] if req.selector else [])
    try:
        items = k.json(argv).get("items") or []
    except KubectlError as e:
        raise CannotObserve("cannot list nodes: %s" % e.message) from None
    return [i["metadata"]["name"] for i in items]


def check_node_namespace(k: Kubectl, namespace: str) -> None:
    """CannotObserve when the namespace's PodSecurity level refuses what a node pod needs
    (host namespaces, NET_ADMIN); nothing is created then."""
    try:
        labels = k.json(["get", "namespace", namespace]).get("metadata", {}).get("labels") or {}
    except KubectlError as e:
        say("cannot read namespace %s (%s); trying anyway" % (namespace, e.message))
        return
    choice = choose_profile(labels)
    if choice.enforce in (Enforce.BASELINE, Enforce.RESTRICTED):
        raise CannotObserve(
            "namespace %s enforces PodSecurity %s, which refuses hostNetwork and NET_ADMIN: "
            "node pods cannot run there" % (namespace, choice.enforce.value),
            hint="pass -n with a namespace whose pod-security.kubernetes.io/enforce is "
                 "privileged (or unset), e.g. one made for podtriage")


def job_nodes(k: Kubectl, req: NodesRequest, plan: JobPlan) -> list[str]:
    """The nodes to run on, once the namespace is known to admit node Jobs."""
    nodes = node_names(k, req)
    if not nodes:
        raise CannotObserve("no node matches" + (" -l %s" % req.selector if req.selector else ""))
    check_node_namespace(k, plan.namespace)
    return nodes


def _job_pod(k: Kubectl, namespace: str, job: str, deadline: Deadline) -> str:
    """The name of the pod the Job made (polled until there is one, within the deadline)."""
    import time

    step = poll_interval()
    t0 = time.monotonic()
    for _ in range(100_000):                  # bounded by the deadline
        pods = k.json(["get", "pods", "-n", namespace, "-l", "job-name=%s" % job],
                      timeout=call_timeout(deadline, 30.0))
        items = pods.get("items") or []
        if items:
            return str(items[0]["metadata"]["name"])
        if deadline.expired:
            break
        if time.monotonic() - t0 >= 1.0:
            progress("Job %s/%s: waiting for the Job controller's pod, %.0f s"
                     % (namespace, job, time.monotonic() - t0))
        time.sleep(min(step, deadline.remaining()))
    raise CannotObserve("Job %s made no pod in time" % job)


def run_job(k: Kubectl, manifest: JsonObject, deadline: Deadline, sink: Sink | None) -> Outcome:
    """Create the Job and see its pod through to podtriage's exit code."""
    ns, job = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    p = k.run(["create", "-f", "-", "-o", "name"], input=json.dumps(manifest),
              timeout=call_timeout(deadline, 60.0))
    if p.returncode != 0:
        return Outcome.failed(last_error(p.stderr) or "kubectl create failed")
    try:
        pod_name = _job_pod(k, ns, job, deadline)
    except (CannotObserve, KubectlError) as e:
        return Outcome.failed(e.message)
    return run_to_end(k, Target(namespace=ns, pod=pod_name, name=JOB_CONTAINER, ephemeral=False),
                      deadline=deadline, sink=sink)


def delete_jobs(k: Kubectl, namespace: str, run_id: str) -> None:
    """Delete this run's Jobs and (background propagation) their pods."""
    p = k.run(["delete", "jobs", "-n", namespace, "-l", "%s=%s" % (RUN_LABEL, run_id),
               "--wait=false", "--ignore-not-found", "--cascade=background"], timeout=30)
    if p.returncode != 0:
        say("could not delete Jobs -l %s=%s in %s: %s (ttlSecondsAfterFinished removes them)"
            % (RUN_LABEL, run_id, namespace, last_error(p.stderr)))
