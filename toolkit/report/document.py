"""The JSON document of one run: the contract runbooks parse (README "JSON contract").

A ``Report`` is data; the document adds what belongs to the run rather than to the
result: the schema version, the tool and its version, and the run's ``context`` (the pod,
namespace and node the kubectl plugin hands every ephemeral container and Job pod). The
CLI reads the context (toolkit.kube.context) and passes it in; nothing here reads the
environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from toolkit import __version__
from toolkit.model import Report, Verdict, rfc3339, to_jsonable

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
    doc.setdefault("error", None)     # a completed run; see error_document
    return doc


class ErrorKind(StrEnum):
    """Why a run ended without its report (the ``error.kind`` of an error document)."""

    USAGE = "usage"                    # exit 2
    CANNOT_OBSERVE = "cannot-observe"  # exit 3
    INTERNAL = "internal"              # exit 4
    INTERRUPTED = "interrupted"        # 130/143: a second signal, or work with no partial result


@dataclass(frozen=True, kw_only=True)
class RunError:
    """A run that ended without its report: what ``-o json``/``ndjson`` still print."""

    kind: ErrorKind
    message: str
    exit_code: int
    hint: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


_ERROR_CODES = {ErrorKind.USAGE: "usage-error", ErrorKind.CANNOT_OBSERVE: "cannot-observe",
                ErrorKind.INTERNAL: "internal-error", ErrorKind.INTERRUPTED: "interrupted"}


def error_document(command: str | None, error: RunError, duration_s: float,
                   context: RunContext | None = None) -> dict[str, Any]:
    """The one JSON document of a failed run: the same head as every document, the verdict
    ``indeterminate`` (nothing was established), ``error`` saying why, and one finding with
    the message so that a reader of ``findings[]`` sees it too. ``command`` None: the
    command line did not name one."""
    now = datetime.now(timezone.utc)
    given = context or {}
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": "podtriage",
        "tool_version": __version__,
        "command": command,
        "generated_at": rfc3339(now - timedelta(seconds=max(0.0, duration_s))),
        "duration_ms": round(max(0.0, duration_s) * 1000.0, 3),
        "verdict": Verdict.INDETERMINATE.value,
        "context": {key: given.get(key) for key in CONTEXT_KEYS},
        **{k: to_jsonable(v) for k, v in error.data.items()},
        "error": {"kind": error.kind.value, "message": error.message, "hint": error.hint,
                  "exit_code": error.exit_code},
        "findings": [{"code": _ERROR_CODES[error.kind], "severity": "critical", "summary": error.message,
                      "evidence": [], "remedy": error.hint or "", "verdict": Verdict.INDETERMINATE.value,
                      "data": {"exit_code": error.exit_code}}],
        "notes": [],
    }
    return doc
