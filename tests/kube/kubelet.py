"""The kubelet stand-in, in two forms (the kubelet is the one part of Kubernetes that cannot
run here: no container runtime, no cgroup control).

``NodeAgent`` (``python -m tests.kube.kubelet``): a client of the REAL kube-apiserver, run
by the lab inside a node's network namespace as a real kubelet runs on its node. With the
node's own client certificate (``system:node:NAME``, so the Node authorizer and the
NodeRestriction admission plugin judge what it does) it registers the Node (addresses,
Ready), renews its Lease, watches the pods bound to it and writes their status: a pod the lab
runs (its mapping file: pod -> lab namespace, addresses, the pidfile of its process) is
Running with podIP = that namespace's address; its container is running while the process
lives (checked every second, as the kubelet's PLEG relists); Ready follows the container's
readinessProbe (httpGet/tcpSocket, probed from the node as the kubelet does) or, without
one, the container running. Pods it does not know stay Pending: ephemeral containers, Job
pods and ``/containerLogs`` are a later step (issue 22 item 3).

``Kubelet`` (below): the older in-process stand-in for ``tests/kube/apiserver.py``'s store: it
runs the ephemeral containers that appear in a pod's spec and the containers of pods bound to
a node (Job pods), then writes their log and exit code back into the pod status (and, for Job
pods, the Job's status). How a container runs is the runner's business:
- ``PodmanRunner``: the container's image with podman, inside the lab network namespace of
  the pod (or of the node, for ``hostNetwork`` pods), with the capabilities, user and
  environment of its spec, /dev/termination-log mounted: what a container runtime does.
- ``NetnsRunner``: ``ip netns exec NS`` with the venv's podtriage first on PATH (fast; no image).
- any callable ``(ContainerRun) -> (exit_code, log_bytes, termination_message)`` (unit tests).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:    # the stand-in API server needs PyYAML; NodeAgent runs on the stdlib alone
    from .apiserver import ApiServer


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ContainerRun:
    namespace: str
    pod: str
    node: str
    name: str
    spec: dict                    # the container (or ephemeral container) spec
    pod_spec: dict
    ephemeral: bool
    netns: str | None             # the lab network namespace it runs in (None: unmapped)


Runner = Callable[[ContainerRun], tuple[int, bytes, str]]


@dataclass
class Kubelet:
    api: "ApiServer"
    runner: Runner
    pod_netns: dict[tuple[str, str], str] = field(default_factory=dict)   # (ns, pod) -> netns
    node_netns: dict[str, str] = field(default_factory=dict)              # node -> netns
    runs: list[ContainerRun] = field(default_factory=list)
    max_runtime: float = 120.0

    def __post_init__(self):
        self._seen: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet-standin", daemon=True)
        self._workers: list[threading.Thread] = []

    def start(self) -> "Kubelet":
        self._thread.start()
        return self

    def stop(self, wait: float = 5.0) -> None:
        """Stop watching; give running containers ``wait`` seconds in all to finish (their
        runners bound them anyway; the threads are daemons)."""
        self._stop.set()
        self.api.store.touch()
        self._thread.join(timeout=5)
        end = time.monotonic() + wait
        for w in self._workers:
            w.join(timeout=max(0.0, end - time.monotonic()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ the loop
    def _loop(self) -> None:
        store = self.api.store
        while not self._stop.is_set():
            todo = []
            with store.lock:
                for pod in store.list("pods"):
                    md, spec = pod["metadata"], pod["spec"]
                    if not spec.get("nodeName"):
                        continue
                    for c in spec.get("ephemeralContainers") or []:
                        key = (md["namespace"], md["name"], c["name"])
                        if key not in self._seen:
                            self._seen.add(key)
                            todo.append((pod, c, True))
                    if (pod.get("status") or {}).get("phase") == "Pending":
                        for c in spec.get("containers") or []:
                            key = (md["namespace"], md["name"], c["name"])
                            if key not in self._seen:
                                self._seen.add(key)
                                todo.append((pod, c, False))
                if not todo:
                    store.changed.wait(timeout=0.5)
            for pod, c, eph in todo:
                w = threading.Thread(target=self._run, args=(pod, c, eph), daemon=True)
                self._workers.append(w)
                w.start()

    def _netns(self, pod: dict) -> str | None:
        md, spec = pod["metadata"], pod["spec"]
        if spec.get("hostNetwork"):
            return self.node_netns.get(spec["nodeName"])
        return self.pod_netns.get((md["namespace"], md["name"]))

    def _set_status(self, ns: str, name: str, cname: str, eph: bool, state: dict,
                    phase: str | None = None) -> dict | None:
        store = self.api.store
        with store.lock:
            pod = store.get("pods", ns, name)
            if pod is None:
                return None
            st = pod.setdefault("status", {})
            key = "ephemeralContainerStatuses" if eph else "containerStatuses"
            lst = [s for s in st.get(key) or [] if s.get("name") != cname]
            image = next((c.get("image") for c in (pod["spec"].get("ephemeralContainers" if eph
                                                                     else "containers") or [])
                          if c["name"] == cname), "")
            lst.append({"name": cname, "image": image, "imageID": "", "ready": False,
                        "restartCount": 0, "state": state})
            st[key] = lst
            if phase:
                st["phase"] = phase
            store.put("pods", pod)
            return pod

    def _run(self, pod: dict, c: dict, eph: bool) -> None:
        md, spec = pod["metadata"], pod["spec"]
        ns, name = md["namespace"], md["name"]
        run = ContainerRun(namespace=ns, pod=name, node=spec["nodeName"], name=c["name"],
                           spec=c, pod_spec=spec, ephemeral=eph, netns=self._netns(pod))
        self.runs.append(run)
        started = now()
        self._set_status(ns, name, c["name"], eph, {"running": {"startedAt": started}},
                         phase=None if eph else "Running")
        try:
            code, log, message = self.runner(run)
        except Exception as e:  # noqa: BLE001 - a runtime failure is a container failure
            code, log, message = 128, b"", "kubelet stand-in: %s: %s" % (type(e).__name__, e)
        if log:
            self.api.store.append_log(ns, name, c["name"], log)
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": started, "finishedAt": now()}
        if message:
            term["message"] = message[:4096]     # the kubelet caps termination messages at 4 KB
        phase = None if eph else ("Succeeded" if code == 0 else "Failed")
        self._set_status(ns, name, c["name"], eph, {"terminated": term}, phase=phase)
        if not eph:
            self._job_status(pod, code)

    def _job_status(self, pod: dict, code: int) -> None:
        owner = next((o for o in pod["metadata"].get("ownerReferences") or []
                      if o.get("kind") == "Job"), None)
        if owner is None:
            return
        store = self.api.store
        with store.lock:
            job = store.get("jobs", pod["metadata"]["namespace"], owner["name"])
            if job is None:
                return
            kind = "Complete" if code == 0 else "Failed"
            job["status"] = {"startTime": job.get("status", {}).get("startTime", now()),
                             "completionTime" if code == 0 else "failedTime": now(),
                             "succeeded" if code == 0 else "failed": 1,
                             "conditions": [{"type": kind, "status": "True",
                                             "lastTransitionTime": now()}]}
            store.put("jobs", job)


# ---------------------------------------------------------------- runners
_FIELDS = {"metadata.name": "pod", "metadata.namespace": "namespace", "spec.nodeName": "node"}


def _env(spec: dict, run: "ContainerRun | None" = None) -> dict[str, str]:
    """Plain values, and the downward-API fieldRefs the plugin's Job uses."""
    out = {}
    for e in spec.get("env") or []:
        if "name" not in e:
            continue
        ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if ref and run is not None and ref in _FIELDS:
            out[e["name"]] = getattr(run, _FIELDS[ref])
        else:
            out[e["name"]] = e.get("value", "")
    return out


def _argv(spec: dict, entrypoint: list[str]) -> list[str]:
    """Kubernetes' rule: command replaces the image's ENTRYPOINT (and drops CMD), args
    replaces CMD."""
    cmd = spec.get("command")
    args = spec.get("args") or []
    return list(cmd) + list(args) if cmd else list(entrypoint) + list(args)


class NetnsRunner:
    """Run the container's command with ``ip netns exec`` and the venv's podtriage first on
    PATH; the environment of the spec is passed, /dev/termination-log is not there."""

    def __init__(self, venv_bin: Path = ROOT / ".venv" / "bin", timeout: float = 90.0):
        self.venv_bin, self.timeout = venv_bin, timeout

    def __call__(self, run: ContainerRun) -> tuple[int, bytes, str]:
        if run.netns is None:
            return 128, b"", "no lab namespace for pod %s/%s" % (run.namespace, run.pod)
        env = {"PATH": "%s:/usr/sbin:/usr/bin:/sbin:/bin" % self.venv_bin, "HOME": "/tmp",
               "LANG": "C.UTF-8", **_env(run.spec, run)}
        argv = _argv(run.spec, ["podtriage"])
        p = subprocess.run(["ip", "netns", "exec", run.netns, *argv], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=self.timeout)
        return p.returncode, p.stdout, ""


class PodmanRunner:
    """Run the container's image with podman in the lab namespace, as a container runtime
    would: capabilities added/dropped as the spec says, its user, its environment, the pod's
    resolv.conf, and a termination-log file read back as the termination message."""

    def __init__(self, timeout: float = 120.0):
        self.timeout = timeout

    def __call__(self, run: ContainerRun) -> tuple[int, bytes, str]:
        if run.netns is None:
            return 128, b"", "no lab namespace for pod %s/%s" % (run.namespace, run.pod)
        spec = run.spec
        sc = spec.get("securityContext") or {}
        caps = sc.get("capabilities") or {}
        with tempfile.TemporaryDirectory(prefix="pt-kubelet-") as tmp:
            term = Path(tmp) / "termination-log"
            term.write_text("")
            term.chmod(0o666)
            cmd = ["podman", "--runtime", "runc", "run", "--rm", "--pull=never",
                   "--network", "ns:/run/netns/%s" % run.netns,
                   "-v", "%s:/dev/termination-log:rw" % term,
                   "--name", "pt-kubelet-%s-%s-%s" % (run.pod, run.name, os.getpid())]
            resolv = Path("/etc/netns") / run.netns / "resolv.conf"
            if resolv.exists():
                cmd += ["-v", "%s:/etc/resolv.conf:ro" % resolv]
            if sc.get("privileged"):
                cmd.append("--privileged")
            for cap in caps.get("drop") or []:
                cmd += ["--cap-drop", cap]
            for cap in caps.get("add") or []:
                cmd += ["--cap-add", cap]
            if sc.get("allowPrivilegeEscalation") is False:
                cmd += ["--security-opt", "no-new-privileges"]
            user = sc.get("runAsUser", (run.pod_spec.get("securityContext") or {}).get("runAsUser"))
            if user is not None:
                group = sc.get("runAsGroup", user)
                cmd += ["--user", "%s:%s" % (user, group)]
            for k, v in _env(spec, run).items():
                cmd += ["--env", "%s=%s" % (k, v)]
            if spec.get("command"):
                cmd += ["--entrypoint", json.dumps(spec["command"])]
            cmd.append(spec["image"])
            cmd += list(spec.get("args") or [])
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=self.timeout)
            message = term.read_text(errors="replace").strip()
        return p.returncode, p.stdout, message


def wait_until(pred: Callable[[], bool], timeout: float = 30.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ================================================================ the real-API kubelet stand-in
KUBELET_VERSION = "v1.34.4"
POLL = 1.0                  # the kubelet's PLEG relists containers every second
DEAD_AFTER = 2              # consecutive polls a process must be gone before it is reported


def _proc_alive(pidfile: str | None, marker: str) -> int | None:
    """The pid in pidfile when that process lives and its command line names marker."""
    if not pidfile:
        return None
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(") ")[-1][:1] in ("Z", "X"):
                return None
        cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    return pid if marker in cmdline else None


@dataclass
class _PodState:
    container_id: str | None = None
    started: str | None = None
    restarts: int = 0
    dead_polls: int = 0
    ready: bool = False
    fails: int = 0
    next_probe: float = 0.0
    transitions: dict = field(default_factory=dict)   # condition type -> (status, time)
    last_status: str = ""


class NodeAgent:
    """One node's kubelet stand-in against the real API server (see the module docstring).

    The mapping file (JSON, re-read when it changes)::

        {"addresses": ["192.168.50.1"],
         "pods": {"kube-system/coredns": {"ips": ["10.244.0.3"], "netns": "pt-coredns",
                                           "pidfile": "/run/podtriage-lab/pt/coredns.pid"}}}
    """

    def __init__(self, kubeconfig: str | Path, node: str, mapping: str | Path, marker: str):
        from tests.kube import rest

        self.rest = rest
        self.api = rest.Client(kubeconfig)
        self.node = node
        self.mapping_path = Path(mapping)
        self.marker = marker
        self.mapping: dict = {"addresses": [], "pods": {}}
        self._mtime = None
        self.pods: dict[str, dict] = {}
        self.states: dict[str, _PodState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()

    # ------------------------------------------------------------ node
    def load_mapping(self) -> None:
        try:
            m = self.mapping_path.stat().st_mtime_ns
            if m != self._mtime:
                self.mapping = json.loads(self.mapping_path.read_text())
                self._mtime = m
        except (OSError, ValueError):
            pass

    def node_status(self) -> dict:
        t = now()
        addrs = [{"type": "InternalIP", "address": a} for a in self.mapping.get("addresses", [])]
        addrs.append({"type": "Hostname", "address": self.node})
        conds = [{"type": typ, "status": "False", "reason": "Kubelet" + reason,
                  "message": msg, "lastHeartbeatTime": t, "lastTransitionTime": self._born}
                 for typ, reason, msg in (
                     ("MemoryPressure", "HasSufficientMemory", "kubelet has sufficient memory available"),
                     ("DiskPressure", "HasNoDiskPressure", "kubelet has no disk pressure"),
                     ("PIDPressure", "HasSufficientPID", "kubelet has sufficient PID available"))]
        conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                      "message": "kubelet stand-in (tests/kube/kubelet.py) is posting ready status",
                      "lastHeartbeatTime": t, "lastTransitionTime": self._born})
        cap = {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "10Gi"}
        return {"status": {"addresses": addrs, "conditions": conds, "capacity": cap,
                           "allocatable": cap,
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                           "nodeInfo": {"kubeletVersion": KUBELET_VERSION,
                                        "kubeProxyVersion": "", "operatingSystem": "linux",
                                        "architecture": "amd64", "osImage": "podtriage lab",
                                        "kernelVersion": os.uname().release,
                                        "containerRuntimeVersion": "lab://netns",
                                        "machineID": "", "systemUUID": "", "bootID": ""}}}

    def register(self) -> None:
        self._born = now()
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node,
                             "labels": {"kubernetes.io/hostname": self.node,
                                        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                        "beta.kubernetes.io/os": "linux",
                                        "beta.kubernetes.io/arch": "amd64"}},
                "spec": {}}
        try:
            self.api.create(body)
        except self.rest.ApiError as e:
            if e.status != 409:
                raise
        self.api.patch("/api/v1/nodes/%s/status" % self.node, self.node_status(),
                       kind="strategic")

    def renew_lease(self) -> None:
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/%s" % self.node
        t = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": t}
        try:
            self.api.patch(path, {"spec": spec})
        except self.rest.ApiError as e:
            if e.status != 404:
                raise
            self.api.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                             "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                             "spec": spec})

    # ------------------------------------------------------------ pods
    def _pods_path(self, watch=False) -> str:
        return "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s" % self.node

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                lst = self.api.get(self._pods_path())
                with self._lock:
                    self.pods = {"%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]): p
                                 for p in lst.get("items", [])}
                self._wake.set()
                for ev in self.api.watch(self._pods_path(), lst["metadata"]["resourceVersion"],
                                         timeout=300, stop=self._stop):
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        break
                    md = obj.get("metadata") or {}
                    key = "%s/%s" % (md.get("namespace"), md.get("name"))
                    with self._lock:
                        if ev.get("type") == "DELETED":
                            self.pods.pop(key, None)
                            self.states.pop(key, None)
                        else:
                            self.pods[key] = obj
                    self._wake.set()
            except Exception as e:  # noqa: BLE001 - an API hiccup: list again
                print("kubelet %s: watch: %s" % (self.node, e), file=sys.stderr, flush=True)
                self._stop.wait(1.0)

    def _probe(self, probe: dict, ips: list[str], ports: dict) -> bool:
        host = ips[0] if ips else "127.0.0.1"
        timeout = float(probe.get("timeoutSeconds") or 1)
        try:
            if "httpGet" in probe:
                h = probe["httpGet"]
                port = h.get("port")
                port = ports.get(port, port) if isinstance(port, str) else port
                conn = http.client.HTTPConnection(h.get("host") or host, int(port), timeout=timeout)
                try:
                    conn.request("GET", h.get("path") or "/")
                    return 200 <= conn.getresponse().status < 400
                finally:
                    conn.close()
            if "tcpSocket" in probe:
                port = probe["tcpSocket"].get("port")
                port = ports.get(port, port) if isinstance(port, str) else port
                socket.create_connection((host, int(port)), timeout=timeout).close()
                return True
        except (OSError, http.client.HTTPException, ValueError):
            return False
        return True       # exec probes: nothing to run them in; count as passing

    def _cond(self, st: _PodState, typ: str, ok: bool, t: str) -> dict:
        status = "True" if ok else "False"
        prev = st.transitions.get(typ)
        if prev is None or prev[0] != status:
            st.transitions[typ] = (status, t)
        c = {"type": typ, "status": status, "lastProbeTime": None,
             "lastTransitionTime": st.transitions[typ][1]}
        if not ok and typ in ("Ready", "ContainersReady"):
            c["reason"] = "ContainersNotReady"
        return c

    def reconcile(self, key: str, pod: dict, spec_map: dict) -> None:
        st = self.states.setdefault(key, _PodState())
        t = now()
        pidfile = spec_map.get("pidfile")
        pid = _proc_alive(pidfile, self.marker) if pidfile else 0
        ips = spec_map.get("ips") or []
        if pod["spec"].get("hostNetwork"):
            ips = self.mapping.get("addresses", [])
        running = pid is not None
        if running:
            st.dead_polls = 0
            cid = "lab://%s" % (pid or spec_map.get("netns", key))
            if st.container_id != cid:
                if st.container_id is not None:
                    st.restarts += 1
                st.container_id, st.started = cid, t
                st.ready, st.fails, st.next_probe = False, 0, 0.0
        else:
            st.dead_polls += 1
            if st.dead_polls >= DEAD_AFTER:
                st.ready = False
        alive = running or (st.container_id is not None and st.dead_polls < DEAD_AFTER)
        containers = pod["spec"].get("containers") or []
        probe = next((c.get("readinessProbe") for c in containers if c.get("readinessProbe")), None)
        if alive and probe is None:
            st.ready = True
        elif alive and time.monotonic() >= st.next_probe:
            ports = {p.get("name"): p.get("containerPort")
                     for c in containers for p in c.get("ports") or [] if p.get("name")}
            ok = self._probe(probe, ips, ports)
            period = float(probe.get("periodSeconds") or 10)
            if ok:
                st.ready, st.fails = True, 0
            else:
                st.fails += 1
                if st.fails >= int(probe.get("failureThreshold") or 3):
                    st.ready = False
            # until the first success, probe fast (the real kubelet waits periodSeconds)
            st.next_probe = time.monotonic() + (period if st.ready else 0.5)
        statuses = []
        for c in containers:
            cs = {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                  "ready": bool(alive and st.ready), "restartCount": st.restarts,
                  "started": bool(alive)}
            if alive:
                cs["containerID"] = st.container_id
                cs["state"] = {"running": {"startedAt": st.started}}
            else:
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                           "message": "the lab stopped this pod's process"}}
            statuses.append(cs)
        ready = bool(alive and st.ready)
        host = self.mapping.get("addresses", [])
        status = {
            "phase": "Running",
            "hostIP": host[0] if host else None, "hostIPs": [{"ip": a} for a in host],
            "podIP": ips[0] if ips else None, "podIPs": [{"ip": a} for a in ips],
            "startTime": st.transitions.get("PodScheduled", (None, t))[1],
            "qosClass": "BestEffort",
            "conditions": [self._cond(st, "PodReadyToStartContainers", True, t),
                           self._cond(st, "Initialized", True, t),
                           self._cond(st, "Ready", ready, t),
                           self._cond(st, "ContainersReady", ready, t),
                           self._cond(st, "PodScheduled", True, t)],
            "containerStatuses": statuses}
        text = json.dumps(status, sort_keys=True)
        if text == st.last_status:
            return
        md = pod["metadata"]
        self.api.patch("/api/v1/namespaces/%s/pods/%s/status" % (md["namespace"], md["name"]),
                       {"status": status})
        st.last_status = text

    # ------------------------------------------------------------ main loop
    def run(self) -> None:
        self.load_mapping()
        for attempt in range(120):
            try:
                self.register()
                break
            except (self.rest.ApiError, ConnectionError, OSError) as e:
                if attempt == 119:
                    raise
                print("kubelet %s: register: %s" % (self.node, e), file=sys.stderr, flush=True)
                time.sleep(0.5)
        print("kubelet %s: registered" % self.node, file=sys.stderr, flush=True)
        threading.Thread(target=self._watch_loop, daemon=True, name="pods-watch").start()
        next_lease = next_status = 0.0
        while not self._stop.is_set():
            self._wake.wait(POLL)
            self._wake.clear()
            self.load_mapping()
            tick = time.monotonic()
            try:
                if tick >= next_lease:
                    self.renew_lease()
                    next_lease = tick + 10
                if tick >= next_status:
                    if next_status:
                        self.api.patch("/api/v1/nodes/%s/status" % self.node, self.node_status(),
                                       kind="strategic")
                    next_status = tick + 60
                with self._lock:
                    pods = dict(self.pods)
                for key, pod in pods.items():
                    md = pod["metadata"]
                    if md.get("deletionTimestamp"):
                        # what a kubelet does once a deleted pod's containers are gone: confirm
                        # the deletion (the lab's processes are the lab's to stop)
                        self.api.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (
                            md["namespace"], md["name"]), {
                                "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                "preconditions": {"uid": md["uid"]}}, ok=(200, 202, 404, 409))
                        continue
                    m = self.mapping.get("pods", {}).get(key)
                    if m is not None:
                        self.reconcile(key, pod, m)
            except Exception as e:  # noqa: BLE001 - keep serving; the next poll retries
                print("kubelet %s: %s: %s" % (self.node, type(e).__name__, e), file=sys.stderr,
                      flush=True)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.kube.kubelet",
                                 description="the lab's kubelet stand-in for one node (real API)")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--mapping", required=True, help="JSON: the node's addresses and its pods")
    ap.add_argument("--marker", required=True,
                    help="a pod's process counts as its container when its command line names this")
    a = ap.parse_args(argv)
    agent = NodeAgent(a.kubeconfig, a.node, a.mapping, a.marker)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
