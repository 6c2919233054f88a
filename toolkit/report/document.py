"""The JSON document of one run: the contract runbooks parse (README "JSON contract").

A ``Report`` is data; the document adds what belongs to the run rather than to the
result: the schema version, the tool and its version, and the run's ``context`` (the pod,
namespace and node the kubectl plugin hands every ephemeral container and Job pod). The
CLI reads the context (toolkit.kube.context) and passes it in; nothing here reads the
environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolkit import __version__
from toolkit.model import Report, rfc3339, to_jsonable

SCHEMA_VERSION = 1
# The context keys every document carries, null where unknown (a run outside the plugin).
CONTEXT_KEYS = ("pod", "namespace", "node")

RunContext = Mapping[str, str | None]


def json_document(report: Report, context: RunContext | None = None) -> dict[str, Any]:
    """The whole JSON document of ``report``: the fixed head, the command's own keys, the
    findings and the notes. ``context`` None: every context key is null."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": "podtriage",
        "tool_version": __version__,
        "command": report.command,
        "generated_at": rfc3339(report.started_at),
        "duration_ms": round(report.duration_ms, 3),
        "verdict": report.verdict.value,
    }
    if report.confidence is not None:
        doc["confidence"] = to_jsonable(report.confidence)
    given = context or {}
    doc["context"] = {key: given.get(key) for key in CONTEXT_KEYS}
    for key, value in report.data.items():
        doc[key] = to_jsonable(value)
    doc["findings"] = [to_jsonable(f) for f in report.findings]
    doc["notes"] = list(report.notes)
    return doc
