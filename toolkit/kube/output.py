"""What the kubectl plugin prints itself: its progress and warnings on stderr (``say``), the
specs ``--dry-run`` shows (YAML), and a merged fleet report with the exit code it means."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from toolkit.errors import EXIT_CANNOT_OBSERVE
from toolkit.kube.kubectl import JsonObject
from toolkit.model import Report, verdict_exit_code
from toolkit.report import OutputFormat

PROG = "kubectl podtriage"


def say(msg: str) -> None:
    """One line of the plugin's own on stderr (stdout carries podtriage's output)."""
    print("%s: %s" % (PROG, msg), file=sys.stderr, flush=True)


def print_yaml(docs: Sequence[JsonObject]) -> None:
    """``docs`` as a YAML stream on stdout (--dry-run)."""
    import yaml

    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False))
    sys.stdout.flush()


def render_merged(report: Report, output: OutputFormat) -> int:
    """Print a fleet report in ``output`` format; its exit code: 3 when no report came back,
    else its verdict's (toolkit.model.verdict_exit_code: 0 ok, 5 indeterminate, 1 a problem)."""
    from toolkit.report import render

    render(report, output, sys.stdout)
    sys.stdout.flush()
    if not report.data.get("reports"):
        return EXIT_CANNOT_OBSERVE
    return verdict_exit_code(report.verdict)
