"""Pod mode: podtriage in an ephemeral container of one pod (``kubectl debug --target``).

Ephemeral containers are created with ``kubectl debug`` *without* attaching: attach needs a
streaming upgrade, loses the output written before it connects, and does not pass exit codes
back reliably (openshift/oc #1571). Instead the plugin waits for the container to start,
follows its log (``kubectl logs -f``) and reads the exit code from
``.status.ephemeralContainerStatuses[].state.terminated.exitCode``.

PodSecurity admission judges the pod with the new container. Where the namespace's label
can be read the plugin picks a profile the level admits; where it cannot (RBAC), or the
label says nothing and the admission refuses anyway, the refusal creates nothing, so the
plugin retries once with the profile the refusal's level admits, and says so (with
``--no-retry`` or an explicit ``--profile`` it stops with the exact command instead).

The fleet over pods (``toolkit.kube.fleet``) runs the same container in many pods.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_OK, CannotObserve
from toolkit.kube.container import Outcome, Target, call_timeout, exit_code_of, run_to_end
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError, last_error
from toolkit.kube.output import Sink, print_yaml, progress, say
from toolkit.kube.specs import (
    FOR_LEVEL, Profile, ProfileChoice, choose_profile, ephemeral_container,
)

RUNBOOKS = ("dns-slow", "service-unreachable", "check-coredns-config")
CM_LIMIT = 100_000           # bytes of one ConfigMap carried in the container spec
CONFIGMAPS = ("nodelocaldns", "node-local-dns", "coredns", "coredns-custom")
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
_REFUSED = re.compile(r'violates PodSecurity "(\w+):')
_NO_KEEP_LABELS = threading.Event()      # this kubectl predates --keep-labels


@dataclass(frozen=True, kw_only=True)
class Retry:
    """How a PodSecurity refusal is met: retried once with the admitted profile (``auto``),
    or refused with the exact command to run (``rerun``: the plugin's words before --)."""

    auto: bool = True
    rerun: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    def command(self, profile: Profile) -> str:
        """The command line that asks for ``profile``."""
        return "kubectl podtriage %s --profile=%s -- %s" % (
            shlex.join(self.rerun), profile.value, shlex.join(self.args))


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
    custom: str | None = None
    retry: Retry = field(default_factory=Retry)
    timeout_s: float = 300.0


def pod_target(pod: JsonObject, container: str | None) -> str:
    """The container to share namespaces with: ``container`` if the pod has it, else the
    one the kubectl.kubernetes.io/default-container annotation names (kubectl's own rule:
    with a mesh sidecar first, the application), else the first."""
    names = [str(c.get("name")) for c in pod.get("spec", {}).get("containers") or []]
    md = pod.get("metadata") or {}
    if container:
        if container not in names:
            raise CannotObserve("pod %s has no container %s (it has: %s)"
                                % (md.get("name"), container, ", ".join(names)))
        return container
    if not names:
        raise CannotObserve("pod %s has no containers" % md.get("name"))
    default = (md.get("annotations") or {}).get(DEFAULT_CONTAINER)
    if default in names:
        return str(default)
    if default:
        say("pod %s: annotation %s names %s, which it does not have: targeting %s"
            % (md.get("name"), DEFAULT_CONTAINER, default, names[0]))
    return names[0]


@dataclass
class ProfileCache:
    """One namespace read per namespace: its PodSecurity enforce label decides the profile;
    a refusal seen in a namespace lowers it for every later pod there."""

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

    def lower(self, namespace: str, profile: Profile) -> None:
        """The admission refused the profile: ``profile`` from now on in ``namespace``."""
        with self.lock:
            old = self.cache.get(namespace)
            self.cache[namespace] = ProfileChoice(profile=profile,
                                                  enforce=old.enforce if old else None,
                                                  reason="lowered after a refusal")

    def _read(self, namespace: str) -> ProfileChoice:
        labels: dict[str, str] | None = None
        try:
            labels = self.k.json(["get", "namespace", namespace]).get("metadata", {}).get("labels")
        except KubectlError as e:
            # RBAC may forbid reading namespaces: try netadmin; admission says no if it must
            # (then the refusal is retried with the profile it admits)
            say("cannot read namespace %s (%s); assuming no PodSecurity enforcement"
                % (namespace, e.message))
        choice = choose_profile(labels, self.forced)
        if choice.reason:
            say("%s: %s" % (namespace, choice.reason))
        return choice


def debug_env(pod: str | None, namespace: str, node: str | None) -> dict[str, str]:
    """The environment that tells podtriage where it runs (``toolkit.kube.context``)."""
    env = {"PODTRIAGE_NAMESPACE": namespace}
    if pod:
        env["PODTRIAGE_POD"] = pod
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
                    % (cm, last_error(p.stderr) or "kubectl exit %d" % p.returncode))
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


@dataclass(frozen=True, kw_only=True)
class Ephemeral:
    """One ephemeral container to add: what runs, with which profile, how a refusal is met."""

    image: str
    command: list[str]
    env: dict[str, str]
    profile: Profile
    custom: str | None
    retry: Retry


def _admitted(stderr: str, e: Ephemeral, where: str) -> Profile | None:
    """The profile to retry with after a PodSecurity refusal, or None (not a refusal, or
    nothing better); CannotObserve when the retry is not ours to make."""
    m = _REFUSED.search(stderr)
    admitted = FOR_LEVEL.get(m.group(1)) if m else None
    if admitted is None or admitted is e.profile:
        return None
    if not e.retry.auto:
        raise CannotObserve("%s: PodSecurity %s refused --profile=%s: %s" % (
            where, m.group(1) if m else "?", e.profile.value, last_error(stderr)),
            hint="nothing was created; to run podtriage degraded under that level: %s"
                 % e.retry.command(admitted))
    say("%s: PodSecurity %s refused --profile=%s (nothing was created): retrying once with "
        "--profile=%s; podtriage runs degraded and names what it lost (--no-retry stops "
        "here instead)" % (where, m.group(1) if m else "?", e.profile.value, admitted.value))
    return admitted


def run_ephemeral(k: Kubectl, *, pod: JsonObject, target: str, e: Ephemeral, deadline: Deadline,
                  sink: Sink | None, profiles: ProfileCache | None = None) -> Outcome:
    """Add the podtriage container to ``pod`` and see it through to its exit code."""
    md = pod["metadata"]
    ns, name = md["namespace"], md["name"]
    cname = debug_name()
    profile = e.profile
    for attempt in range(2):
        argv = ["debug", name, "-n", ns, "--target=%s" % target, "--container=%s" % cname,
                "--profile=%s" % profile.value, "--image=%s" % e.image, "--quiet"]
        if e.custom:
            argv.append("--custom=%s" % e.custom)
        argv += ["--env=%s=%s" % kv for kv in e.env.items()]
        code, stderr = _debug(k, argv, e.command, deadline)
        if code == 0:
            break
        try:
            lower = _admitted(stderr, dataclasses.replace(e, profile=profile),
                              "pod %s/%s" % (ns, name))
        except CannotObserve as err:
            return Outcome.failed("%s (%s)" % (err.message, err.hint))
        if lower is None or attempt:
            return Outcome.failed(last_error(stderr) or "kubectl debug failed (exit %d)" % code)
        profile = lower
        if profiles is not None:
            profiles.lower(ns, lower)
    if sink is not None:
        # kubectl's own warnings (e.g. a non-root pod user that may not get the capabilities)
        for line in stderr.splitlines():
            if line.strip():
                say("kubectl: %s" % line.strip())
    progress("%s/%s: ephemeral container %s added (--profile=%s)" % (ns, name, cname, profile.value))
    return run_to_end(k, Target(namespace=ns, pod=name, name=cname, ephemeral=True),
                      deadline=deadline, sink=sink)


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
    profiles = ProfileCache(k, req.profile)
    env = debug_env(req.pod, ns, node)
    cf_args: list[str] = []
    if req.corefiles:
        cm_env, cf_args = corefile_env(k)
        env.update(cm_env)
    cmd = container_command(req.args, runbook=req.runbook, corefile_args=cf_args)
    sink = Sink(sys.stdout)
    out = run_ephemeral(k, pod=pod, target=target, deadline=deadline, sink=sink, profiles=profiles,
                        e=Ephemeral(image=req.image, command=cmd, env=env,
                                    profile=profiles.get(ns).profile, custom=req.custom,
                                    retry=req.retry))
    code = exit_code_of(out, "")
    sink.check("podtriage's output stays in the container's log: kubectl logs %s -n %s -c %s"
               % (req.pod, ns, out.container or "podtriage-..."))
    return code


def pod_dry_run(req: PodRequest, custom: JsonObject | None) -> int:
    """--dry-run: print the ephemeral container pod mode would add (YAML)."""
    cmd = container_command(req.args, runbook=req.runbook,
                            corefile_args=[" --corefile <(...)"] if req.corefiles else [])
    spec = ephemeral_container(name="podtriage-TIME-XXXX", image=req.image, command=cmd,
                               env=debug_env(req.pod, req.namespace or "NAMESPACE", "NODE"),
                               target=req.container or "CONTAINER",
                               profile=req.profile or Profile.NETADMIN, custom=custom)
    print_yaml([{"ephemeralContainers": [spec]}])
    return EXIT_OK
