"""``kubectl podtriage``: run podtriage in a pod (an ephemeral container), on a node (a Job),
or across a fleet of pods or nodes, with the user's own kubectl, and hand back podtriage's
exit code or one merged fleet report.

Ephemeral containers are created with ``kubectl debug`` *without* attaching: attach needs a
streaming upgrade, loses the output written before it connects, and does not pass exit codes
back reliably (openshift/oc #1571). Instead the plugin waits for the container to start,
follows its log (``kubectl logs -f``) and reads the exit code from
``.status.ephemeralContainerStatuses[].state.terminated.exitCode``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from toolkit.errors import CannotObserve, UsageError
from toolkit.kube.kubectl import Kubectl, KubectlError, last_error
from toolkit.kube.merge import Missing, Source, documents_in, merge
from toolkit.kube.specs import (RUN_LABEL, Enforce, Profile, ProfileChoice, choose_profile,
                                ephemeral_container, node_job)
from toolkit.model import Report

PROG = "kubectl podtriage"
RUNBOOKS = ("dns-slow", "service-unreachable", "check-coredns-config")
CM_LIMIT = 100_000           # bytes of one ConfigMap carried in the container spec
_NO_KEEP_LABELS = threading.Event()      # this kubectl predates --keep-labels
IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                "CreateContainerError", "CreateContainerConfigError", "RunContainerError"}


def say(msg: str) -> None:
    print("%s: %s" % (PROG, msg), file=sys.stderr, flush=True)


def poll_interval() -> float:
    try:
        return max(0.0, float(os.environ.get("PODTRIAGE_POLL_INTERVAL", "1")))
    except ValueError:
        return 1.0


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one ephemeral container or Job pod did."""

    exit_code: int | None
    log: str
    message: str = ""
    error: str = ""              # why no exit code (image pull, deadline, kubectl)


@dataclass(frozen=True, kw_only=True)
class Deadline:
    at: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(at=time.monotonic() + seconds)

    def left(self) -> float:
        return self.at - time.monotonic()


# ---------------------------------------------------------------- pods and namespaces
def pod_target(pod: dict[str, Any], container: str | None) -> str:
    names = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
    if container:
        if container not in names:
            raise CannotObserve("pod %s has no container %s (it has: %s)"
                                % (pod["metadata"]["name"], container, ", ".join(names)))
        return container
    if not names:
        raise CannotObserve("pod %s has no containers" % pod["metadata"]["name"])
    return names[0]


@dataclass
class ProfileCache:
    """One namespace read per namespace: its PodSecurity enforce label decides the profile."""

    k: Kubectl
    forced: Profile | None
    cache: dict[str, ProfileChoice] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, namespace: str) -> ProfileChoice:
        with self.lock:      # held while reading: one namespace read, however many workers
            if namespace not in self.cache:
                self.cache[namespace] = self._read(namespace)
            return self.cache[namespace]

    def _read(self, namespace: str) -> ProfileChoice:
        labels: dict[str, str] | None = None
        try:
            labels = self.k.json(["get", "namespace", namespace]).get("metadata", {}).get("labels")
        except KubectlError as e:
            # RBAC may forbid reading namespaces: try netadmin; admission says no if it must
            say("cannot read namespace %s (%s); assuming no PodSecurity enforcement"
                % (namespace, e.message))
        choice = choose_profile(labels, self.forced)
        if choice.reason:
            say("%s: %s" % (namespace, choice.reason))
        return choice


def debug_env(pod: str, namespace: str, node: str | None) -> dict[str, str]:
    env = {"PODTRIAGE_POD": pod, "PODTRIAGE_NAMESPACE": namespace}
    if node:
        env["PODTRIAGE_NODE"] = node
    return env


CONFIGMAPS = ("nodelocaldns", "node-local-dns", "coredns", "coredns-custom")


def corefile_env(k: Kubectl) -> tuple[dict[str, str], list[str]]:
    """kube-system's DNS ConfigMaps as env vars, and the --corefile arguments that hand them
    to podtriage as /dev/fd pipes (bash process substitution): in the spec before the
    container starts, nothing written to a read-only filesystem. The names are those the
    distributions ship (tests/data/corefiles): kubespray's ``nodelocaldns``, the upstream
    addon's ``node-local-dns``, ``coredns``, and AKS's and k3s's ``coredns-custom``, whose
    keys CoreDNS imports (toolkit.corefile.roles)."""
    env: dict[str, str] = {}
    extra: list[str] = []
    for cm in CONFIGMAPS:
        p = k.run(["get", "configmap", cm, "-n", "kube-system", "-o", "yaml"])
        if p.returncode != 0 or not p.stdout.strip():
            if "NotFound" in p.stderr or "not found" in p.stderr or p.returncode == 0:
                say("no ConfigMap kube-system/%s (skipped)" % cm)
            else:  # Forbidden, a timeout...: say so, an RBAC gap must not pass for "absent"
                say("could not read ConfigMap kube-system/%s (skipped): %s"
                    % (cm, (p.stderr.strip().splitlines() or ["kubectl exit %d" % p.returncode])[-1]))
            continue
        if len(p.stdout.encode()) > CM_LIMIT:
            say("ConfigMap kube-system/%s is larger than 100 kB; skipped" % cm)
            continue
        var = "PODTRIAGE_CM_" + cm.upper().replace("-", "_")
        env[var] = p.stdout
        extra.append(" --corefile <(printf '%%s\\n' \"$%s\")" % var)
    return env, extra


def container_command(args: Sequence[str], *, runbook: str | None,
                      corefile_args: Sequence[str]) -> list[str]:
    if runbook:
        return ["bash", "/opt/podtriage/runbooks/%s.sh" % runbook, *args]
    if corefile_args:
        script = 'exec podtriage "$@"' + "".join(corefile_args)
        return ["bash", "-c", script, "podtriage", *args]
    return ["podtriage", *args]


def debug_name() -> str:
    return "podtriage-%d-%s" % (int(time.time()), secrets.token_hex(2))


def _status(pod: dict[str, Any], name: str, ephemeral: bool) -> dict[str, Any] | None:
    key = "ephemeralContainerStatuses" if ephemeral else "containerStatuses"
    for s in (pod.get("status") or {}).get(key) or []:
        if s.get("name") == name:
            return s
    return None


def wait_state(k: Kubectl, namespace: str, pod: str, name: str, ephemeral: bool,
               deadline: Deadline, want_terminated: bool) -> dict[str, Any]:
    """Poll the pod until the container runs (or has terminated); a waiting reason that
    will not resolve by itself (image pull, create error) ends the wait at once instead of
    hanging as ``kubectl debug`` does on a bad image (kubernetes #108135)."""
    step = poll_interval()
    for _ in range(100_000):                      # bounded by the deadline below
        p = k.run(["get", "pod", pod, "-n", namespace, "-o", "json"],
                  timeout=min(30.0, max(1.0, deadline.left())))
        if p.returncode != 0:
            raise KubectlError(last_error(p.stderr) or "cannot read pod %s" % pod)
        st = _status(json.loads(p.stdout), name, ephemeral)
        state = (st or {}).get("state") or {}
        if "terminated" in state or ("running" in state and not want_terminated):
            return state
        reason = (state.get("waiting") or {}).get("reason", "")
        if reason in IMAGE_ERRORS:
            msg = (state.get("waiting") or {}).get("message", "")
            raise CannotObserve("container %s in pod %s: %s%s" % (
                name, pod, reason, (": " + msg) if msg else ""),
                hint="check --image (and that the pod's pull secrets can pull it)")
        if deadline.left() <= 0:
            raise CannotObserve("container %s in pod %s did not %s in time" % (
                name, pod, "finish" if want_terminated else "start"))
        time.sleep(min(step, max(0.0, deadline.left())))
    raise CannotObserve("gave up waiting for pod %s" % pod)


def follow_log(k: Kubectl, namespace: str, pod: str, name: str, deadline: Deadline,
               stream: TextIO | None) -> str:
    """``kubectl logs -f`` until the container ends; copied to ``stream`` as it comes."""
    import subprocess

    chunks: list[str] = []
    proc = subprocess.Popen(k.argv(["logs", "-f", pod, "-n", namespace, "-c", name]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    timer = threading.Timer(max(1.0, deadline.left()), proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            chunks.append(line)
            if stream is not None:
                stream.write(line)
                stream.flush()
        proc.wait(timeout=max(1.0, deadline.left()))
    except subprocess.TimeoutExpired:
        proc.kill()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    return "".join(chunks)


def run_ephemeral(k: Kubectl, *, pod: dict[str, Any], target: str, image: str,
                  command: list[str], env: dict[str, str], profile: Profile, deadline: Deadline,
                  stream: TextIO | None) -> Outcome:
    md = pod["metadata"]
    ns, name = md["namespace"], md["name"]
    cname = debug_name()
    argv = ["debug", name, "-n", ns, "--target=%s" % target, "--container=%s" % cname,
            "--profile=%s" % profile.value, "--image=%s" % image, "--quiet"]
    argv += ["--env=%s=%s" % kv for kv in env.items()]
    argv += ["--", *command]
    # Newer kubectl (kubernetes/kubectl master, debug.go debugByEphemeralContainer) removes
    # the target pod's labels before adding an ephemeral container unless --keep-labels:
    # that would take every pod of a fleet out of its Services and ReplicaSet. kubectl
    # v1.34 knows the flag (it only acts with --copy-to there); older ones do not.
    p = None
    if not _NO_KEEP_LABELS.is_set():
        p = k.run([*argv[:-len(command) - 1], "--keep-labels=true", "--", *command],
                  timeout=min(60.0, max(1.0, deadline.left())))
        if p.returncode != 0 and "unknown flag: --keep-labels" in p.stderr:
            _NO_KEEP_LABELS.set()
            p = None
    if p is None:
        p = k.run(argv, timeout=min(60.0, max(1.0, deadline.left())))
    if p.returncode != 0:
        return Outcome(exit_code=None, log="", error=last_error(p.stderr) or
                       "kubectl debug failed (exit %d)" % p.returncode)
    if stream is not None:
        # kubectl's own warnings (e.g. a non-root pod user that may not get the capabilities)
        for line in p.stderr.splitlines():
            if line.strip():
                say("kubectl: %s" % line.strip())
    try:
        wait_state(k, ns, name, cname, True, deadline, want_terminated=False)
        log = follow_log(k, ns, name, cname, deadline, stream)
        state = wait_state(k, ns, name, cname, True, deadline, want_terminated=True)
    except CannotObserve as e:
        return Outcome(exit_code=None, log="", error=e.message)
    term = state.get("terminated") or {}
    return Outcome(exit_code=term.get("exitCode"), log=log, message=term.get("message", ""))


# ---------------------------------------------------------------- pod mode
@dataclass(frozen=True, kw_only=True)
class PodRequest:
    pod: str
    namespace: str | None
    container: str | None
    image: str
    args: tuple[str, ...]
    runbook: str | None = None
    corefiles: bool = False
    profile: Profile | None = None
    timeout_s: float = 300.0


def get_pod(k: Kubectl, name: str, namespace: str | None) -> dict[str, Any]:
    argv = ["get", "pod", name] + (["-n", namespace] if namespace else [])
    try:
        return k.json(argv)
    except KubectlError as e:
        raise CannotObserve("cannot read pod %s%s: %s" % (
            name, " in namespace %s" % namespace if namespace else "", e.message)) from None


def pod_mode(k: Kubectl, req: PodRequest) -> int:
    deadline = Deadline.after(req.timeout_s)
    pod = get_pod(k, req.pod, req.namespace)
    target = pod_target(pod, req.container)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        # the kubelet starts ephemeral containers only in running pods; one added now would
        # stay in the spec for nothing
        raise CannotObserve("pod %s is %s, not Running: an ephemeral container would not start"
                            % (req.pod, phase or "in an unknown phase"))
    ns, node = pod["metadata"]["namespace"], pod.get("spec", {}).get("nodeName")
    choice = ProfileCache(k, req.profile).get(ns)
    env = debug_env(req.pod, ns, node)
    cf_args: list[str] = []
    if req.corefiles:
        cm_env, cf_args = corefile_env(k)
        env.update(cm_env)
    cmd = container_command(req.args, runbook=req.runbook, corefile_args=cf_args)
    out = run_ephemeral(k, pod=pod, target=target, image=req.image, command=cmd, env=env,
                        profile=choice.profile, deadline=deadline, stream=sys.stdout)
    if out.message:
        say(out.message)
    if out.exit_code is None:
        say("no exit code from podtriage: %s" % out.error)
        return 3
    return int(out.exit_code)


# ---------------------------------------------------------------- Jobs on nodes
def namespace_of_context(k: Kubectl) -> str:
    p = k.run(["config", "view", "--minify", "-o", "jsonpath={..namespace}"], timeout=20)
    ns = p.stdout.strip() if p.returncode == 0 else ""
    return ns or "default"


def run_job(k: Kubectl, manifest: dict[str, Any], deadline: Deadline,
            stream: TextIO | None) -> Outcome:
    ns, job = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    p = k.run(["create", "-f", "-", "-o", "name"], input=json.dumps(manifest),
              timeout=min(60.0, max(1.0, deadline.left())))
    if p.returncode != 0:
        return Outcome(exit_code=None, log="", error=last_error(p.stderr) or "kubectl create failed")
    pod_name = None
    step = poll_interval()
    try:
        for _ in range(100_000):                  # bounded by the deadline
            pods = k.json(["get", "pods", "-n", ns, "-l", "job-name=%s" % job],
                          timeout=min(30.0, max(1.0, deadline.left())))
            items = pods.get("items") or []
            if items:
                pod_name = items[0]["metadata"]["name"]
                break
            if deadline.left() <= 0:
                raise CannotObserve("Job %s made no pod in time" % job)
            time.sleep(min(step, max(0.0, deadline.left())))
        assert pod_name is not None
        wait_state(k, ns, pod_name, "podtriage", False, deadline, want_terminated=False)
        log = follow_log(k, ns, pod_name, "podtriage", deadline, stream)
        state = wait_state(k, ns, pod_name, "podtriage", False, deadline, want_terminated=True)
    except CannotObserve as e:
        return Outcome(exit_code=None, log="", error=e.message)
    term = state.get("terminated") or {}
    return Outcome(exit_code=term.get("exitCode"), log=log, message=term.get("message", ""))


def delete_jobs(k: Kubectl, namespace: str, run_id: str) -> None:
    """Delete this run's Jobs and (background propagation) their pods."""
    p = k.run(["delete", "jobs", "-n", namespace, "-l", "%s=%s" % (RUN_LABEL, run_id),
               "--wait=false", "--ignore-not-found", "--cascade=background"], timeout=30)
    if p.returncode != 0:
        say("could not delete Jobs -l %s=%s in %s: %s (ttlSecondsAfterFinished removes them)"
            % (RUN_LABEL, run_id, namespace, last_error(p.stderr)))


@dataclass(frozen=True, kw_only=True)
class NodesRequest:
    nodes: tuple[str, ...] = ()
    selector: str | None = None
    all_nodes: bool = False
    namespace: str | None = None
    image: str
    args: tuple[str, ...] = ("conntrack",)
    parallel: int = 10
    timeout_s: float = 300.0
    output: str = "table"
    dry_run: bool = False


def node_names(k: Kubectl, req: NodesRequest) -> list[str]:
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


def with_json(args: Sequence[str]) -> list[str]:
    """A fleet merges JSON: ask for it unless the user chose a format."""
    if any(a in ("-o", "--output") or a.startswith(("--output=", "-o=")) or
           (a.startswith("-o") and len(a) > 2 and not a.startswith("--")) for a in args):
        return list(args)
    return [*args, "-o", "json"]


def check_node_namespace(k: Kubectl, namespace: str) -> None:
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


def nodes_mode(k: Kubectl, req: NodesRequest, *, single: bool = False) -> int:
    """One Job per node; logs collected; Jobs deleted (also on Ctrl-C); merged report.
    ``single``: the --node NODE form: podtriage's own output and exit code, no merge."""
    run_id = secrets.token_hex(3)
    args = list(req.args) if single else with_json(req.args)
    namespace = req.namespace or ("default" if req.dry_run else namespace_of_context(k))
    deadline_s = int(max(30, req.timeout_s))
    if req.dry_run:
        nodes = list(req.nodes) or ["NODE"]
        docs = [node_job(node=n, image=req.image, args=args, namespace=namespace,
                         run_id=run_id, deadline_s=deadline_s) for n in nodes]
        print_yaml(docs)
        return 0
    nodes = node_names(k, req)
    if not nodes:
        raise CannotObserve("no node matches" + (" -l %s" % req.selector if req.selector else ""))
    check_node_namespace(k, namespace)
    deadline = Deadline.after(req.timeout_s + 30)
    manifests = {n: node_job(node=n, image=req.image, args=args, namespace=namespace,
                             run_id=run_id, deadline_s=deadline_s) for n in nodes}
    results: dict[str, Outcome] = {}
    with jobs_cleanup(k, namespace, run_id):
        if single:
            n = nodes[0]
            out = run_job(k, manifests[n], deadline, sys.stdout)
            if out.message:
                say(out.message)
            if out.exit_code is None:
                say("no exit code from podtriage on node %s: %s" % (n, out.error))
                return 3
            return int(out.exit_code)
        say("running podtriage %s on %d node(s) as Jobs in namespace %s (run %s)"
            % (" ".join(args), len(nodes), namespace, run_id))
        results = fan_out(nodes, lambda n: run_job(k, manifests[n], deadline, None),
                          req.parallel)
    sources, missing = [], []
    for n in nodes:
        out = results.get(n) or Outcome(exit_code=None, log="", error="not run (deadline)")
        docs = documents_in(out.log)
        if docs:
            sources += [Source(doc=_with_context(d, None, None, n), origin="node %s" % n)
                        for d in docs]
        else:
            missing.append(Missing(where="node %s" % n, node=n, exit_code=out.exit_code,
                                   reason=out.error or out.message or
                                   "no JSON document in the log (exit %s)" % out.exit_code))
    return render_merged(merge(sources, missing, subject="%d nodes" % len(nodes)), req.output)


class jobs_cleanup:
    """Delete the run's Jobs on the way out, Ctrl-C and SIGTERM included."""

    def __init__(self, k: Kubectl, namespace: str, run_id: str):
        self.k, self.namespace, self.run_id = k, namespace, run_id

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, _sigterm)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is KeyboardInterrupt:
            say("interrupted: deleting this run's Jobs")
        delete_jobs(self.k, self.namespace, self.run_id)
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def _sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


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
                results[key] = Outcome(exit_code=None, log="", error=e.message)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _with_context(doc: dict[str, Any], pod: str | None, namespace: str | None,
                  node: str | None) -> dict[str, Any]:
    """Fill in context the container could not know (an image older than the context key)."""
    ctx = dict(doc.get("context") or {})
    for key, val in (("pod", pod), ("namespace", namespace), ("node", node)):
        if not ctx.get(key) and val:
            ctx[key] = val
    return {**doc, "context": ctx}


def render_merged(report: Report, output: str) -> int:
    from toolkit.model import Verdict
    from toolkit.report import OutputFormat, render

    render(report, OutputFormat(output), sys.stdout)
    sys.stdout.flush()
    if not report.data.get("reports"):
        return 3
    return 0 if report.verdict is Verdict.OK else 1


def print_yaml(docs: Sequence[dict[str, Any]]) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False))
    sys.stdout.flush()


# ---------------------------------------------------------------- fleet over pods
@dataclass(frozen=True, kw_only=True)
class PodsRequest:
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
    output: str = "table"
    dry_run: bool = False


def pods_mode(k: Kubectl, req: PodsRequest) -> int:
    args = with_json(req.args)
    if req.dry_run:
        env = debug_env("POD", req.namespace or "NAMESPACE", "NODE")
        spec = ephemeral_container(name="podtriage-TIME-XXXX", image=req.image,
                                   command=container_command(args, runbook=None,
                                                             corefile_args=[]),
                                   env=env, target="CONTAINER",
                                   profile=req.profile or Profile.NETADMIN)
        print_yaml([{"ephemeralContainers": [spec]}])
        return 0
    argv = ["get", "pods", "-l", req.selector, "--field-selector=status.phase=Running"]
    if req.all_namespaces:
        argv.append("-A")
    elif req.namespace:
        argv += ["-n", req.namespace]
    pods = k.json(argv).get("items") or []
    if not pods:
        raise CannotObserve("no running pod matches -l %s" % req.selector)
    if len(pods) > req.max_pods and not req.yes:
        raise UsageError(
            "%d pods match -l %s, more than --max %d: each gets an ephemeral container that "
            "cannot be removed (it stays in the pod spec until the pod is replaced); narrow "
            "the selector, raise --max, or confirm with --yes" % (len(pods), req.selector,
                                                                   req.max_pods))
    deadline = Deadline.after(req.timeout_s)
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
            return Outcome(exit_code=None, log="", error=e.message)
        choice = profiles.get(md["namespace"])
        env = {**debug_env(md["name"], md["namespace"], pod["spec"].get("nodeName")), **cm_env}
        return run_ephemeral(k, pod=pod, target=target, image=req.image, command=cmd, env=env,
                             profile=choice.profile, deadline=deadline, stream=None)

    say("running podtriage %s in %d pod(s), %d at a time" % (" ".join(args), len(pods),
                                                            max(1, req.parallel)))
    results = fan_out(list(by_key), one, req.parallel)
    sources, missing = [], []
    for key, pod in by_key.items():
        out = results.get(key) or Outcome(exit_code=None, log="", error="not run")
        md, node = pod["metadata"], pod["spec"].get("nodeName")
        docs = documents_in(out.log)
        if docs:
            sources += [Source(doc=_with_context(d, md["name"], md["namespace"], node),
                               origin="pod %s" % key) for d in docs]
        else:
            missing.append(Missing(where="pod %s" % key, node=node, exit_code=out.exit_code,
                                   reason=out.error or out.message or
                                   "no JSON document in the log (exit %s)" % out.exit_code))
    return render_merged(merge(sources, missing, subject="%d pods -l %s" % (len(pods),
                                                                           req.selector)),
                         req.output)


def pod_dry_run(req: PodRequest) -> int:
    cmd = container_command(req.args, runbook=req.runbook,
                            corefile_args=[" --corefile <(...)"] if req.corefiles else [])
    spec = ephemeral_container(name="podtriage-TIME-XXXX", image=req.image, command=cmd,
                               env=debug_env(req.pod, req.namespace or "NAMESPACE", "NODE"),
                               target=req.container or "CONTAINER",
                               profile=req.profile or Profile.NETADMIN)
    print_yaml([{"ephemeralContainers": [spec]}])
    return 0
