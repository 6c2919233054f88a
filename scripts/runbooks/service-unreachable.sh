#!/usr/bin/env bash
# Runbook "service unreachable": one podtriage diagnose run, its JSON saved, and its verdict
# turned into the next step to take.
#
# Usage: service-unreachable.sh NAME [PORT] [--reference IP]... [--corefile FILE]...
#   NAME   the name the application cannot reach, as it spells it
#   PORT   its TCP port (default: podtriage tries 443 and 80)
#   --reference IP  an independent resolver for the zone (repeatable): lets podtriage tell a
#                   stale DNS answer from a dead host
#   --corefile FILE a CoreDNS/NodeLocal Corefile or ConfigMap (repeatable)
# Env: PODTRIAGE_OUT (directory for the JSON; default /tmp, else the current directory;
#      when neither is writable the JSON is not saved),
#      PODTRIAGE (the podtriage command; default: podtriage)
# Prints the report as one JSON line (NDJSON) on stdout, then a summary and the next step.
# Runs where podtriage runs: in the podtriage image attached to the pod
#   kubectl podtriage POD --runbook service-unreachable -- NAME PORT
# or anywhere podtriage is installed. Exit code: podtriage's (0 ok, 1 problem, 2 usage,
# 3 could not observe, 4 internal error).
set -uo pipefail

RUNBOOKS_DIR=${BASH_SOURCE[0]%/*}; [ "$RUNBOOKS_DIR" != "${BASH_SOURCE[0]}" ] || RUNBOOKS_DIR=.
# shellcheck source=common.sh
. "$RUNBOOKS_DIR/common.sh" || { echo "service-unreachable: common.sh is missing next to it ($RUNBOOKS_DIR)" >&2; exit 3; }
name="" port="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --reference|--corefile|--server)
      [ $# -ge 2 ] || { line "service-unreachable: $1 needs a value" >&2; exit 2; }
      extra+=("$1" "$2"); shift 2 ;;
    -*) line "service-unreachable: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) if [ -z "$name" ]; then name=$1
       elif [ -z "$port" ]; then port=$1
       else echo "service-unreachable: too many arguments" >&2; usage >&2; exit 2; fi
       shift ;;
  esac
done
[ -n "$name" ] || { usage >&2; exit 2; }
if [ -n "$port" ]; then
  case "$port" in *[!0-9]*|'') echo "service-unreachable: PORT must be a number" >&2; exit 2 ;; esac
  extra+=(--port "$port")
fi

json=$("$PODTRIAGE" diagnose "$name" "${extra[@]}" -o json); rc=$?
# Saved where we may write (the root filesystem of a debug container is often read-only).
report=""
for dir in "${PODTRIAGE_OUT:-/tmp}" .; do
  f="$dir/podtriage-diagnose-${name//[^A-Za-z0-9.-]/_}-$(date +%Y%m%dT%H%M%S).json"
  if [ -n "$json" ] && printf '%s\n' "$json" 2>/dev/null > "$f"; then report=$f; break; fi
done
saved=$report
if [ -z "$report" ] && [ -n "$json" ]; then saved="(not saved: no writable directory)"; fi

verdict=$(printf '%s' "$json" | "$PY" -m toolkit.kube.runbook verdict -)
printf '%s' "$json" | "$PY" -m toolkit.kube.runbook report \
  "service-unreachable: $name${port:+ port $port}" "$rc" - "$saved"
case "$rc:$verdict" in
  0:ok) echo "next: DNS and the path are healthy from this pod; look at the application (TLS, credentials, its own timeouts)" ;;
  1:bad-answer) echo "next: DNS returns a wrong address. Find the resolver or Corefile block that answers it (check-coredns-config.sh) and fix or remove the stale upstream/hosts entry; do not debug the network" ;;
  1:unreachable-host) echo "next: resolvers agree, the host is dead. Page the owners of the target; check its node/VM and the route to it" ;;
  1:port-closed) echo "next: the host is up and refuses the port. Check the service is listening on that port (Service targetPort, container port)" ;;
  1:filtered) echo "next: something drops or rejects on the path. Check NetworkPolicies, security groups and firewalls between the pod and the target" ;;
  1:dns-unavailable) echo "next: a nameserver on the path does not answer. Check NodeLocal DNSCache / CoreDNS pods and their upstreams (the findings name the server and transport)" ;;
  1:dns-error) echo "next: DNS says the name does not exist or fails. Check the spelling, the search list (ndots), and the zone on the server the findings name" ;;
  1:conntrack) echo "next: conntrack race or table pressure. Run dns-slow.sh, check nf_conntrack_max and NodeLocal DNSCache on the node (kubectl podtriage --node NODE)" ;;
  5:*) echo "next: not enough independent evidence. Rerun with --reference IP (the zone's authoritative server) and --corefile" ;;
  2:*) echo "next: usage error; see podtriage diagnose --help" ;;
  3:*) echo "next: podtriage could not observe (a capability, a file or the namespace): attach with kubectl debug --profile=netadmin" ;;
  *) echo "next: podtriage failed (internal error); rerun with PODTRIAGE_DEBUG=1 and report the traceback" ;;
esac
exit "$rc"
