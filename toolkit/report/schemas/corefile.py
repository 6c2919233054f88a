"""Schemas of the Corefile documents: corefile lint, trace, check."""

from __future__ import annotations

from toolkit.report.schemas.common import (INTEGER, OBJECT, STRING, STRINGS, Schema, array, document,
                                           nullable, obj)

# What podtriage took each Corefile for (all three commands).
COREFILES = array(obj({"corefile": STRING, "role": STRING, "role_source": STRING, "evidence": STRINGS,
                       "imported_by": nullable(STRING), "managed_by": nullable(STRING),
                       "cluster_dns_targets": STRINGS}))
NEXT: Schema = nullable(obj({"target": nullable(STRING), "transport": nullable(STRING)}, required=()))

LINT = document(
    "corefile lint", "podtriage corefile lint",
    "Lint findings of CoreDNS / NodeLocal DNSCache Corefiles, with the role of each file.",
    {
        "files": array(obj({"role": STRING, "role_source": STRING, "role_evidence": STRINGS,
                            "imported_by": nullable(STRING), "managed_by": nullable(STRING)})),
        "blocks": array(OBJECT),
        "corefiles": COREFILES,
    },
    required=("files", "blocks", "corefiles"))

TRACE = document(
    "corefile trace", "podtriage corefile trace",
    "Which server block and plugin answer a name, and where the query goes next.",
    {
        "name": STRING,
        "hops": array(obj({"corefile": STRING, "block": STRING, "line": nullable(INTEGER), "zones": STRINGS,
                           "plugin": nullable(STRING), "next": NEXT, "role": STRING,
                           "conditional_answerers": array({})},
                          required=("corefile", "block", "line", "zones", "plugin", "next"))),
        "corefiles": COREFILES,
    },
    required=("name", "hops", "corefiles"))

CHECK = document(
    "corefile check", "podtriage corefile check",
    "Every forward target of the Corefiles probed and compared with the default upstream.",
    {
        "targets": array(obj({"corefile": STRING, "block": STRING, "line": nullable(INTEGER),
                              "file_line": nullable(INTEGER), "zone": STRING, "target": STRING,
                              "status": STRING, "serial": nullable(INTEGER),
                              "compared_with": nullable(STRING), "differences": STRINGS},
                             required=("corefile", "block", "target", "status", "differences"))),
        "corefiles": COREFILES,
    },
    required=("targets", "corefiles"))
