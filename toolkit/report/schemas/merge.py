"""Schema of the merged fleet report (podtriage merge, kubectl podtriage pods/nodes)."""

from __future__ import annotations

from toolkit.report.schemas.common import (
    COUNT, INTEGER, STRING, STRINGS, VERDICT, array, document, nullable, obj,
)

# issue 26: the dead DNS targets (CoreDNS addresses no longer behind the Service) that nodes'
# conntrack still steers flows to, grouped across the fleet
_STALE_NODE = obj({"node": STRING, "entries": COUNT,
                   "owners": array(obj({"pid": nullable(INTEGER), "process": STRING}))})
_STALE_TARGET = obj({"dead_target": STRING, "ports": array(INTEGER), "services": STRINGS,
                     "protos": STRINGS, "live_endpoints": STRINGS, "remedy_command": STRING,
                     "nodes": array(_STALE_NODE), "entries_total": COUNT},
                    required=("dead_target", "nodes", "entries_total"))

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
        "stale_dns_targets": array(_STALE_TARGET),
    },
    required=("reports", "verdicts", "groups", "missing", "nodes"))
