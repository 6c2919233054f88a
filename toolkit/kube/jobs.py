"""Node Jobs: podtriage once on a node, as a Job in the node's network namespace
(``--node NODE``), and the Job machinery the fleet over nodes uses (``toolkit.kube.fleet``):
planning the run, creating a Job and following its pod, deleting the run's Jobs on the way
out (Ctrl-C and SIGTERM included).
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_OK, CannotObserve
from toolkit.kube.container import Outcome, call_timeout, exit_code_of, poll_interval, run_to_end
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError, last_error
from toolkit.kube.output import print_yaml, say
from toolkit.kube.specs import RUN_LABEL, Enforce, choose_profile, node_job
from toolkit.report import OutputFormat

JOB_CONTAINER = "podtriage"     # the container of node_job's pod template


@dataclass(frozen=True, kw_only=True)
class NodesRequest:
    """``--node NODE`` or ``nodes ...``: which nodes, and what to run there."""

    nodes: tuple[str, ...] = ()
    selector: str | None = None
    all_nodes: bool = False
    namespace: str | None = None
    image: str
    args: tuple[str, ...] = ("conntrack",)
    parallel: int = 10
    timeout_s: float = 300.0
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

    def manifest(self, node: str) -> JsonObject:
        """The Job for ``node``."""
        return node_job(node=node, image=self.image, args=list(self.args), namespace=self.namespace,
                        run_id=self.run_id, deadline_s=self.deadline_s)


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
                   deadline_s=int(max(30, req.timeout_s)))


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
    items = k.json(argv).get("items") or []
    return [i["metadata"]["name"] for i in items]


def check_node_namespace(k: Kubectl, namespace: str) -> None:
    """CannotObserve when the namespace's PodSecurity level refuses what a node Job needs."""
    try:
        labels = k.json(["get", "namespace", namespace]).get("metadata", {}).get("labels") or {}
    except KubectlError as e:
        say("cannot read namespace %s (%s); trying anyway" % (namespace, e.message))
        return
    choice = choose_profile(labels)
    if choice.enforce in (Enforce.BASELINE, Enforce.RESTRICTED):
        raise CannotObserve(
            "namespace %s enforces PodSecurity %s, which refuses hostNetwork and NET_ADMIN: "
            "node Jobs cannot run there" % (namespace, choice.enforce.value),
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
    step = poll_interval()
    for _ in range(100_000):                  # bounded by the deadline
        pods = k.json(["get", "pods", "-n", namespace, "-l", "job-name=%s" % job],
                      timeout=call_timeout(deadline, 30.0))
        items = pods.get("items") or []
        if items:
            return str(items[0]["metadata"]["name"])
        if deadline.expired:
            break
        time.sleep(min(step, deadline.remaining()))
    raise CannotObserve("Job %s made no pod in time" % job)


def run_job(k: Kubectl, manifest: JsonObject, deadline: Deadline,
            stream: TextIO | None) -> Outcome:
    """Create the Job and see its pod through to podtriage's exit code."""
    ns, job = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    p = k.run(["create", "-f", "-", "-o", "name"], input=json.dumps(manifest),
              timeout=call_timeout(deadline, 60.0))
    if p.returncode != 0:
        return Outcome.failed(last_error(p.stderr) or "kubectl create failed")
    try:
        pod_name = _job_pod(k, ns, job, deadline)
    except CannotObserve as e:
        return Outcome.failed(e.message)
    return run_to_end(k, ns, pod_name, JOB_CONTAINER, ephemeral=False, deadline=deadline,
                      stream=stream)


def delete_jobs(k: Kubectl, namespace: str, run_id: str) -> None:
    """Delete this run's Jobs and (background propagation) their pods."""
    p = k.run(["delete", "jobs", "-n", namespace, "-l", "%s=%s" % (RUN_LABEL, run_id),
               "--wait=false", "--ignore-not-found", "--cascade=background"], timeout=30)
    if p.returncode != 0:
        say("could not delete Jobs -l %s=%s in %s: %s (ttlSecondsAfterFinished removes them)"
            % (RUN_LABEL, run_id, namespace, last_error(p.stderr)))


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def jobs_cleanup(k: Kubectl, plan: JobPlan) -> Iterator[None]:
    """Delete the run's Jobs on the way out, Ctrl-C and SIGTERM included (SIGTERM becomes a
    KeyboardInterrupt while the Jobs run, in the main thread where handlers can be set)."""
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        yield
    except KeyboardInterrupt:
        say("interrupted: deleting this run's Jobs")
        raise
    finally:
        delete_jobs(k, plan.namespace, plan.run_id)
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def node_mode(k: Kubectl, req: NodesRequest) -> int:
    """``--node NODE``: one Job, podtriage's own output and exit code (3 when it has none);
    the Job is deleted afterwards."""
    plan = plan_jobs(k, req, req.args)
    if req.dry_run:
        return print_jobs(plan, req.nodes)
    node = job_nodes(k, req, plan)[0]
    deadline = Deadline(req.timeout_s + 30)
    with jobs_cleanup(k, plan):
        out = run_job(k, plan.manifest(node), deadline, sys.stdout)
        return exit_code_of(out, " on node %s" % node)
