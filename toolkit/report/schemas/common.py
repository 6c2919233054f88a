"""The building blocks of the JSON Schemas (Draft 2020-12) of podtriage's documents: the
head every document carries (README "JSON contract"), a finding, the run's context and the
error of a failed run. Each command's schema (the modules beside this one) adds its own keys.

The schemas state the contract: every key the README names is required and typed; objects
allow more keys (new keys may be added, none renamed); nothing is ``additionalProperties:
false``. They are data only (plain dicts), cheap to import, and the repository's
``schemas/*.schema.json`` are written from them (``python -m toolkit.report.schemas``).
"""

from __future__ import annotations

from typing import Any

from toolkit.model import Severity, Verdict
from toolkit.report.document import CONTEXT_KEYS, ErrorKind

# Any: a JSON Schema is a JSON object of any shape.
Schema = dict[str, Any]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://podtriage.dev/schemas/"

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
ANY_ARRAY: Schema = {"type": "array"}
COUNT: Schema = {"type": "integer", "minimum": 0}
# RFC 3339 date-time in UTC as podtriage writes it (toolkit.model.rfc3339): checked by
# pattern, since "format" is only an annotation in Draft 2020-12.
TIMESTAMP: Schema = {"type": "string", "pattern": r"^\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
VERDICT: Schema = {"enum": [v.value for v in Verdict]}


def nullable(schema: Schema) -> Schema:
    """SCHEMA or null."""
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    if set(schema) == {"enum"}:
        return {"enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    """An array of ITEMS."""
    return {"type": "array", "items": items}


def obj(properties: dict[str, Schema], required: tuple[str, ...] | None = None) -> Schema:
    """An object with typed PROPERTIES; REQUIRED: those that must be there (None: all)."""
    out: Schema = {"type": "object", "properties": properties}
    keys = tuple(properties) if required is None else required
    if keys:
        out["required"] = list(keys)
    return out


STRINGS = array(STRING)
FINDING = obj({
    "code": STRING,
    "severity": {"enum": [s.value for s in Severity]},
    "summary": STRING,
    "evidence": STRINGS,
    "remedy": STRING,
    "verdict": nullable(VERDICT),
    "data": OBJECT,
}, required=("code", "severity", "summary", "evidence", "remedy", "verdict", "data"))
CONTEXT = obj({key: nullable(STRING) for key in CONTEXT_KEYS})
ERROR = obj({"kind": {"enum": [k.value for k in ErrorKind]}, "message": STRING,
             "hint": nullable(STRING), "exit_code": {"type": "integer", "minimum": 1}})

# The head of every document, completed or failed.
HEAD: dict[str, Schema] = {
    "schema_version": {"const": 1},
    "tool": {"const": "podtriage"},
    "tool_version": STRING,
    "command": STRING,
    "generated_at": TIMESTAMP,
    "duration_ms": {"type": "number", "minimum": 0},
    "verdict": VERDICT,
    "confidence": {"enum": ["high", "medium", "low"]},
    "context": {"$ref": "#/$defs/context"},
    "findings": array({"$ref": "#/$defs/finding"}),
    "notes": STRINGS,
    # null for a completed run; older documents (before the key existed) have none.
    "error": nullable({"$ref": "#/$defs/error"}),
    "interrupted": {"enum": ["SIGINT", "SIGTERM", "a stop request"]},
    "output_cut": obj({"reason": STRING, "kept": COUNT, "lengths": {"type": "object",
                                                                     "additionalProperties": COUNT}}),
}
HEAD_REQUIRED = ("schema_version", "tool", "tool_version", "command", "generated_at", "duration_ms",
                 "verdict", "context", "findings", "notes")
DEFS: dict[str, Schema] = {"finding": FINDING, "context": CONTEXT, "error": ERROR}


def document(name: str, title: str, description: str, own: dict[str, Schema],
             required: tuple[str, ...], defs: dict[str, Schema] | None = None) -> Schema:
    """The schema of one command's document: the head plus OWN keys (REQUIRED of them must
    be there), unless the document is the error document of a failed run (``error`` not
    null), which carries the head only (toolkit.report.document.error_document)."""
    head = {**HEAD, "command": {"const": name}}
    failed = {"properties": {"error": {"type": "object"}}, "required": ["error"]}
    error_doc = {"properties": {"command": nullable({"const": name}), "verdict": {"const": "indeterminate"},
                                "error": {"$ref": "#/$defs/error"}}}
    completed = {"properties": {**head, **own}, "required": list(required)}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_BASE + schema_file(name),
        "title": title,
        "description": description,
        "type": "object",
        "properties": {k: v for k, v in HEAD.items() if k != "command"},
        "required": [k for k in HEAD_REQUIRED if k != "command"],
        "if": failed,
        "then": error_doc,
        "else": completed,
        "$defs": {**DEFS, **(defs or {})},
    }


def schema_file(name: str) -> str:
    """The file name of a command's schema: ``corefile lint`` -> corefile-lint.schema.json."""
    return name.replace(" ", "-") + ".schema.json"
