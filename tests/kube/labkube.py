"""The lab's real Kubernetes as the kubectl plugin's tests use it.

- ``PluginRunner``: runs ``kubectl-podtriage`` (and kubectl) as a user would, next to the
  real kubectl v1.34, inside the lab's node namespace (the API server's address exists only
  in the lab), with a kubeconfig of the admin or of the static-token user ``triager``.
- ``Audit``: the API server's audit log (tests/lab/controlplane.py): every request kubectl
  sent since a mark, with its verb, URI, user, response code and (for changes) its body.
- ``Workloads``: namespaces (with PodSecurity labels) and pods bound to a lab node that the
  kubelet stand-in reports Running (a mapping entry: the pod's containers are a lab network
  namespace), RBAC Roles bound to ``triager``, and waiting until the authorizer agrees.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.kube import rest
from tests.kube.kubectl import ensure_kubectl

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / ".venv" / "bin" / "kubectl-podtriage"
USER = "triager"


@dataclass
class Request:
    """One request of the audit log (stage ResponseComplete)."""

    verb: str
    uri: str
    user: str
    code: int
    resource: str
    subresource: str
    namespace: str
    name: str
    body: dict | None
    user_agent: str
    impersonated: str | None

    @property
    def path(self) -> str:
        return self.uri.split("?")[0]

    @property
    def changes(self) -> bool:
        return self.verb in ("create", "update", "patch", "delete", "deletecollection")


class Audit:
    def __init__(self, path: Path):
        self.path = path

    def mark(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def since(self, mark: int, user: str | None = None) -> list[Request]:
        out = []
        try:
            with open(self.path, "rb") as f:
                f.seek(mark)
                data = f.read()
        except OSError:
            return []
        for line in data.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("stage") != "ResponseComplete":
                continue
            ref = e.get("objectRef") or {}
            r = Request(verb=e.get("verb", ""), uri=e.get("requestURI", ""),
                        user=(e.get("user") or {}).get("username", ""),
                        code=int((e.get("responseStatus") or {}).get("code") or 0),
                        resource=ref.get("resource", ""), subresource=ref.get("subresource", ""),
                        namespace=ref.get("namespace", ""), name=ref.get("name", ""),
                        body=e.get("requestObject"), user_agent=e.get("userAgent", ""),
                        impersonated=(e.get("impersonatedUser") or {}).get("username"))
            if user is None or r.user == user:
                out.append(r)
        return out


class PluginRunner:
    """kubectl-podtriage and kubectl, run in the lab as a user runs them."""

    def __init__(self, lab, home: Path):
        self.lab = lab
        self.home = home
        self.kubectl = ensure_kubectl()
        self.audit = Audit(lab.cp.dir / "audit.log")
        self.cache = lab.rundir / "kube" / "cache"

    def kubeconfig(self, user: str = "admin", namespace: str | None = None) -> Path:
        """The admin's or triager's kubeconfig, with a default namespace if asked."""
        src = self.lab.cp.kubeconfig_path(user)
        if namespace is None:
            return src
        cfg = json.loads(src.read_text())
        cfg["contexts"][0]["context"]["namespace"] = namespace
        dst = self.home / ("%s-%s.kubeconfig" % (user, namespace))
        dst.write_text(json.dumps(cfg))
        return dst

    def env(self, user: str = "admin", namespace: str | None = None, **extra) -> dict[str, str]:
        e = {"PATH": "%s:%s:/usr/sbin:/usr/bin:/sbin:/bin" % (self.kubectl.parent, PLUGIN.parent),
             "KUBECONFIG": str(self.kubeconfig(user, namespace)), "HOME": str(self.home),
             "KUBECACHEDIR": str(self.cache), "PODTRIAGE_POLL_INTERVAL": "0.2", "LANG": "C.UTF-8"}
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def argv(self, program, *args, env: dict[str, str]) -> list[str]:
        return ["ip", "netns", "exec", self.lab.ns("node"), "env", "-i",
                *("%s=%s" % kv for kv in env.items()), str(program), *map(str, args)]

    def run(self, *args, user: str = "admin", namespace: str | None = None, plugin=PLUGIN,
            timeout: float = 180, input: str | None = None, **extra) -> subprocess.CompletedProcess:
        """The plugin's run; ``.requests`` holds what kubectl sent (the audit log)."""
        env = self.env(user, namespace, **extra)
        mark = self.audit.mark()
        p = subprocess.run(self.argv(plugin, *args, env=env), capture_output=True, text=True,
                           timeout=timeout, input=input)
        time.sleep(0.05)         # the audit backend writes as the response completes
        p.requests = [r for r in self.audit.since(mark) if "kubectl" in r.user_agent]
        return p

    def popen(self, *args, user: str = "admin", **extra) -> tuple[subprocess.Popen, int]:
        env = self.env(user, **extra)
        mark = self.audit.mark()
        # its own session: killing the group kills its kubectl children too, as closing a
        # terminal does
        proc = subprocess.Popen(self.argv(PLUGIN, *args, env=env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        return proc, mark

    def kubectl_run(self, *args, user: str = "admin", timeout: float = 60, **extra):
        env = self.env(user, **extra)
        return subprocess.run(self.argv(self.kubectl, *args, env=env), capture_output=True,
                              text=True, timeout=timeout)


class Workloads:
    """Objects made through the admin's API client, and the kubelet mapping for pods."""

    def __init__(self, lab):
        self.lab = lab
        self.api = lab.api()

    def close(self):
        self.api.close()

    def namespace(self, name: str, enforce: str | None = None) -> None:
        labels = {"pod-security.kubernetes.io/enforce": enforce} if enforce else {}
        self.api.apply({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "labels": labels}})
        # a pod needs its namespace's default ServiceAccount (the controller makes it)
        self.api.wait_for("/api/v1/namespaces/%s/serviceaccounts/default" % name, bool, timeout=30)

    def pod(self, name: str, namespace: str, *, node: str = "node", netns: str | None = "pod",
            containers=("app",), labels: dict | None = None, annotations: dict | None = None,
            wait: bool = True, map_it: bool = True) -> dict:
        """A pod bound to ``node`` whose containers are the lab namespace ``netns`` (None:
        no namespace: its ephemeral containers never start)."""
        md = {"name": name, "namespace": namespace, "labels": labels or {}}
        if annotations:
            md["annotations"] = annotations
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": md,
                "spec": {"nodeName": node, "automountServiceAccountToken": False,
                         "terminationGracePeriodSeconds": 1, "enableServiceLinks": False,
                         "containers": [{"name": c, "image": "docker.io/library/debian:bookworm-slim",
                                         "command": ["sleep", "infinity"],
                                         "securityContext": {
                                             "allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]},
                                             "runAsNonRoot": True, "runAsUser": 1000,
                                             "seccompProfile": {"type": "RuntimeDefault"}}}
                                        for c in containers]}}
        if map_it:
            entry = {"ips": ["10.244.1.10"]}
            if netns is not None:
                entry["netns"] = self.lab.ns(netns)
            self.lab._kubelet_mapping(node, {"%s/%s" % (namespace, name): entry})
        obj = self.api.create(body)
        if wait:
            obj = self.api.wait_for("/api/v1/namespaces/%s/pods/%s" % (namespace, name),
                                    lambda p: (p.get("status") or {}).get("phase") == "Running",
                                    timeout=30)
        return obj

    def get_pod(self, namespace: str, name: str) -> dict:
        return self.api.get("/api/v1/namespaces/%s/pods/%s" % (namespace, name))

    def ephemeral(self, namespace: str, name: str) -> list[dict]:
        return self.get_pod(namespace, name)["spec"].get("ephemeralContainers") or []

    def configmap(self, name: str, namespace: str, data: dict) -> None:
        self.api.apply({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": namespace}, "data": data})

    # ------------------------------------------------------------ RBAC for triager
    def grant(self, tag: str, *roles: dict) -> None:
        """Bind each Role/ClusterRole (dicts of the README) to user triager, under names
        that start with ``tag`` (revoke(tag) removes them)."""
        for role in roles:
            role = json.loads(json.dumps(role))
            kind = role["kind"]
            role["metadata"]["name"] = "%s-%s" % (tag, role["metadata"]["name"])
            self.api.apply(role)
            binding = {"apiVersion": "rbac.authorization.k8s.io/v1",
                       "kind": "RoleBinding" if kind == "Role" else "ClusterRoleBinding",
                       "metadata": {"name": role["metadata"]["name"]},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind,
                                   "name": role["metadata"]["name"]},
                       "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                     "name": USER}]}
            if kind == "Role":
                binding["metadata"]["namespace"] = role["metadata"]["namespace"]
            self.api.apply(binding)

    def revoke(self, tag: str) -> None:
        base = "/apis/rbac.authorization.k8s.io/v1"
        for kind in ("clusterrolebindings", "clusterroles"):
            for item in self.api.get("%s/%s" % (base, kind))["items"]:
                if item["metadata"]["name"].startswith(tag + "-"):
                    self.api.delete("%s/%s/%s" % (base, kind, item["metadata"]["name"]))
        for kind in ("rolebindings", "roles"):
            for item in self.api.get("%s/%s" % (base, kind))["items"]:
                md = item["metadata"]
                if md["name"].startswith(tag + "-"):
                    self.api.delete("%s/namespaces/%s/%s/%s" % (base, md["namespace"], kind, md["name"]))

    def can(self, verb: str, resource: str, namespace: str = "", subresource: str = "",
            group: str = "", name: str = "") -> bool:
        """The authorizer's answer for triager (a SubjectAccessReview, as admin)."""
        ra = {"verb": verb, "resource": resource, "group": group}
        for k, v in (("namespace", namespace), ("subresource", subresource), ("name", name)):
            if v:
                ra[k] = v
        r = self.api.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": USER, "groups": ["oncall", "system:authenticated"],
                     "resourceAttributes": ra}})
        return bool(r["status"].get("allowed"))

    def settle(self, checks: list[tuple[bool, dict]], timeout: float = 10.0) -> None:
        """Wait until the RBAC authorizer's cache agrees with every (expected, attributes)."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self.can(**attrs) == want for want, attrs in checks):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("RBAC did not settle: %s" % checks)
            time.sleep(0.1)


def have_podman_image(image: str) -> bool:
    return bool(shutil.which("podman")) and subprocess.run(
        ["podman", "image", "exists", image], capture_output=True).returncode == 0


def runtime_images(lab, images: dict[str, str]) -> None:
    """Tell the kubelet stand-ins which images run how (tests/kube/runtime.py)."""
    from tests.kube.runtime import DEFAULT_IMAGES

    path = lab.rundir / "kubelet-runtime.json"
    path.write_text(json.dumps({"images": {**DEFAULT_IMAGES, **images}}, indent=1))
    os.chmod(path, 0o644)
