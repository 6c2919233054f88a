"""What the plugin asks Kubernetes to run: ephemeral-container specs (as ``kubectl debug``
builds them from a profile), node Job manifests, and the PodSecurity choice of profile.

Pure data: nothing here runs kubectl. ``--dry-run`` prints these, and the tests validate them
against the Kubernetes 1.34 schemas.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from toolkit.kube.kubectl import JsonObject

MANAGED_BY = {"app.kubernetes.io/managed-by": "podtriage"}
RUN_LABEL = "podtriage.io/run"
NONROOT_UID = 65532          # the image's numeric user (image/Containerfile USER 65532:65532)
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


class Profile(StrEnum):
    """Every ``kubectl debug --profile`` (kubectl >= 1.27; sysadmin since 1.30)."""

    NETADMIN = "netadmin"
    GENERAL = "general"
    BASELINE = "baseline"
    RESTRICTED = "restricted"
    SYSADMIN = "sysadmin"
    LEGACY = "legacy"


class Enforce(StrEnum):
    """Pod Security Admission levels (``pod-security.kubernetes.io/enforce``)."""

    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


# The securityContext each kubectl debug profile gives an ephemeral container (kubectl
# pkg/cmd/debug/profiles.go; read back from the pods kubectl v1.34.5 made in the lab's
# kube-apiserver 1.34.4). Only --dry-run shows these: kubectl builds the real one.
PROFILE_SECURITY: dict[Profile, JsonObject] = {
    Profile.NETADMIN: {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
    Profile.GENERAL: {"capabilities": {"add": ["SYS_PTRACE"]}},
    Profile.BASELINE: {},
    Profile.RESTRICTED: {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                         "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    Profile.SYSADMIN: {"privileged": True},
    Profile.LEGACY: {},
}
# The profile a PodSecurity level admits, when a refusal names the level.
FOR_LEVEL = {"baseline": Profile.BASELINE, "restricted": Profile.RESTRICTED}


@dataclass(frozen=True, kw_only=True)
class ProfileChoice:
    """The profile for a namespace, its PodSecurity level, and why it is not netadmin."""

    profile: Profile
    enforce: Enforce | None
    reason: str                  # '' when netadmin applies as asked


def choose_profile(labels: dict[str, str] | None, forced: Profile | None = None) -> ProfileChoice:
    """netadmin where PodSecurity allows it; else the strongest profile the level admits.

    Baseline allows only AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
    NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT: no NET_RAW, no NET_ADMIN
    and no SYS_PTRACE either, so kubectl's ``general`` (which adds SYS_PTRACE) would be
    refused too: ``baseline`` it is. Restricted also requires dropping ALL, runAsNonRoot,
    no privilege escalation and a seccomp profile: kubectl's ``restricted``.
    (kubernetes.io/docs/concepts/security/pod-security-standards)
    """
    level = (labels or {}).get(ENFORCE_LABEL)
    enforce = Enforce(level) if level in {e.value for e in Enforce} else None
    if forced is not None:
        return ProfileChoice(profile=forced, enforce=enforce, reason="")
    if enforce is Enforce.BASELINE:
        return ProfileChoice(profile=Profile.BASELINE, enforce=enforce, reason=(
            "namespace enforces PodSecurity baseline, which refuses NET_RAW and NET_ADMIN: "
            "using --profile=baseline; podtriage runs degraded (no raw ICMP/ARP probes, no "
            "conntrack) and names what it lost"))
    if enforce is Enforce.RESTRICTED:
        return ProfileChoice(profile=Profile.RESTRICTED, enforce=enforce, reason=(
            "namespace enforces PodSecurity restricted, which refuses every added capability: "
            "using --profile=restricted; podtriage runs degraded (no raw ICMP/ARP probes, no "
            "conntrack) and names what it lost"))
    return ProfileChoice(profile=Profile.NETADMIN, enforce=enforce, reason="")


def ephemeral_container(*, name: str, image: str, command: list[str], env: dict[str, str],
                        target: str, profile: Profile, custom: JsonObject | None = None) -> JsonObject:
    """The ephemeral container ``kubectl debug --target --profile --env [--custom]`` adds
    (for ``--dry-run``; kubectl itself builds the real one)."""
    spec: JsonObject = {
        "name": name, "image": image, "command": list(command),
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "targetContainerName": target, "terminationMessagePolicy": "File",
    }
    sc = PROFILE_SECURITY[profile]
    if sc:
        spec["securityContext"] = sc
    return merge_custom(spec, custom) if custom else spec


def merge_custom(spec: JsonObject, custom: JsonObject) -> JsonObject:
    """``kubectl debug --custom``: a partial container spec merged into the debug container
    (maps merged key by key, anything else replaced, as kubectl's strategic merge does for
    the fields a custom profile sets: securityContext, env, resources...)."""
    out = dict(spec)
    for key, val in custom.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = merge_custom(out[key], val)
        elif key == "env" and isinstance(val, list) and isinstance(out.get(key), list):
            names = {e.get("name") for e in val if isinstance(e, dict)}
            out[key] = [e for e in out[key] if e.get("name") not in names] + val
        else:
            out[key] = val
    return out


_DNS1123 = re.compile(r"[^a-z0-9-]+")


def job_name(run_id: str, node: str) -> str:
    """A valid Job name (<= 63: it becomes the job-name label value) that still shows the
    node; a hash keeps two long node names with one prefix apart."""
    short = _DNS1123.sub("-", node.lower()).strip("-") or "node"
    digest = hashlib.sha256(node.encode()).hexdigest()[:6]
    head = "podtriage-%s-" % run_id
    room = 63 - len(head) - len(digest) - 1
    return "%s%s-%s" % (head, short[:room].strip("-"), digest)


def node_job(*, node: str, image: str, args: list[str], namespace: str, run_id: str,
             deadline_s: int, ttl_s: int = 600) -> JsonObject:
    """One Job that runs podtriage once in the node's network namespace.

    hostNetwork for the node's netns (where the conntrack race of ClusterIP DNS shows);
    NET_ADMIN (ctnetlink) and NET_RAW (raw probes) on top of ALL dropped; the image's numeric
    non-root user, so runAsNonRoot holds without a root process (the image grants the two
    capabilities through file capabilities, so privilege escalation stays allowed);
    ``operator: Exists`` tolerates every taint (cordoned and control-plane nodes included);
    ``activeDeadlineSeconds`` bounds it even if the plugin dies; ``ttlSecondsAfterFinished``
    cleans up after a plugin that could not delete it; ``backoffLimit: 0``: one run, no retry.
    """
    labels = {**MANAGED_BY, "app.kubernetes.io/name": "podtriage", RUN_LABEL: run_id}
    field_env = [{"name": "PODTRIAGE_POD",
                  "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "PODTRIAGE_NAMESPACE",
                  "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                 {"name": "PODTRIAGE_NODE", "value": node}]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job_name(run_id, node), "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(deadline_s),
            "ttlSecondsAfterFinished": int(ttl_s),
            "template": {
                "metadata": {"labels": dict(labels)},   # a copy: no YAML anchors in --dry-run
                "spec": {
                    "nodeName": node,
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "tolerations": [{"operator": "Exists"}],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": NONROOT_UID,
                                        "runAsGroup": NONROOT_UID,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "podtriage",
                        "image": image,
                        "args": list(args),
                        "env": field_env,
                        "securityContext": {"capabilities": {"drop": ["ALL"],
                                                             "add": ["NET_ADMIN", "NET_RAW"]}},
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"memory": "256Mi"}},
                        "terminationMessagePolicy": "File",
                    }],
                },
            },
        },
    }
