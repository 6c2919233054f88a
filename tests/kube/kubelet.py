"""A kubelet stand-in: watches the API stand-in's store and runs what a kubelet would run,
the ephemeral containers that appear in a pod's spec and the containers of pods bound to a
node (Job pods), then writes their log and exit code back into the pod status (and, for Job
pods, the Job's status).

How a container runs is the runner's business:
- ``PodmanRunner``: the container's image with podman, inside the lab network namespace of
  the pod (or of the node, for ``hostNetwork`` pods), with the capabilities, user and
  environment of its spec, /dev/termination-log mounted: what a container runtime does.
- ``NetnsRunner``: ``ip netns exec NS`` with the venv's podtriage first on PATH (fast; no image).
- any callable ``(ContainerRun) -> (exit_code, log_bytes, termination_message)`` (unit tests).
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .apiserver import ApiServer, now

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
    api: ApiServer
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
