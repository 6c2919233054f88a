#!/usr/bin/env bash
# Runbook "check CoreDNS config": lint the CoreDNS and NodeLocal DNSCache Corefiles (duplicate
# plugins such as `loop`, forgotten server blocks, forward/cache order...) and check them
# (probe every forward upstream).
#
# Usage: check-coredns-config.sh [FILE...]
#   FILE  Corefiles or ConfigMap YAML. Without FILE the ConfigMaps kube-system/coredns and
#         kube-system/coredns-custom, nodelocaldns and node-local-dns are fetched with
#         kubectl (each skipped when absent).
# Env: PODTRIAGE (the podtriage command; default: podtriage), KUBECTL (default: kubectl)
# `corefile check` probes the upstreams: run it where they are reachable (in a pod, e.g.
# kubectl podtriage POD --runbook check-coredns-config -- FILE..., or on a node).
# Exit code: the worst of lint and check (0 clean, 1 findings, 3 could not observe).
set -uo pipefail

RUNBOOKS_DIR=${BASH_SOURCE[0]%/*}; [ "$RUNBOOKS_DIR" != "${BASH_SOURCE[0]}" ] || RUNBOOKS_DIR=.
# shellcheck source=common.sh
. "$RUNBOOKS_DIR/common.sh" || { echo "check-coredns-config: common.sh is missing next to it ($RUNBOOKS_DIR)" >&2; exit 3; }
KUBECTL=${KUBECTL:-kubectl}
case "${1:-}" in -h|--help) usage; exit 0 ;; -*) line "check-coredns-config: unknown option $1" >&2; usage >&2; exit 2 ;; esac

files=("$@")
tmp=""
if [ ${#files[@]} -eq 0 ]; then
  command -v "$KUBECTL" >/dev/null 2>&1 || { echo "check-coredns-config: no FILE given and no kubectl to fetch the ConfigMaps" >&2; exit 2; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # the names distributions ship: CoreDNS, AKS/k3s custom imports, kubespray's and the
  # upstream addon's NodeLocal DNSCache
  for cm in coredns coredns-custom nodelocaldns node-local-dns; do
    if "$KUBECTL" get cm "$cm" -n kube-system -o yaml > "$tmp/$cm.yaml" 2>/dev/null && [ -s "$tmp/$cm.yaml" ]; then
      echo "check-coredns-config: fetched kube-system/$cm"
      files+=("$tmp/$cm.yaml")
    else
      echo "check-coredns-config: no ConfigMap kube-system/$cm (skipped)"
    fi
  done
  [ ${#files[@]} -gt 0 ] || { echo "check-coredns-config: nothing to check" >&2; exit 3; }
fi
for f in "${files[@]}"; do
  [ -r "$f" ] || { line "check-coredns-config: cannot read $f" >&2; exit 3; }
done

# each step's report: its JSON line and its summary, both from podtriage's JSON document
# (the table renderer's lines are podtriage's own, sanitised; the JSON line is for the plugin)
worst=0
# The worst exit code by meaning, not by number: ok (0) < could not tell (5) < problem found (1)
# < usage (2) < could not observe (3) < anything else (internal error, signal).
rank() { case "$1" in 0) echo 0 ;; 5) echo 1 ;; 1) echo 2 ;; 2) echo 3 ;; 3) echo 4 ;; *) echo 5 ;; esac; }
step() {  # step NAME: podtriage corefile NAME FILE...
  local json rc
  json=$("$PODTRIAGE" corefile "$1" "${files[@]}" -o json); rc=$?
  printf '%s' "$json" | "$PY" -m toolkit.kube.runbook report "corefile $1" "$rc" -
  [ "$(rank "$rc")" -gt "$(rank "$worst")" ] && worst=$rc
  return 0
}
echo "== podtriage corefile lint"
step lint
echo "== podtriage corefile check"
step check
case "$worst" in
  0) echo "check-coredns-config: clean" ;;
  1) echo "check-coredns-config: findings above: fix the Corefile (kubectl edit cm -n kube-system NAME) and let CoreDNS reload" ;;
  5) echo "check-coredns-config: could not tell (nothing probed, see the notes above): run it where the forward targets are reachable" ;;
  2) echo "check-coredns-config: usage error" ;;
  3) echo "check-coredns-config: could not read or probe everything (see above)" ;;
  *) echo "check-coredns-config: podtriage failed (exit $worst); rerun with PODTRIAGE_DEBUG=1" ;;
esac
exit "$worst"
