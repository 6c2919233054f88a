"""The JSON Schemas of podtriage's documents, one per command, plus ``document`` (the head
every document shares, failed runs' error documents included).

``python -m toolkit.report.schemas DIR`` writes them as ``DIR/<command>.schema.json`` (the
repository keeps them in ``schemas/``; a unit test checks they are current), and
``toolkit.report.validate`` checks a document against them (``podtriage merge`` accepts only
documents that match).
"""

from __future__ import annotations

from toolkit.report.schemas.capture import CAPTURE
from toolkit.report.schemas.common import (DEFS, HEAD, HEAD_REQUIRED, SCHEMA_BASE, SCHEMA_DIALECT, Schema,
                                           nullable, schema_file)
from toolkit.report.schemas.corefile import CHECK, LINT, TRACE
from toolkit.report.schemas.dns import DIAGNOSE, RESOLVCONF, RESOLVE
from toolkit.report.schemas.merge import MERGE
from toolkit.report.schemas.net import CONNTRACK, RACE_TEST, REACH

# Every command's schema, by the document's "command".
SCHEMAS: dict[str, Schema] = {
    "diagnose": DIAGNOSE, "resolve": RESOLVE, "resolvconf": RESOLVCONF, "reach": REACH,
    "capture": CAPTURE, "conntrack": CONNTRACK, "conntrack race-test": RACE_TEST,
    "corefile lint": LINT, "corefile trace": TRACE, "corefile check": CHECK, "merge": MERGE,
}

DOCUMENT: Schema = {
    "$schema": SCHEMA_DIALECT,
    "$id": SCHEMA_BASE + "document.schema.json",
    "title": "podtriage document",
    "description": "What every podtriage JSON document carries (a completed run's, or a failed run's "
                   "error document); each command's own keys are in <command>.schema.json.",
    "type": "object",
    "properties": {**HEAD, "command": nullable({"type": "string"})},
    "required": list(HEAD_REQUIRED),
    "$defs": DEFS,
}


def schema_for(command: str) -> Schema:
    """The schema of COMMAND's document (the shared ``document`` schema for an unknown one)."""
    return SCHEMAS.get(command, DOCUMENT)


def files() -> dict[str, Schema]:
    """Every schema by its file name (what ``schemas/`` in the repository holds)."""
    return {"document.schema.json": DOCUMENT, **{schema_file(c): s for c, s in SCHEMAS.items()}}
