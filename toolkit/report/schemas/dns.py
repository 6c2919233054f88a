"""Schemas of the DNS documents: resolve, diagnose, resolvconf (README "JSON contract")."""

from __future__ import annotations

from toolkit.report.schemas.common import (BOOLEAN, COUNT, INTEGER, NUMBER, OBJECT, STRING, STRINGS,
                                           TIMESTAMP, Schema, array, document, nullable, obj)

PORT: Schema = {"type": "integer", "minimum": 0, "maximum": 65535}
SOA = obj({"owner": STRING, "mname": STRING, "serial": INTEGER, "minimum": INTEGER, "ttl": INTEGER},
          required=("owner", "serial"))
# One query of one path (toolkit.dns.query.QueryResult plus the path's role).
RESULT = obj({
    "server": STRING, "port": PORT, "transport": STRING, "qtype": STRING, "qname": STRING,
    "rcode": nullable(STRING), "answers": STRINGS, "ttl": nullable(INTEGER),
    "latency_ms": nullable(NUMBER), "flags": STRINGS, "error": nullable(STRING),
    "error_detail": nullable(STRING), "icmp_from": nullable(STRING), "cnames": STRINGS,
    "soa": nullable({"$ref": "#/$defs/soa"}), "nsid": nullable(STRING), "started_at": TIMESTAMP,
    "answered": BOOLEAN, "nodata": BOOLEAN, "role": STRING,
}, required=("server", "transport", "qtype", "qname", "rcode", "answers", "ttl", "latency_ms", "flags",
             "error", "error_detail", "icmp_from", "soa", "nsid", "role"))
ROUTE = obj({"destination": STRING, "interface": nullable(STRING), "gateway": nullable(STRING),
             "source": nullable(STRING), "on_link": BOOLEAN, "kind": STRING, "detail": STRING},
            required=("destination", "kind"))
PROCESS = obj({"pid": INTEGER, "name": STRING, "cmdline": STRING}, required=("pid", "name"))
DEFS = {"result": RESULT, "soa": SOA, "route": ROUTE, "process": PROCESS}
RESULTS = array({"$ref": "#/$defs/result"})

RESOLVE = document(
    "resolve", "podtriage resolve",
    "Every resolver on the path asked for one name, as glibc walks the search list.",
    {
        "name": STRING,
        "candidates": STRINGS,
        "resolv_conf": nullable(STRING),
        "servers": array(obj({"address": STRING, "port": PORT, "role": STRING})),
        "results": RESULTS,
        "paths": array(obj({"server": STRING, "role": STRING, "transport": STRING, "outcome": STRING,
                            "hit": nullable(STRING), "addresses": STRINGS})),
        "getaddrinfo": nullable(obj({"addresses": STRINGS, "error": nullable(STRING),
                                     "latency_ms": nullable(NUMBER)}, required=("addresses", "error"))),
    },
    required=("name", "candidates", "servers", "results", "paths", "getaddrinfo"), defs=DEFS)

DIAGNOSE = document(
    "diagnose", "podtriage diagnose",
    "The one-shot triage of a name: every path's answers, every address probed, one verdict.",
    {
        "name": STRING,
        "confidence": {"enum": ["high", "medium", "low"]},
        "settle": nullable(STRING),
        "support": array({"enum": ["reference", "corefile", "paths", "queries", "probes", "control"]}),
        "answers": array(obj({"server": STRING, "role": STRING, "transport": STRING, "outcome": STRING,
                              "answered_as": nullable(STRING), "addresses": STRINGS})),
        "probes": array(obj({"target": STRING, "address": STRING, "kind": STRING, "port": nullable(PORT),
                             "result": STRING, "from": nullable(STRING), "rtt_ms": nullable(NUMBER),
                             "detail": nullable(STRING), "privileged": BOOLEAN})),
        "addresses": array(obj({"address": STRING, "state": STRING, "summary": STRING,
                                "answered_by": STRINGS, "route": nullable({"$ref": "#/$defs/route"})})),
        "ports": array(PORT),
        "candidates": STRINGS,
        "results": RESULTS,
        "processes": array(OBJECT),
        "app_sockets": array(OBJECT),
    },
    required=("name", "confidence", "settle", "support", "answers", "probes", "addresses", "candidates",
              "results", "processes", "app_sockets"), defs=DEFS)

RESOLVCONF = document(
    "resolvconf", "podtriage resolvconf",
    "resolv.conf, hosts and nsswitch.conf as glibc reads them, linted; with a name, its candidates.",
    {
        "path": STRING,
        "nameservers": STRINGS,
        "ignored_nameservers": array({}),
        "search": STRINGS,
        "options": OBJECT,
        "name": nullable(STRING),
        "candidates": STRINGS,
        "queries": COUNT,
        "worst_case_fail_s": NUMBER,
        "worst_case_fail_naive_s": NUMBER,
        "hosts_overrides": array({}),
    },
    required=("path", "nameservers", "ignored_nameservers", "search", "options"))
