"""Schema of the merged fleet report (podtriage merge, kubectl podtriage pods/nodes)."""

from __future__ import annotations

from toolkit.report.schemas.common import (COUNT, STRING, STRINGS, VERDICT, array, document, nullable, obj)

MERGE = document(
    "merge", "podtriage merge",
    "Many podtriage documents (one per pod or node) as one fleet report.",
    {
        "reports": COUNT,
        "verdicts": {"type": "object", "additionalProperties": COUNT},
        "groups": array(obj({"verdict": VERDICT, "command": STRING, "addresses": STRINGS, "servers": STRINGS,
                             "nodes": STRINGS, "pods": STRINGS, "count": COUNT})),
        "missing": array(obj({"where": STRING, "node": nullable(STRING), "reason": STRING,
                              "exit_code": nullable({"type": "integer"})}, required=("where", "reason"))),
        "unusable": array(obj({"origin": STRING, "where": STRING, "reason": STRING})),
        "unusable_count": COUNT,
        "nodes": STRINGS,
    },
    required=("reports", "verdicts", "groups", "missing", "nodes"))
