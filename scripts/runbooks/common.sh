# shellcheck shell=bash
# The preamble every runbook sources (scripts/runbooks/*.sh; the image copies this directory
# whole to /opt/podtriage/runbooks/): the usage printer, the podtriage command, the Python
# that runs it, and `line`, the one way a runbook prints what came from a report or an
# argument. Sourced, never run: `. "$RUNBOOKS_DIR/common.sh"`.

# The runbook's name for its messages (dns-slow, service-unreachable...).
RUNBOOK=${0##*/}
RUNBOOK=${RUNBOOK%.sh}

# The comment block at the top of the runbook (after the #! line), as its help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
PODTRIAGE=${PODTRIAGE:-podtriage}
# The Python that runs podtriage (its console script's interpreter, $PODTRIAGE_PYTHON, or
# python3): every line printed from a report or an argument goes through podtriage's own
# sanitiser (toolkit.kube.runbook -> toolkit.report.sanitize), never raw to the terminal.
pt_python() {
  local exe first py
  exe=$(command -v "$PODTRIAGE" 2>/dev/null) || exe=""
  first=""
  if [ -n "$exe" ] && [ -r "$exe" ]; then
    IFS= read -r first < "$exe" || true
    first=${first#\#!}
    case "$first" in */env\ *) first=${first#*/env }; first=${first%% *} ;; *) first=${first%% *} ;; esac
  fi
  for py in "${PODTRIAGE_PYTHON:-}" "$first" python3; do
    if [ -n "$py" ] && "$py" -c 'import toolkit.kube.runbook' 2>/dev/null; then
      printf '%s\n' "$py"; return 0
    fi
  done
  return 1
}
PY=$(pt_python) || { echo "$RUNBOOK: cannot find the Python that runs podtriage (set PODTRIAGE_PYTHON)" >&2; exit 3; }
line() { "$PY" -m toolkit.kube.runbook line "$@"; }
