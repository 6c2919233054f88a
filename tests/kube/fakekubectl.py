#!/usr/bin/env python3
"""A fake kubectl that records its argv: for the plugin's unit tests, where no cluster is
needed (what the plugin asks kubectl, and that it asks nothing on bad usage). The lab's real
kubectl and kube-apiserver are tests/integration/test_kubectl_plugin.py's.

Each call appends ``{"argv": [...]}`` to $FAKE_LOG. What it answers comes from the JSON file
$FAKE_SCENARIO: ``pod`` (the object ``get pod`` prints), ``namespace_labels``, ``refuse``
(``kubectl debug`` refuses with this PodSecurity level the first N=refuse_times calls),
``log`` (what ``logs -f`` prints), ``exit_code`` and ``message`` (the terminated state),
``endpointslices`` (the items ``get endpointslices`` lists; absent: an empty list) or
``endpointslices_forbidden`` (RBAC's refusal instead).
"""
from __future__ import annotations

import json
import os
import sys


def _verb(argv: list[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")


def main() -> int:
    argv = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps({"argv": argv}) + "\n")
    sc = json.loads(open(os.environ["FAKE_SCENARIO"]).read())
    words = [a for a in argv if not a.startswith("--") or a == "--"]
    if "version" in words:
        print('{"clientVersion": {"gitVersion": "v1.34.5"}}')
        return 0
    if words[:2] == ["get", "namespace"]:
        print(json.dumps({"metadata": {"name": words[2], "labels": sc.get("namespace_labels", {})}}))
        return 0
    if words[:2] == ["get", "pod"]:
        pod = json.loads(json.dumps(sc["pod"]))
        calls = [json.loads(line)["argv"] for line in open(os.environ["FAKE_LOG"])]
        debug = [c for c in calls if _verb(c) == "debug"]
        names = [a.split("=", 1)[1] for c in debug for a in c if a.startswith("--container=")]
        if names:
            pod["status"]["ephemeralContainerStatuses"] = [{"name": names[-1], "state": {
                "terminated": {"exitCode": sc.get("exit_code", 0), "message": sc.get("message", "")}}}]
        print(json.dumps(pod))
        return 0
    if words[:1] == ["debug"]:
        refused = sum(1 for line in open(os.environ["FAKE_LOG"])
                      if _verb(json.loads(line)["argv"]) == "debug") <= sc.get("refuse_times", 0)
        if sc.get("refuse") and refused:
            print('Error from server (Forbidden): pods "%s" is forbidden: violates PodSecurity '
                  '"%s:latest": non-default capabilities' % (words[1], sc["refuse"]), file=sys.stderr)
            return 1
        return 0
    if words[:2] == ["get", "endpointslices"]:
        if sc.get("endpointslices_forbidden"):
            print('Error from server (Forbidden): endpointslices.discovery.k8s.io is forbidden: '
                  'User "triager" cannot list resource "endpointslices" in API group '
                  '"discovery.k8s.io" in the namespace "kube-system"', file=sys.stderr)
            return 1
        print(json.dumps({"items": sc.get("endpointslices", [])}))
        return 0
    if words[:1] == ["logs"]:
        sys.stdout.write(sc.get("log", ""))
        return 0
    if words[:2] == ["get", "pods"] or words[:2] == ["get", "nodes"] or words[:2] == ["get", "namespaces"]:
        if "name" in argv:          # -o name (completion)
            kind = {"pods": "pod", "nodes": "node", "namespaces": "namespace"}[words[1]]
            print("\n".join("%s/%s" % (kind, n) for n in sc.get(words[1], [])))
        else:
            print(json.dumps({"items": sc.get("items", [])}))
        return 0
    print("fake kubectl: no answer for %s" % argv, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
