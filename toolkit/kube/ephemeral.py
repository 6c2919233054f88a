"""Pod mode: podtriage in an ephemeral container of one pod (``kubectl debug --target``).

Ephemeral containers are created with ``kubectl debug`` *without* attaching: attach needs a
streaming upgrade, loses the output written before it connects, and does not pass exit codes
back reliably (openshift/oc #1571). Instead the plugin waits for the container to start,
follows its log (``kubectl logs -f``) and reads the exit code from
``.status.ephemeralContainerStatuses[].state.terminated.exitCode``.

The fleet over pods (``toolkit.kube.fleet``) runs the same container in many pods.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_OK, CannotObserve
from toolkit.kube.container import Outcome, call_timeout, exit_code_of, run_to_end
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError, last_error
from toolkit.kube.output import print_yaml, say
from toolkit.kube.specs import Profile, ProfileChoice, choose_profile, ephemeral_container

RUNBOOKS = ("dns-slow", "service-unreachable", "check-coredns-config")
CM_LIMIT = 100_000           # bytes of one ConfigMap carried in the container spec
CONFIGMAPS = ("nodelocaldns", "node-local-dns", "coredns", "coredns-custom")
_NO_KEEP_LABELS = threading.Event()      # this kubectl predates --keep-labels


@dataclass(frozen=True, kw_only=True)
class PodRequest:
    """``kubectl podtriage POD ... -- ARGS``: what to run in which pod."""

    pod: str
    namespace: str | None
    container: str | None
    image: str
    args: tuple[str, ...]
    runbook: str | None = None
    corefiles: bool = False
    profile: Profile | None = None
    timeout_s: float = 300.0


def pod_target(pod: JsonObject, container: str | None) -> str:
    """The container to share namespaces with: ``container`` if the pod has it, else its first."""
    names = [str(c.get("name")) for c in pod.get("spec", {}).get("containers") or []]
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
        """The kubectl debug profile for a pod in ``namespace`` (read once, then cached)."""
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
    """The environment that tells podtriage where it runs (``toolkit.kube.context``)."""
    env = {"PODTRIAGE_POD": pod, "PODTRIAGE_NAMESPACE": namespace}
    if node:
        env["PODTRIAGE_NODE"] = node
    return env


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
    """The container's command: podtriage ARGS, a runbook, or bash with the Corefile pipes."""
    if runbook:
        return ["bash", "/opt/podtriage/runbooks/%s.sh" % runbook, *args]
    if corefile_args:
        script = 'exec podtriage "$@"' + "".join(corefile_args)
        return ["bash", "-c", script, "podtriage", *args]
    return ["podtriage", *args]


def debug_name() -> str:
    """A fresh ephemeral container name (time and randomness: one pod may get many)."""
    return "podtriage-%d-%s" % (int(time.time()), secrets.token_hex(2))


def _debug(k: Kubectl, argv: list[str], command: list[str], deadline: Deadline) -> tuple[int, str]:
    """Run ``kubectl debug`` (argv without the command), with --keep-labels where kubectl
    knows it: newer kubectl (kubernetes/kubectl master, debug.go debugByEphemeralContainer)
    removes the target pod's labels before adding an ephemeral container unless
    --keep-labels, which would take every pod of a fleet out of its Services and
    ReplicaSet. kubectl v1.34 knows the flag (it only acts with --copy-to there); older
    ones do not. Returns kubectl's exit code and stderr."""
    if not _NO_KEEP_LABELS.is_set():
        p = k.run([*argv, "--keep-labels=true", "--", *command], timeout=call_timeout(deadline, 60.0))
        if p.returncode == 0 or "unknown flag: --keep-labels" not in p.stderr:
            return p.returncode, p.stderr
        _NO_KEEP_LABELS.set()
    p = k.run([*argv, "--", *command], timeout=call_timeout(deadline, 60.0))
    return p.returncode, p.stderr


def run_ephemeral(k: Kubectl, *, pod: JsonObject, target: str, image: str,
                  command: list[str], env: dict[str, str], profile: Profile, deadline: Deadline,
                  stream: TextIO | None) -> Outcome:
    """Add the podtriage container to ``pod`` and see it through to its exit code."""
    md = pod["metadata"]
    ns, name = md["namespace"], md["name"]
    cname = debug_name()
    argv = ["debug", name, "-n", ns, "--target=%s" % target, "--container=%s" % cname,
            "--profile=%s" % profile.value, "--image=%s" % image, "--quiet"]
    argv += ["--env=%s=%s" % kv for kv in env.items()]
    code, stderr = _debug(k, argv, command, deadline)
    if code != 0:
        return Outcome.failed(last_error(stderr) or "kubectl debug failed (exit %d)" % code)
    if stream is not None:
        # kubectl's own warnings (e.g. a non-root pod user that may not get the capabilities)
        for line in stderr.splitlines():
            if line.strip():
                say("kubectl: %s" % line.strip())
    return run_to_end(k, ns, name, cname, ephemeral=True, deadline=deadline, stream=stream)


def get_pod(k: Kubectl, name: str, namespace: str | None) -> JsonObject:
    """The pod object; CannotObserve (exit 3) with kubectl's reason when it cannot be read."""
    argv = ["get", "pod", name] + (["-n", namespace] if namespace else [])
    try:
        return k.json(argv)
    except KubectlError as e:
        raise CannotObserve("cannot read pod %s%s: %s" % (
            name, " in namespace %s" % namespace if namespace else "", e.message)) from None


def pod_mode(k: Kubectl, req: PodRequest) -> int:
    """Run podtriage in one pod, its output on our stdout; podtriage's exit code, or 3."""
    deadline = Deadline(req.timeout_s)
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
    return exit_code_of(out, "")


def pod_dry_run(req: PodRequest) -> int:
    """--dry-run: print the ephemeral container pod mode would add (YAML)."""
    cmd = container_command(req.args, runbook=req.runbook,
                            corefile_args=[" --corefile <(...)"] if req.corefiles else [])
    spec = ephemeral_container(name="podtriage-TIME-XXXX", image=req.image, command=cmd,
                               env=debug_env(req.pod, req.namespace or "NAMESPACE", "NODE"),
                               target=req.container or "CONTAINER",
                               profile=req.profile or Profile.NETADMIN)
    print_yaml([{"ephemeralContainers": [spec]}])
    return EXIT_OK
