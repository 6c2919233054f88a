"""The user's own kubectl, as a subprocess: every auth method (exec plugins, OIDC, client
certificates) keeps working because podtriage never talks to the API server itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import KubectlError

__all__ = ["JsonObject", "Kubectl", "KubectlError", "last_error"]

# A Kubernetes object as kubectl prints it with -o json. Any: the API's shapes are wide and
# versioned; the plugin reads the few fields it needs with .get() and defaults.
JsonObject = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Kubectl:
    """How to run the user's kubectl: the binary and the flags every call gets."""

    binary: str = field(default_factory=lambda: os.environ.get("KUBECTL", "kubectl"))
    flags: tuple[str, ...] = ()          # --context=..., --kubeconfig=...
    timeout_s: float = 60.0

    def argv(self, args: Sequence[str]) -> list[str]:
        """The full command line for kubectl ``args``."""
        return [self.binary, *self.flags, *args]

    def check_binary(self) -> None:
        """KubectlError (exit 3) when there is no kubectl to run."""
        if os.sep not in self.binary and shutil.which(self.binary) is None:
            raise KubectlError("kubectl not found on PATH (or $KUBECTL)",
                               hint="install kubectl >= 1.27 (for --profile)")

    def run(self, args: Sequence[str], *, input: str | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run kubectl ``args`` (output captured); KubectlError when it cannot run or hangs."""
        try:
            return subprocess.run(self.argv(args), input=input, capture_output=True, text=True,
                                  timeout=max(1.0, timeout or self.timeout_s),
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise KubectlError("kubectl %s did not finish in %.0f s"
                               % (" ".join(args[:2]), timeout or self.timeout_s)) from None
        except OSError as exc:
            raise KubectlError("cannot run %s: %s" % (self.binary, exc.strerror or exc)) from None

    def ok(self, args: Sequence[str], *, input: str | None = None,
           timeout: float | None = None) -> str:
        """kubectl's stdout; KubectlError with kubectl's last error line when it fails."""
        p = self.run(args, input=input, timeout=timeout)
        if p.returncode != 0:
            raise KubectlError(last_error(p.stderr) or "kubectl %s failed (exit %d)"
                               % (" ".join(args[:2]), p.returncode))
        return p.stdout

    def json(self, args: Sequence[str], *, timeout: float | None = None) -> JsonObject:
        """kubectl ``args -o json``, parsed; KubectlError when it fails or is not an object."""
        out = self.ok([*args, "-o", "json"], timeout=timeout)
        try:
            doc = json.loads(out)
        except ValueError:
            raise KubectlError("kubectl %s: output is not JSON" % " ".join(args[:2])) from None
        if not isinstance(doc, dict):
            raise KubectlError("kubectl %s: output is not a JSON object" % " ".join(args[:2]))
        return doc


def last_error(stderr: str) -> str:
    """kubectl's last non-empty stderr line (its error message), or ''."""
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""
