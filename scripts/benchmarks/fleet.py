"""Fleet benchmark: what the kubectl plugin itself costs, against the lab's real
kube-apiserver (tests/lab), with the kubelet stand-in running `podtriage resolvconf` in each
pod (a command that ends at once: only the plugin's and kubectl's round trips are measured).

Baseline: one bare `kubectl get pod -o json` in the same run. Prints the wall time of one pod
mode run, and of `pods -l` over FLEET pods at --parallel 1 and 5, with the requests kubectl
sent per pod (the API server's audit log). Target: --parallel 5 at least 1.5x faster than
--parallel 1 on these 2-vCPU machines (each kubectl call costs ~0.13 s of CPU here: the
fleet is CPU-bound on kubectl, not on waits). Needs root (the lab).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.kube.labkube import PluginRunner, Workloads  # noqa: E402
from tests.lab import Lab  # noqa: E402

FLEET = int(os.environ.get("BENCH_FLEET", "20"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET = 1.5


def main() -> int:
    lab = Lab("bf%d" % (os.getpid() % 100000)).up()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kube = PluginRunner(lab, Path(tmp))
            w = Workloads(lab)
            ns = "bench"
            w.namespace(ns)
            for i in range(FLEET):
                w.pod("web-%d" % i, ns, labels={"app": "web"})

            def wall(*args, kubectl=False) -> tuple[float, object]:
                t0 = time.perf_counter()
                p = (kube.kubectl_run(*args) if kubectl else kube.run(*args, namespace=ns))
                took = time.perf_counter() - t0
                if p.returncode not in (0, 1):
                    raise SystemExit("%s failed: %s" % (args[:3], p.stderr[-500:]))
                return took, p

            base = statistics.median(wall("get", "pod", "web-0", "-n", ns, "-o", "json",
                                          kubectl=True)[0] for _ in range(ROUNDS))
            one = statistics.median(wall("web-0", "-q", "--", "resolvconf")[0]
                                    for _ in range(ROUNDS))
            res, per_pod = {}, Counter()
            for par in (1, 5):
                res[par], p = wall("pods", "-l", "app=web", "--yes", "-q", "--parallel", str(par),
                                   "-o", "json", "--", "resolvconf")
                per_pod = Counter("%s %s" % (r.verb, r.subresource or r.resource) for r in p.requests)
            w.close()
    finally:
        lab.down()
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
