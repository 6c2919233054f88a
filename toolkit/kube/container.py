"""One container the plugin started (an ephemeral container or a Job's pod): waiting until it
runs and until it ends (``wait_state``), following its log (``follow_log``), and what it did
(``Outcome``: podtriage's exit code and output, or why there is none).

Every wait is bounded by the run's ``toolkit.deadline.Deadline``.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import TextIO

from toolkit.deadline import Deadline
from toolkit.errors import EXIT_CANNOT_OBSERVE, CannotObserve
from toolkit.kube.kubectl import JsonObject, Kubectl, KubectlError, last_error
from toolkit.kube.output import say

# Waiting reasons that will not resolve by themselves: the wait ends at once.
IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                "CreateContainerError", "CreateContainerConfigError", "RunContainerError"}


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
    """What one ephemeral container or Job pod did."""

    exit_code: int | None
    log: str
    message: str = ""
    error: str = ""              # why no exit code (image pull, deadline, kubectl)

    @classmethod
    def failed(cls, error: str) -> Outcome:
        """No exit code, and why."""
        return cls(exit_code=None, log="", error=error)

    @classmethod
    def ended(cls, state: JsonObject, log: str) -> Outcome:
        """The outcome of a container whose last state is ``state`` (terminated)."""
        term = state.get("terminated") or {}
        return cls(exit_code=term.get("exitCode"), log=log, message=term.get("message", ""))


def _status(pod: JsonObject, name: str, ephemeral: bool) -> JsonObject | None:
    key = "ephemeralContainerStatuses" if ephemeral else "containerStatuses"
    for s in (pod.get("status") or {}).get(key) or []:
        if isinstance(s, dict) and s.get("name") == name:
            return s
    return None


def wait_state(k: Kubectl, namespace: str, pod: str, name: str, ephemeral: bool,
               deadline: Deadline, want_terminated: bool) -> JsonObject:
    """Poll the pod until the container runs (or has terminated); a waiting reason that
    will not resolve by itself (image pull, create error) ends the wait at once instead of
    hanging as ``kubectl debug`` does on a bad image (kubernetes #108135)."""
    step = poll_interval()
    for _ in range(100_000):                      # bounded by the deadline below
        p = k.run(["get", "pod", pod, "-n", namespace, "-o", "json"],
                  timeout=call_timeout(deadline, 30.0))
        if p.returncode != 0:
            raise KubectlError(last_error(p.stderr) or "cannot read pod %s" % pod)
        st = _status(json.loads(p.stdout), name, ephemeral)
        state: JsonObject = (st or {}).get("state") or {}
        if "terminated" in state or ("running" in state and not want_terminated):
            return state
        reason = (state.get("waiting") or {}).get("reason", "")
        if reason in IMAGE_ERRORS:
            msg = (state.get("waiting") or {}).get("message", "")
            raise CannotObserve("container %s in pod %s: %s%s" % (
                name, pod, reason, (": " + msg) if msg else ""),
                hint="check --image (and that the pod's pull secrets can pull it)")
        if deadline.expired:
            raise CannotObserve("container %s in pod %s did not %s in time" % (
                name, pod, "finish" if want_terminated else "start"))
        time.sleep(min(step, deadline.remaining()))
    raise CannotObserve("gave up waiting for pod %s" % pod)


def follow_log(k: Kubectl, namespace: str, pod: str, name: str, deadline: Deadline,
               stream: TextIO | None) -> str:
    """``kubectl logs -f`` until the container ends; copied to ``stream`` as it comes."""
    chunks: list[str] = []
    proc = subprocess.Popen(k.argv(["logs", "-f", pod, "-n", namespace, "-c", name]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    timer = threading.Timer(max(1.0, deadline.remaining()), proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            chunks.append(line)
            if stream is not None:
                stream.write(line)
                stream.flush()
        proc.wait(timeout=max(1.0, deadline.remaining()))
    except subprocess.TimeoutExpired:
        proc.kill()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    return "".join(chunks)


def run_to_end(k: Kubectl, namespace: str, pod: str, name: str, *, ephemeral: bool,
               deadline: Deadline, stream: TextIO | None) -> Outcome:
    """Wait for the container to start, follow its log, wait for its end: its Outcome (a
    CannotObserve on the way, e.g. an image that cannot be pulled, is the Outcome's error)."""
    try:
        wait_state(k, namespace, pod, name, ephemeral, deadline, want_terminated=False)
        log = follow_log(k, namespace, pod, name, deadline, stream)
        state = wait_state(k, namespace, pod, name, ephemeral, deadline, want_terminated=True)
    except CannotObserve as e:
        return Outcome.failed(e.message)
    return Outcome.ended(state, log)


def exit_code_of(out: Outcome, where: str) -> int:
    """podtriage's exit code in a single run (its message said), or 3 when there is none."""
    if out.message:
        say(out.message)
    if out.exit_code is None:
        say("no exit code from podtriage%s: %s" % (where, out.error))
        return EXIT_CANNOT_OBSERVE
    return int(out.exit_code)
