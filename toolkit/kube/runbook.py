"""What the runbooks (scripts/runbooks/*.sh) print, through podtriage's own sanitiser.

A runbook is bash around podtriage; what it prints mixes its own words, the user's
arguments and text from a report (names off the wire, ConfigMap names, findings). Every
such line goes through ``toolkit.report.sanitize.for_terminal``, so a name carrying a
clear-screen, a cursor-home and a forged ``verdict ok (exit 0)`` line is shown escaped,
never obeyed. Each report is also printed as one line of JSON (NDJSON, ASCII only), so
``kubectl podtriage POD --runbook NAME`` hands it on like podtriage's own output.

    python -m toolkit.kube.runbook report STEP RC FILE|- [SAVED] # NDJSON line + summary
    python -m toolkit.kube.runbook line TEXT...                  # one sanitised line
    python -m toolkit.kube.runbook verdict FILE                  # the verdict, if a known one
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from toolkit.errors import InputFileError
from toolkit.inputs import read_bytes
from toolkit.report.sanitize import for_terminal

MAX_DOC = 64 << 20          # a report larger than this is not read back


def _load(path: str) -> dict[str, Any] | None:
    """The JSON document in ``path`` (``-``: stdin), or None when there is none."""
    try:
        raw = read_bytes(path, what="a podtriage report", limit=MAX_DOC)
    except InputFileError:
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def report_lines(step: str, rc: str, doc: dict[str, Any] | None, saved: str) -> list[str]:
    """The runbook's lines for one report: the JSON line, then the human summary."""
    if doc is None:
        return [for_terminal("%s: no report (exit %s)" % (step, rc))]
    out = [json.dumps(doc, separators=(",", ":"), ensure_ascii=True)]
    verdict = doc.get("verdict")
    where = ", JSON in %s" % saved if saved else ""
    out.append(for_terminal("%s: verdict %s (exit %s)%s" % (step, verdict, rc, where)))
    for f in doc.get("findings") or []:
        if not isinstance(f, dict):
            continue
        out.append(for_terminal("  [%s] %s: %s" % (f.get("severity", "?"), f.get("code", "?"),
                                                   f.get("summary", ""))))
        if f.get("remedy"):
            out.append(for_terminal("      remedy: %s" % f["remedy"]))
    for n in doc.get("notes") or []:
        out.append(for_terminal("  note: %s" % n))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The runbooks' printer (see the module docstring); exit 2 on a bad call."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["line"]:
        lines = [for_terminal(" ".join(args[1:]))]
    elif args[:1] == ["report"] and len(args) in (4, 5):
        lines = report_lines(args[1], args[2], _load(args[3]), args[4] if len(args) == 5 else "")
    elif args[:1] == ["verdict"] and len(args) == 2:
        from toolkit.model import Verdict

        doc = _load(args[1])
        verdict = doc.get("verdict") if doc else None
        # only a verdict of the contract: the runbook's `case` acts on it
        lines = [verdict if verdict in {v.value for v in Verdict} else ""]
    else:
        print("usage: python -m toolkit.kube.runbook report STEP RC FILE [SAVED] | line TEXT... "
              "| verdict FILE", file=sys.stderr)
        return 2
    try:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
    except OSError:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
