#!/usr/bin/env bash
# Runbook "DNS is slow": capture DNS for N seconds and summarise it (unanswered queries,
# retransmissions, the 5-second signature), then run the conntrack A/AAAA race test against
# the pod's first nameserver. Both JSON documents are saved, and printed as JSON lines.
#
# Usage: dns-slow.sh [-d SECONDS] [-i INTERFACE] [-t TARGET] [-n COUNT]
#   -d SECONDS    capture duration (default 30)
#   -i INTERFACE  interface to capture on (default: podtriage's choice)
#   -t TARGET     nameserver for the race test (default: first nameserver of /etc/resolv.conf)
#   -n COUNT      lookups per mode in the race test (default 200)
# Env: PODTRIAGE_OUT (directory for the JSON; default /tmp, else a new temporary directory),
#      PODTRIAGE (the podtriage command; default: podtriage)
# Needs NET_RAW for the capture (kubectl debug --profile=netadmin); without it the capture
# step reports the missing capability and the race test still runs.
# Exit code: the worst of the two steps (0 ok, 1 problem found, 3 could not observe, 4 bug).
set -uo pipefail

RUNBOOKS_DIR=${BASH_SOURCE[0]%/*}; [ "$RUNBOOKS_DIR" != "${BASH_SOURCE[0]}" ] || RUNBOOKS_DIR=.
# shellcheck source=common.sh
. "$RUNBOOKS_DIR/common.sh" || { echo "dns-slow: common.sh is missing next to it ($RUNBOOKS_DIR)" >&2; exit 3; }
duration=30 iface="" target="" count=200
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    -d|-i|-t|-n)
      [ $# -ge 2 ] || { echo "dns-slow: $1 needs a value" >&2; exit 2; }
      case "$1" in -d) duration=$2 ;; -i) iface=$2 ;; -t) target=$2 ;; -n) count=$2 ;; esac
      shift 2 ;;
    *) line "dns-slow: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$duration$count" in *[!0-9]*|'') echo "dns-slow: -d and -n take whole numbers" >&2; exit 2 ;; esac
if [ -z "$target" ]; then
  target=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null)
  [ -n "$target" ] || { echo "dns-slow: no nameserver in /etc/resolv.conf; give -t TARGET" >&2; exit 3; }
fi
out=${PODTRIAGE_OUT:-/tmp}
stamp=$(date +%Y%m%dT%H%M%S)

worst=0
# The worst exit code by meaning: ok (0) < could not tell (5) < problem found (1) < could not
# observe (3) < anything else (internal error, signal).
rank() { case "$1" in 0) echo 0 ;; 5) echo 1 ;; 1) echo 2 ;; 3) echo 3 ;; *) echo 4 ;; esac; }
note_rc() { if [ "$(rank "$1")" -gt "$(rank "$worst")" ]; then worst=$1; fi; }
[ -w "$out" ] && [ -d "$out" ] || out=$(mktemp -d 2>/dev/null) || { echo "dns-slow: no writable directory for the JSON (set PODTRIAGE_OUT)" >&2; exit 3; }

line "dns-slow: capturing DNS for ${duration}s${iface:+ on $iface}..."
cap="$out/podtriage-capture-$stamp.json"
args=(capture --duration "$duration" -o json --deadline $((duration + 15)))
[ -n "$iface" ] && args+=(--interface "$iface")
"$PODTRIAGE" "${args[@]}" > "$cap"; rc=$?
"$PY" -m toolkit.kube.runbook report capture "$rc" "$cap" "$cap"; note_rc "$rc"

line "dns-slow: conntrack race test against $target ($count lookups per mode)..."
race="$out/podtriage-race-$stamp.json"
"$PODTRIAGE" conntrack race-test "$target" --count "$count" -o json > "$race"; rc=$?
"$PY" -m toolkit.kube.runbook report race-test "$rc" "$race" "$race"; note_rc "$rc"

case "$worst" in
  0) echo "dns-slow: no DNS slowness seen in ${duration}s and no race reproduced" ;;
  1) echo "dns-slow: problem found: see the findings above (a 5-second signature with a reproduced race points at conntrack: NodeLocal DNSCache, single-request-reopen, or TCP for DNS)" ;;
  5) echo "dns-slow: could not tell (no DNS traffic seen or too little evidence): rerun during the slowness, with a longer -d" ;;
  3) echo "dns-slow: could not observe everything (a capability?): attach with --profile=netadmin" ;;
  *) echo "dns-slow: podtriage failed (exit $worst); rerun with PODTRIAGE_DEBUG=1" ;;
esac
exit "$worst"
