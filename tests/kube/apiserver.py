"""An API-server stand-in for the kubectl plugin tests: plain HTTP on 127.0.0.1, the subset of
the Kubernetes API that kubectl uses for ``kubectl debug``, ``get``, ``logs``, ``create`` and
``delete``, an in-memory store, and a record of every request.

Served: legacy discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/batch/v1``; the aggregated
discovery Accept header is answered with the legacy documents, which kubectl accepts), ``/version``,
``/openapi/v2`` and ``/openapi/v3`` (404: kubectl then skips client-side schema validation and
relies on the server's field validation), namespaces, nodes, pods (get/list/create/delete,
strategic-merge patch of the ``ephemeralcontainers`` subresource), ``pods/log`` (with
``follow``: chunked, until the container terminates), ConfigMaps and Jobs (create/get/list/
delete; creating a Job creates its pod, as the Job controller would).

The store is the test's to change (``server.store``); a kubelet stand-in (``tests.kube.kubelet``)
watches it and fills in container statuses and logs. Stdlib only.
"""
from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


RESOURCES_V1 = [
    {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"]},
    {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
     "verbs": ["get", "list", "patch", "watch"], "shortNames": ["no"]},
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "shortNames": ["po"], "categories": ["all"]},
    {"name": "pods/ephemeralcontainers", "singularName": "", "namespaced": True, "kind": "Pod",
     "verbs": ["get", "patch", "update"]},
    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    {"name": "pods/attach", "singularName": "", "namespaced": True, "kind": "PodAttachOptions",
     "verbs": ["create", "get"]},
    {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
     "verbs": ["get", "patch", "update"]},
    {"name": "configmaps", "singularName": "configmap", "namespaced": True, "kind": "ConfigMap",
     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["cm"]},
]
RESOURCES_BATCH = [
    {"name": "jobs", "singularName": "job", "namespaced": True, "kind": "Job",
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
     "categories": ["all"]},
    {"name": "jobs/status", "singularName": "", "namespaced": True, "kind": "Job",
     "verbs": ["get", "patch", "update"]},
]
KINDS = {"namespaces": ("v1", "Namespace"), "nodes": ("v1", "Node"), "pods": ("v1", "Pod"),
         "configmaps": ("v1", "ConfigMap"), "jobs": ("batch/v1", "Job")}


def _openapi_doc(gv: str, paths: dict[str, tuple[str, str]]) -> dict:
    """A minimal OpenAPI v3 document for one group-version: just enough for kubectl to see
    that PATCH takes ``fieldValidation`` (cli-runtime's queryParamVerifierV3), so it leaves
    validation to the server (which here validates against the 1.34 schemas) instead of
    downloading schemas for client-side validation."""
    group, _, version = gv.rpartition("/")
    group = "" if group == "api" else group.split("/", 1)[-1]
    out = {}
    for path, (kind, _) in paths.items():
        out[path] = {"patch": {
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string"}}
                           for name in ("dryRun", "fieldManager", "fieldValidation", "force")],
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (stand-in)", "version": "v1.34.0"},
            "paths": out}


OPENAPI_V3 = {
    "api/v1": _openapi_doc("api/v1", {
        "/api/v1/namespaces/{namespace}/pods/{name}": ("Pod", ""),
        "/api/v1/namespaces/{namespace}/configmaps/{name}": ("ConfigMap", ""),
        "/api/v1/namespaces/{name}": ("Namespace", ""),
        "/api/v1/nodes/{name}": ("Node", "")}),
    "apis/batch/v1": _openapi_doc("apis/batch/v1", {
        "/apis/batch/v1/namespaces/{namespace}/jobs/{name}": ("Job", "")}),
}

K8S_SCHEMA_VERSION = "1.34.0"


def schema_errors(obj: dict) -> str | None:
    """Strict validation against the Kubernetes 1.34 schemas (kubernetes-validate, offline):
    what a real API server with fieldValidation=Strict refuses. None when valid."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        return "%s: %s" % (where or "(root)", e.message)
    return None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None
    status: int = 0


@dataclass
class Store:
    """Objects by (resource, namespace or '', name); logs by (namespace, pod, container)."""
    objects: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    logs: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = None  # type: ignore[assignment]
    rv: int = 1000

    def __post_init__(self):
        self.changed = threading.Condition(self.lock)

    def put(self, resource: str, obj: dict) -> dict:
        with self.lock:
            md = obj.setdefault("metadata", {})
            ns = md.get("namespace", "") if resource not in ("namespaces", "nodes") else ""
            if resource not in ("namespaces", "nodes"):
                md.setdefault("namespace", "default")
                ns = md["namespace"]
            md.setdefault("uid", str(uuid.uuid4()))
            md.setdefault("creationTimestamp", now())
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            api, kind = KINDS[resource]
            if resource == "pods":
                default_pod(obj)
            elif resource == "jobs":
                default_pod(obj.setdefault("spec", {}).setdefault("template", {}))
            obj.setdefault("apiVersion", api)
            obj.setdefault("kind", kind)
            self.objects[(resource, ns, md["name"])] = obj
            self.changed.notify_all()
            return obj

    # get/list hand out deep copies taken under the lock: the HTTP threads serialise while
    # the kubelet stand-in updates statuses, and a shared dict changing size mid-copy would
    # turn into a 500 for kubectl
    def get(self, resource: str, ns: str, name: str) -> dict | None:
        with self.lock:
            return copy.deepcopy(self.objects.get(
                (resource, ns if resource not in ("namespaces", "nodes") else "", name)))

    def list(self, resource: str, ns: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(o) for (r, n, _), o in sorted(self.objects.items())
                    if r == resource and (ns is None or n == ns)]

    def delete(self, resource: str, ns: str, name: str) -> dict | None:
        with self.lock:
            obj = self.objects.pop((resource, ns, name), None)
            self.changed.notify_all()
            return obj

    def append_log(self, ns: str, pod: str, container: str, data: bytes) -> None:
        with self.lock:
            key = (ns, pod, container)
            self.logs[key] = self.logs.get(key, b"") + data
            self.changed.notify_all()

    def touch(self) -> None:
        with self.lock:
            self.rv += 1
            self.changed.notify_all()


# ---------------------------------------------------------------- selectors
_REQ = re.compile(r"\s*(!)?\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=|\s+in\s+|\s+notin\s+)\s*(\([^)]*\)|[^,]*))?\s*")


def _split_selector(sel: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def match_labels(selector: str, labels: dict[str, str]) -> bool:
    for part in _split_selector(selector or ""):
        m = _REQ.fullmatch(part)
        if not m:
            raise ValueError("unable to parse requirement: %r" % part)
        neg, key, op, val = m.groups()
        op = (op or "").strip()
        if not op:
            if (key in labels) == bool(neg):
                return False
            continue
        if op in ("in", "notin"):
            vals = {v.strip() for v in val.strip("()").split(",")}
            if (labels.get(key) in vals) != (op == "in"):
                return False
        elif op in ("=", "=="):
            if labels.get(key) != val.strip():
                return False
        elif labels.get(key) == val.strip():
            return False
    return True


def _field(obj: dict, path: str) -> str:
    cur: Any = obj
    for p in path.split("."):
        cur = cur.get(p) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def match_fields(selector: str, obj: dict) -> bool:
    for part in _split_selector(selector or ""):
        if "!=" in part:
            k, v = part.split("!=", 1)
            if _field(obj, k.strip()) == v.strip():
                return False
        else:
            k, v = part.replace("==", "=").split("=", 1)
            if _field(obj, k.strip()) != v.strip():
                return False
    return True


def default_pod(pod: dict) -> dict:
    """The API server's defaulting, for the fields kubectl reads back (kubectl debug
    dereferences spec.securityContext, which a real server always sets)."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("securityContext", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) + \
            (spec.get("ephemeralContainers") or []):
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", "IfNotPresent")
    return pod


# ---------------------------------------------------------------- strategic merge (the subset used)
def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic-merge patch for what kubectl sends here: maps merge, lists of named objects
    merge by ``name`` (the merge key of containers, ephemeralContainers, env), other lists are
    replaced, ``$``-directives are ignored, null deletes."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    out = dict(target)
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list) and v and \
                all(isinstance(i, dict) and "name" in i for i in v):
            merged = list(out[k])
            for item in v:
                idx = next((i for i, e in enumerate(merged)
                            if isinstance(e, dict) and e.get("name") == item["name"]), None)
                if idx is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[idx] = strategic_merge(merged[idx], item)
            out[k] = merged
        elif isinstance(v, dict):
            out[k] = strategic_merge(out.get(k, {}), v)
        else:
            out[k] = copy.deepcopy(v)
    return out


BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def podsecurity_violations(level: str | None, c: dict, pod_spec: dict) -> str:
    """Pod Security Admission's container checks, for one (ephemeral) container: baseline
    (added capabilities within the default set, no privileged) and restricted (also drop ALL,
    only NET_BIND_SERVICE added, runAsNonRoot, no privilege escalation, a seccomp profile)."""
    if level not in ("baseline", "restricted"):
        return ""
    sc = c.get("securityContext") or {}
    psc = pod_spec.get("securityContext") or {}
    added = set((sc.get("capabilities") or {}).get("add") or [])
    out = []
    if sc.get("privileged"):
        out.append("privileged")
    allowed = BASELINE_CAPS if level == "baseline" else {"NET_BIND_SERVICE"}
    if added - allowed:
        out.append("non-default capabilities (container %r must not include %s in "
                   "securityContext.capabilities.add)" % (c["name"], ", ".join(sorted(added - allowed))))
    if level == "restricted":
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append("allowPrivilegeEscalation != false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            out.append("unrestricted capabilities")
        if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            out.append("runAsNonRoot != true")
        if not (sc.get("seccompProfile") or psc.get("seccompProfile")):
            out.append("seccompProfile")
    return ", ".join(out)


def _clean(obj: dict) -> dict:
    """The object as a client may send it: server-set metadata and status removed."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    return out


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_doc(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


# ---------------------------------------------------------------- the server
class ApiServer:
    """``with ApiServer() as api: api.kubeconfig(path)``; ``api.requests`` lists every request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the API stand-in listens on loopback only")
        self.store = Store()
        self.requests: list[Request] = []
        self.log_follow_limit = 120.0      # seconds a followed log stays open at most
        self.rejectors: list = []          # callables (method, path, body) -> ApiError | None
        self.rules: list | None = None     # RBAC rules once grant() was called
        handler = _make_handler(self)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="api-standin",
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return "http://%s:%d" % (host, port)

    def start(self) -> "ApiServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def kubeconfig(self, path: Path, context: str = "lab", namespace: str = "default") -> Path:
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "standin-token"}}],
            "contexts": [{"name": context, "context": {"cluster": "standin", "user": "tester",
                                                        "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)
        return path

    def clear_requests(self) -> None:
        with self.store.lock:
            self.requests.clear()

    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        with self.store.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and contains in r.path]

    # ------------------------------------------------------------ objects for tests
    def add_namespace(self, name: str, labels: dict | None = None) -> dict:
        return self.store.put("namespaces", {"metadata": {"name": name, "labels": {
            "kubernetes.io/metadata.name": name, **(labels or {})}},
            "status": {"phase": "Active"}})

    def add_node(self, name: str, labels: dict | None = None, taints: list | None = None) -> dict:
        return self.store.put("nodes", {
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "kubernetes.io/os": "linux", **(labels or {})}},
            "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}})

    def add_pod(self, name: str, namespace: str = "default", node: str = "node-1",
                labels: dict | None = None, containers=("app",), ip: str = "") -> dict:
        return self.store.put("pods", {
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [
                {"name": c, "image": "registry.example/app:1"} for c in containers]},
            "status": {"phase": "Running", "podIP": ip, "hostIP": "",
                       "containerStatuses": [{"name": c, "ready": True, "restartCount": 0,
                                              "image": "registry.example/app:1",
                                              "state": {"running": {"startedAt": now()}}}
                                             for c in containers]}})

    def add_configmap(self, name: str, namespace: str, data: dict) -> dict:
        return self.store.put("configmaps", {"metadata": {"name": name, "namespace": namespace},
                                             "data": data})

    # ------------------------------------------------------------ dispatch
    def grant(self, *roles: dict) -> None:
        """Enforce RBAC from now on: only what these Roles (in their namespace) and
        ClusterRoles (cluster-wide, as if bound by a ClusterRoleBinding) allow. Non-resource
        URLs (discovery, /openapi, /version) stay open, as system:discovery leaves them."""
        self.rules = []
        for role in roles:
            ns = role["metadata"].get("namespace") if role["kind"] == "Role" else None
            for rule in role.get("rules") or []:
                self.rules.append((ns, rule))

    def authorize(self, method: str, path: str, query: dict) -> None:
        if getattr(self, "rules", None) is None:
            return
        m = re.fullmatch(r"/(?:api/v1|apis/([^/]+)/v1)(?:/namespaces/([^/]+))?(?:/([^/]+))?"
                         r"(?:/([^/]+))?(?:/([^/]+))?", path)
        if not m or path in ("/api/v1", "/apis/batch/v1"):
            return                                      # non-resource URL
        group, ns, res, name, sub = m.groups()
        if ns is not None and res is None:              # /api/v1/namespaces/NAME
            res, name, ns = "namespaces", ns, None
        resource = res + ("/" + sub if sub else "")
        verb = {"GET": "get" if name else ("watch" if query.get("watch") else "list"),
                "POST": "create", "PATCH": "patch", "PUT": "update",
                "DELETE": "delete"}[method]
        for rns, rule in self.rules:
            if rns is not None and rns != ns:
                continue
            if (group or "") not in rule.get("apiGroups", []) or \
                    resource not in rule.get("resources", []) or verb not in rule.get("verbs", []):
                continue
            if rule.get("resourceNames") and name not in rule["resourceNames"]:
                continue
            return
        raise ApiError(403, "Forbidden", '%s "%s" is forbidden: User "tester" cannot %s resource '
                       '"%s" in API group "%s"%s' % (resource, name or "", verb, resource,
                                                      group or "", " in the namespace \"%s\"" % ns
                                                      if ns else " at the cluster scope"))

    def handle(self, method: str, path: str, query: dict, body: Any, headers: dict):
        """(status, content-type, payload) or a generator for streamed logs."""
        self.authorize(method, path, query)
        for rej in self.rejectors:
            err = rej(method, path, body)
            if err is not None:
                raise err
        if path == "/version":
            return 200, {"major": "1", "minor": "34", "gitVersion": "v1.34.0-standin",
                         "platform": "linux/amd64"}
        if path == "/openapi/v3":
            return 200, {"paths": {gv: {"serverRelativeURL": "/openapi/v3/%s?hash=standin" % gv}
                                   for gv in OPENAPI_V3}}
        if path.startswith("/openapi/v3/") and path[len("/openapi/v3/"):] in OPENAPI_V3:
            return 200, OPENAPI_V3[path[len("/openapi/v3/"):]]
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                         "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "batch", "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}}]}
        if path == "/api/v1":
            return 200, {"kind": "APIResourceList", "groupVersion": "v1",
                         "resources": RESOURCES_V1}
        if path == "/apis/batch/v1":
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "batch/v1",
                         "resources": RESOURCES_BATCH}
        m = re.fullmatch(r"/api/v1(?:/namespaces/([^/]+))?/(pods|configmaps)(?:/([^/]+))?(?:/([a-z]+))?",
                         path) or re.fullmatch(
            r"/apis/batch/v1(?:/namespaces/([^/]+))?/(jobs)(?:/([^/]+))?(?:/([a-z]+))?", path)
        if m:
            return self._namespaced(method, m.group(2), m.group(1), m.group(3), m.group(4),
                                    query, body)
        m = re.fullmatch(r"/api/v1/(namespaces|nodes)(?:/([^/]+))?", path)
        if m:
            res, name = m.groups()
            if method == "GET":
                if name:
                    obj = self.store.get(res, "", name)
                    if obj is None:
                        raise ApiError(404, "NotFound", '%s "%s" not found' % (res, name))
                    return 200, obj
                return 200, self._list(res, None, query)
            raise ApiError(405, "MethodNotAllowed", "the stand-in does not %s %s" % (method, res))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _list(self, res: str, ns: str | None, query: dict) -> dict:
        api, kind = KINDS[res]
        items = self.store.list(res, ns)
        ls = query.get("labelSelector", [""])[0]
        fs = query.get("fieldSelector", [""])[0]
        try:
            items = [o for o in items if match_labels(ls, o["metadata"].get("labels") or {})
                     and match_fields(fs, o)]
        except ValueError as e:
            raise ApiError(400, "BadRequest", str(e)) from None
        return {"apiVersion": api, "kind": kind + "List",
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": copy.deepcopy(items)}

    def _namespaced(self, method, res, ns, name, sub, query, body):
        if method == "GET":
            return self._namespaced_locked(method, res, ns, name, sub, query, body)
        with self.store.lock:       # read-modify-write: no status update lost in between
            return self._namespaced_locked(method, res, ns, name, sub, query, body)

    def _namespaced_locked(self, method, res, ns, name, sub, query, body):
        kind = KINDS[res][1]
        if ns is not None and res != "namespaces" and self.store.get("namespaces", "", ns) is None \
                and method in ("POST", "PATCH"):
            raise ApiError(404, "NotFound", 'namespaces "%s" not found' % ns)
        if name is None:
            if method == "GET":
                return 200, self._list(res, ns, query)
            if method == "POST":
                return self._create(res, ns or "default", body, query)
            raise ApiError(405, "MethodNotAllowed", "%s on a collection" % method)
        obj = self.store.get(res, ns or "default", name)
        if obj is None and not (method == "POST"):
            raise ApiError(404, "NotFound", '%s "%s" not found' % (res, name))
        if sub == "log" and res == "pods" and method == "GET":
            return self._log(obj, query)
        if sub == "ephemeralcontainers" and res == "pods":
            if method == "GET":
                return 200, copy.deepcopy(obj)
            if method == "PATCH":
                return self._patch_ephemeral(obj, body, query)
            raise ApiError(405, "MethodNotAllowed", "ephemeralcontainers: %s" % method)
        if sub:
            raise ApiError(404, "NotFound", "subresource %s not served by the stand-in" % sub)
        if method == "GET":
            return 200, copy.deepcopy(obj)
        if method == "DELETE":
            return self._delete(res, obj, query, body)
        raise ApiError(405, "MethodNotAllowed", "the stand-in does not %s %s" % (method, kind))

    def _create(self, res: str, ns: str, body: Any, query: dict):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "body is not a JSON object")
        md = body.setdefault("metadata", {})
        if body.get("kind") != KINDS[res][1]:
            raise ApiError(400, "BadRequest", "kind %r does not match %s" % (body.get("kind"), res))
        md.setdefault("namespace", ns)
        if md["namespace"] != ns:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match")
        if not md.get("name"):
            gen = md.get("generateName")
            if not gen:
                raise ApiError(422, "Invalid", "name or generateName is required")
            md["name"] = gen + uuid.uuid4().hex[:5]
        if self.store.get(res, ns, md["name"]) is not None:
            raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (res, md["name"]))
        err = schema_errors(_clean(body))
        if err:
            raise ApiError(422, "Invalid", "%s %s is invalid: %s" % (KINDS[res][1], md["name"], err))
        if "dryRun" in query:
            return 201, body
        if res == "pods":
            body.setdefault("status", {"phase": "Pending"})
        if res == "jobs":
            body.setdefault("status", {"active": 1, "startTime": now()})
            obj = self.store.put(res, body)
            self._job_pod(obj)
            return 201, copy.deepcopy(obj)
        return 201, copy.deepcopy(self.store.put(res, body))

    def _job_pod(self, job: dict) -> None:
        """What the Job controller does first: one pod from the template, labelled and owned."""
        md = job["metadata"]
        tmpl = copy.deepcopy(job["spec"]["template"])
        labels = dict(tmpl.get("metadata", {}).get("labels") or {})
        labels.update({"job-name": md["name"], "batch.kubernetes.io/job-name": md["name"],
                       "controller-uid": md["uid"], "batch.kubernetes.io/controller-uid": md["uid"]})
        pod = {"metadata": {"name": md["name"] + "-" + uuid.uuid4().hex[:5],
                            "namespace": md["namespace"], "labels": labels,
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                                 "name": md["name"], "uid": md["uid"],
                                                 "controller": True}]},
               "spec": tmpl["spec"], "status": {"phase": "Pending"}}
        self.store.put("pods", pod)

    def _delete(self, res: str, obj: dict, query: dict, body: Any):
        md = obj["metadata"]
        self.store.delete(res, md["namespace"], md["name"])
        if res == "jobs":
            policy = (body or {}).get("propagationPolicy") if isinstance(body, dict) else None
            policy = policy or query.get("propagationPolicy", [None])[0]
            if policy in ("Background", "Foreground"):
                for pod in self.store.list("pods", md["namespace"]):
                    if (pod["metadata"].get("labels") or {}).get("job-name") == md["name"]:
                        self.store.delete("pods", md["namespace"], pod["metadata"]["name"])
        return 200, obj

    def _patch_ephemeral(self, obj: dict, body: Any, query: dict):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "patch body is not a JSON object")
        spec = body.get("spec") or {}
        if set(body) - {"spec", "metadata"} or set(spec) - {"ephemeralContainers",
                                                             "$setElementOrder/ephemeralContainers"}:
            raise ApiError(422, "Invalid", "only spec.ephemeralContainers may change")
        old = {c["name"] for c in obj["spec"].get("ephemeralContainers") or []}
        merged = strategic_merge(obj, body)
        new = merged["spec"].get("ephemeralContainers") or []
        if not old <= {c["name"] for c in new}:
            raise ApiError(422, "Invalid", "ephemeral containers cannot be removed")
        names = [c["name"] for c in merged["spec"]["containers"]] + [c["name"] for c in new]
        if len(names) != len(set(names)):
            raise ApiError(422, "Invalid", "duplicate container name")
        for c in new:
            if c["name"] in old:
                continue
            for key in ("ports", "livenessProbe", "readinessProbe", "startupProbe", "resources",
                        "lifecycle"):
                if c.get(key):
                    raise ApiError(422, "Invalid", "ephemeral containers may not set %s" % key)
        ns_obj = self.store.get("namespaces", "", obj["metadata"]["namespace"]) or {}
        level = (ns_obj.get("metadata", {}).get("labels") or {}).get(
            "pod-security.kubernetes.io/enforce")
        for c in new:
            if c["name"] not in old:
                bad = podsecurity_violations(level, c, merged["spec"])
                if bad:
                    raise ApiError(403, "Forbidden", 'pods "%s" is forbidden: violates PodSecurity '
                                   '"%s:latest": %s' % (obj["metadata"]["name"], level, bad))
        err = schema_errors(_clean(merged))
        if err:
            raise ApiError(422, "Invalid", "Pod %s is invalid: %s" % (merged["metadata"]["name"], err))
        if "dryRun" in query:
            return 200, merged
        return 200, copy.deepcopy(self.store.put("pods", merged))

    def _log(self, pod: dict, query: dict):
        md = pod["metadata"]
        container = query.get("container", [None])[0]
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        eph = [c["name"] for c in pod["spec"].get("ephemeralContainers") or []]
        if container is None:
            if len(names) != 1:
                raise ApiError(400, "BadRequest", "a container name must be specified for pod %s, "
                               "choose one of: %s" % (md["name"], names))
            container = names[0]
        if container not in names + eph:
            raise ApiError(400, "BadRequest", "container %s is not valid for pod %s"
                           % (container, md["name"]))
        key = (md["namespace"], md["name"], container)
        if not self._started(md["namespace"], md["name"], container):
            raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start: '
                           "ContainerCreating" % (container, md["name"]))
        if query.get("follow", ["false"])[0] != "true":
            return 200, self.store.logs.get(key, b"")
        return 200, self._follow(key)

    def _status(self, ns: str, pod: str, container: str) -> dict | None:
        obj = self.store.get("pods", ns, pod)
        if obj is None:
            return None
        st = obj.get("status") or {}
        for s in (st.get("containerStatuses") or []) + (st.get("ephemeralContainerStatuses") or []):
            if s.get("name") == container:
                return s
        return None

    def _started(self, ns, pod, container) -> bool:
        s = self._status(ns, pod, container)
        return bool(s and ("running" in s.get("state", {}) or "terminated" in s.get("state", {})))

    def _follow(self, key):
        """Chunks of the log as the kubelet stand-in appends them, until the container is
        terminated (or the pod gone, or log_follow_limit passes)."""
        sent = 0
        deadline = time.monotonic() + self.log_follow_limit
        while True:
            with self.store.lock:
                data = self.store.logs.get(key, b"")
                st = self._status(*key)
                done = st is None or "terminated" in (st.get("state") or {})
                if len(data) == sent and not done:
                    self.store.changed.wait(timeout=0.5)
                    data = self.store.logs.get(key, b"")
                    st = self._status(*key)
                    done = st is None or "terminated" in (st.get("state") or {})
            if len(data) > sent:
                yield data[sent:]
                sent = len(data)
            if done or time.monotonic() > deadline:
                return


def _make_handler(api: ApiServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):   # the request record is the log
            pass

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            if not raw:
                return None
            try:
                return json.loads(raw)
            except ValueError:
                try:
                    return yaml.safe_load(raw)
                except yaml.YAMLError:
                    return raw.decode("utf-8", "replace")

        def _go(self, method):
            u = urlsplit(self.path)
            query = parse_qs(u.query)
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            req = Request(method, u.path, query, {k.lower(): v for k, v in self.headers.items()},
                          copy.deepcopy(body))
            with api.store.lock:
                api.requests.append(req)
            try:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if body is not None and ctype not in ("", "application/json", "application/yaml",
                                                      "application/strategic-merge-patch+json",
                                                      "application/merge-patch+json",
                                                      "application/json-patch+json",
                                                      "application/apply-patch+yaml"):
                    # client-go falls back to JSON after a 415 (as from a server that does not
                    # speak protobuf); the stand-in decodes JSON only.
                    raise ApiError(415, "UnsupportedMediaType",
                                   "the stand-in decodes JSON only, not %s" % ctype)
                if self.headers.get("Upgrade"):
                    raise ApiError(400, "BadRequest",
                                   "the stand-in serves no attach/exec/port-forward streams")
                code, payload = api.handle(method, u.path, query, body, req.headers)
            except ApiError as e:
                code, payload = e.code, status_doc(e.code, e.reason, e.message)
            except Exception as e:  # noqa: BLE001 - answer 500 like a server would
                code, payload = 500, status_doc(500, "InternalError", "%s: %s" % (type(e).__name__, e))
            req.status = code
            if hasattr(payload, "__next__"):
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in payload:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            if isinstance(payload, bytes):
                data, ctype = payload, "text/plain"
            else:
                data, ctype = json.dumps(payload).encode(), "application/json"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._go("GET")

        def do_POST(self):
            self._go("POST")

        def do_PATCH(self):
            self._go("PATCH")

        def do_PUT(self):
            self._go("PUT")

        def do_DELETE(self):
            self._go("DELETE")

    return Handler
