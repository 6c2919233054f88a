"""One container the plugin started (an ephemeral container, a Job's pod, a node debugging
pod): waiting until it runs and until it ends (``wait_state``, with progress lines while it
waits), following its log (``follow_log``), and what it did (``Outcome``: podtriage's exit
code and output, or why there is none).

Every wait is bounded by the run's ``toolkit.deadline.Deadline``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_CANNOT_OBSERVE, CannotObserve
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError, last_error
from toolkit.kube.output import Sink, progress, say

# Waiting reasons that will not resolve by themselves: the wait ends at once.
IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                "CreateContainerError", "CreateContainerConfigError", "RunContainerError"}
REPEAT_S = 5.0               # a wait still going is reported again this often


def poll_interval() -> float:
    """Seconds between two looks at a pod ($PODTRIAGE_POLL_INTERVAL, default 1; tests go faster)."""
    try:
        return max(0.0, float(os.environ.get("PODTRIAGE_POLL_INTERVAL", "1")))
    except ValueError:
        return 1.0


def call_timeout(deadline: Deadline, at_most: float) -> float:
    """The timeout of one kubectl call: the budget left, at least 1 s, at most ``at_most``."""
    return min(at_most, max(1.0, deadline.remaining()))


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one ephemeral container or pod did."""

    exit_code: int | None
    log: str
    message: str = ""
    error: str = ""              # why no exit code (image pull, deadline, kubectl)
    container: str = ""          # the container's name, once there is one

    @classmethod
    def failed(cls, error: str) -> Outcome:
        """No exit code, and why."""
        return cls(exit_code=None, log="", error=error)

    @classmethod
    def ended(cls, state: JsonObject, log: str) -> Outcome:
        """The outcome of a container whose last state is ``state`` (terminated)."""
        term = state.get("terminated") or {}
        return cls(exit_code=term.get("exitCode"), log=log, message=term.get("message", ""))


@dataclass(frozen=True, kw_only=True)
class Target:
    """A container to watch: where it is and what the progress lines call it."""

    namespace: str
    pod: str
    name: str
    ephemeral: bool

    @property
    def label(self) -> str:
        """``shop/web-1`` (the container's name is long and says nothing to a user)."""
        return "%s/%s" % (self.namespace, self.pod)


def _status(pod: JsonObject, name: str, ephemeral: bool) -> JsonObject | None:
    key = "ephemeralContainerStatuses" if ephemeral else "containerStatuses"
    for s in (pod.get("status") or {}).get(key) or []:
        if isinstance(s, dict) and s.get("name") == name:
            return s
    return None


def _read_state(k: Kubectl, t: Target, deadline: Deadline) -> JsonObject:
    p = k.run(["get", "pod", t.pod, "-n", t.namespace, "-o", "json"],
              timeout=call_timeout(deadline, 30.0))
    if p.returncode != 0:
        raise KubectlError(last_error(p.stderr) or "cannot read pod %s" % t.pod)
    try:
        pod = json.loads(p.stdout)
    except ValueError:
        raise KubectlError("kubectl get pod %s: output is not JSON" % t.pod) from None
    st = _status(pod if isinstance(pod, dict) else {}, t.name, t.ephemeral)
    state: JsonObject = (st or {}).get("state") or {}
    return state


def wait_state(k: Kubectl, t: Target, deadline: Deadline, want_terminated: bool) -> JsonObject:
    """Poll the pod until the container runs (or has terminated); a waiting reason that
    will not resolve by itself (image pull, create error) ends the wait at once instead of
    hanging as ``kubectl debug`` does on a bad image (kubernetes #108135). A wait longer
    than a second is reported (progress), again on every change and every few seconds."""
    step = poll_interval()
    t0 = time.monotonic()
    said, said_at = "", 0.0
    for _ in range(100_000):                      # bounded by the deadline below
        state = _read_state(k, t, deadline)
        if "terminated" in state or ("running" in state and not want_terminated):
            return state
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in IMAGE_ERRORS:
            msg = waiting.get("message", "")
            raise CannotObserve("container %s in pod %s: %s%s" % (
                t.name, t.label, reason, (": " + msg) if msg else ""),
                hint="check --image (and that the pod's pull secrets can pull it)")
        if deadline.expired:
            raise CannotObserve("container %s in pod %s did not %s in time" % (
                t.name, t.label, "finish" if want_terminated else "start"))
        waited = time.monotonic() - t0
        what = ("podtriage running" if "running" in state else
                "waiting for the container (%s)" % (reason or "not created yet"))
        if waited >= 1.0 and (what != said or time.monotonic() - said_at >= REPEAT_S):
            progress("%s: %s, %.0f s" % (t.label, what, waited))
            said, said_at = what, time.monotonic()
        time.sleep(min(step, deadline.remaining()))
    raise CannotObserve("gave up waiting for pod %s" % t.label)


def follow_log(k: Kubectl, t: Target, deadline: Deadline, sink: Sink | None) -> tuple[str, str]:
    """``kubectl logs -f`` until the container ends; copied to ``sink`` as it comes. Returns
    the log and kubectl's error when it could not read it (e.g. RBAC: no get on pods/log).
    kubectl's --request-timeout is not given to it: it would cut the stream (the deadline
    bounds it)."""
    chunks: list[str] = []
    argv = [a for a in k.argv(["logs", "-f", t.pod, "-n", t.namespace, "-c", t.name])
            if not a.startswith("--request-timeout=")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, errors="replace")
    timer = threading.Timer(max(1.0, deadline.remaining()), proc.kill)
    timer.start()
    err = ""
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            chunks.append(line)
            if sink is not None:
                sink.write(line)
        proc.wait(timeout=max(1.0, deadline.remaining()))
        err = proc.stderr.read(65536)
    except subprocess.TimeoutExpired:
        proc.kill()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    failed = proc.returncode not in (0, None) and proc.returncode > 0
    return "".join(chunks), (last_error(err) or "kubectl logs failed") if failed else ""


def run_to_end(k: Kubectl, t: Target, *, deadline: Deadline, sink: Sink | None) -> Outcome:
    """Wait for the container to start, follow its log, wait for its end: its Outcome (a
    CannotObserve on the way, e.g. an image that cannot be pulled, is the Outcome's error)."""
    try:
        wait_state(k, t, deadline, want_terminated=False)
        progress("%s: podtriage started, following its log" % t.label)
        log, log_error = follow_log(k, t, deadline, sink)
        state = wait_state(k, t, deadline, want_terminated=True)
    except CannotObserve as e:
        return dataclasses.replace(Outcome.failed(e.message), container=t.name)
    out = dataclasses.replace(Outcome.ended(state, log), container=t.name)
    if log_error:
        # podtriage ran, but its report did not reach us: nothing to judge by
        return dataclasses.replace(out, error="cannot read the log: %s" % log_error)
    return out


def exit_code_of(out: Outcome, where: str) -> int:
    """podtriage's exit code in a single run (its message said), or 3 when there is none."""
    if out.message:
        say(out.message)
    if out.exit_code is None:
        say("no exit code from podtriage%s: %s" % (where, out.error))
        return EXIT_CANNOT_OBSERVE
    if out.error:
        say("podtriage%s exited %d, but %s" % (where, out.exit_code, out.error))
        return EXIT_CANNOT_OBSERVE
    return int(out.exit_code)
