"""``--node NODE`` (or ``node/NODE``): podtriage once on a node, the way kubectl users debug a
node: ``kubectl debug node/NODE --profile=netadmin`` (a pod pinned to the node with the
host's network, PID and IPC namespaces, and NET_ADMIN and NET_RAW: where the conntrack race
of ClusterIP DNS shows). The plugin follows the pod's log, exits with podtriage's exit code
and deletes the pod (on Ctrl-C and SIGTERM too). kubectl gives the pod no TTL: a plugin
killed with SIGKILL leaves it (Completed) behind, as ``kubectl debug node/`` does.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.errors import CannotObserve
from toolkit.kube.cleanup import deleting
from toolkit.kube.container import Target, call_timeout, exit_code_of, run_to_end
from toolkit.kube.ephemeral import debug_env
from toolkit.kube.jobs import check_node_namespace, namespace_of_context
from toolkit.kube.kubectl import Kubectl, last_error
from toolkit.kube.output import Sink, progress, say
from toolkit.kube.specs import Profile

# kubectl debug node/ (pkg/cmd/debug/debug.go, debugByCreatingPod) says which pod it made
_CREATED = re.compile(r"Creating debugging pod (\S+) with container (\S+) on node")


@dataclass(frozen=True, kw_only=True)
class NodeDebugRequest:
    """``--node NODE -- ARGS``."""

    node: str
    namespace: str | None
    image: str
    args: tuple[str, ...]
    profile: Profile | None = None
    custom: str | None = None
    timeout_s: float = 300.0


def node_debug_argv(req: NodeDebugRequest, namespace: str) -> list[str]:
    """The ``kubectl debug node/NODE`` command line (what --dry-run prints, too)."""
    argv = ["debug", "node/%s" % req.node, "-n", namespace, "--image=%s" % req.image,
            "--profile=%s" % (req.profile or Profile.NETADMIN).value]
    if req.custom:
        argv.append("--custom=%s" % req.custom)
    argv += ["--env=%s=%s" % kv for kv in debug_env(None, namespace, req.node).items()]
    return [*argv, "--", "podtriage", *req.args]


def _delete_pod(k: Kubectl, namespace: str, pod: str) -> None:
    p = k.run(["delete", "pod", pod, "-n", namespace, "--wait=false", "--ignore-not-found"],
              timeout=30)
    if p.returncode != 0:
        say("could not delete pod %s/%s: %s (delete it yourself: kubectl delete pod %s -n %s)"
            % (namespace, pod, last_error(p.stderr), pod, namespace))


def node_mode(k: Kubectl, req: NodeDebugRequest) -> int:
    """Run podtriage on the node; its output on our stdout, its exit code (3 when none)."""
    deadline = Deadline(req.timeout_s + 30)
    namespace = req.namespace or namespace_of_context(k)
    check_node_namespace(k, namespace)
    p = k.run(node_debug_argv(req, namespace), timeout=call_timeout(deadline, 60.0))
    made = _CREATED.search(p.stdout + p.stderr)
    if p.returncode != 0 or made is None:
        raise CannotObserve("kubectl debug node/%s failed: %s" % (
            req.node, last_error(p.stderr) or "no debugging pod was reported (exit %d)" % p.returncode))
    pod, container = made.group(1), made.group(2)
    progress("node %s: debugging pod %s/%s created" % (req.node, namespace, pod))
    sink = Sink(sys.stdout)
    with deleting("pod %s/%s" % (namespace, pod), lambda: _delete_pod(k, namespace, pod)):
        out = run_to_end(k, Target(namespace=namespace, pod=pod, name=container, ephemeral=False),
                         deadline=deadline, sink=sink)
    code = exit_code_of(out, " on node %s" % req.node)
    sink.check("the pod that ran it is deleted; rerun with -o json > FILE")
    return code
