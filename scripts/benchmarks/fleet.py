"""Fleet benchmark: what the kubectl plugin itself costs, against the API stand-in with a
kubelet stand-in whose containers finish at once (so only kubectl round trips are measured).

Baseline: one bare `kubectl get pod -o json` in the same run. Prints the wall time of one pod
mode run, and of `pods -l` over FLEET pods at --parallel 1 and 5, with the number of requests
kubectl sent per pod. Target: --parallel 5 at least 1.5x faster than --parallel 1 on these 2-vCPU machines
(each kubectl call costs ~0.13 s of CPU here: the fleet is CPU-bound on kubectl, not on waits).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.kube.apiserver import ApiServer  # noqa: E402
from tests.kube.kubectl import ensure_kubectl  # noqa: E402
from tests.kube.kubelet import Kubelet  # noqa: E402

FLEET = int(os.environ.get("BENCH_FLEET", "20"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET = 1.5
DOC = {"schema_version": 1, "tool": "podtriage", "command": "diagnose", "verdict": "ok",
       "findings": []}


def main() -> int:
    kubectl = ensure_kubectl()
    plugin = ROOT / ".venv" / "bin" / "kubectl-podtriage"
    with tempfile.TemporaryDirectory() as tmp, ApiServer() as api:
        api.add_namespace("shop")
        for n in ("node-1", "node-2"):
            api.add_node(n)
        for i in range(FLEET):
            api.add_pod("web-%d" % i, "shop", node="node-%d" % (i % 2 + 1), labels={"app": "web"})
        kubelet = Kubelet(api, lambda r: (0, (json.dumps(DOC) + "\n").encode(), "")).start()
        env = {"PATH": "%s:%s:/usr/bin:/bin" % (kubectl.parent, plugin.parent),
               "KUBECONFIG": str(api.kubeconfig(Path(tmp) / "kc", namespace="shop")),
               "HOME": tmp, "PODTRIAGE_POLL_INTERVAL": "0.2"}

        def wall(args: list[str]) -> float:
            t0 = time.perf_counter()
            p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
            took = time.perf_counter() - t0
            if p.returncode not in (0, 1):
                raise SystemExit("%s failed: %s" % (args[:3], p.stderr[-500:]))
            return took

        base = statistics.median(wall([str(kubectl), "get", "pod", "web-0", "-o", "json"])
                                 for _ in range(ROUNDS))
        one = statistics.median(wall([str(plugin), "web-0", "--", "diagnose", "x"])
                                for _ in range(ROUNDS))
        res = {}
        for par in (1, 5):
            api.clear_requests()
            res[par] = wall([str(plugin), "pods", "-l", "app=web", "--yes", "--parallel",
                             str(par), "-o", "json", "--", "diagnose", "x"])
            per_pod = Counter(r.method for r in api.requests)
        kubelet.stop()
    ratio = res[1] / res[5]
    print("kubectl get pod (baseline): %.2f s" % base)
    print("pod mode, one pod: %.2f s (%.1fx the baseline)" % (one, one / base))
    print("pods -l over %d pods: --parallel 1 %.1f s, --parallel 5 %.1f s (%.1fx faster; "
          "target %.1fx)" % (FLEET, res[1], res[5], ratio, TARGET))
    print("requests per pod: %s" % ", ".join("%s %.1f" % (m, c / FLEET)
                                              for m, c in sorted(per_pod.items())))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
