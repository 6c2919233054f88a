"""Schemas of the network documents: reach, conntrack, conntrack race-test."""

from __future__ import annotations

from toolkit.report.schemas.common import (BOOLEAN, COUNT, INTEGER, NUMBER, OBJECT, STRING, STRINGS, Schema,
                                           array, document, nullable, obj)
from toolkit.report.schemas.dns import PORT, ROUTE

PROBE = obj({"address": STRING, "kind": STRING, "port": nullable(PORT), "result": STRING,
             "from": nullable(STRING), "rtt_ms": nullable(NUMBER), "detail": nullable(STRING),
             "privileged": BOOLEAN}, required=("address", "kind", "result"))
PROBES = array({"$ref": "#/$defs/probe"})

REACH = document(
    "reach", "podtriage reach",
    "Route, ARP/ND, ICMP and TCP probes of every address of a target, with a control probe.",
    {
        "target": STRING,
        "addresses": array(obj({"address": STRING, "route": nullable({"$ref": "#/$defs/route"}),
                                "state": STRING, "alive": nullable(BOOLEAN), "control_ok": nullable(BOOLEAN),
                                "summary": STRING, "probes": PROBES, "control": PROBES})),
        "capabilities": STRINGS,
        "lost": array({}),
        "ports": array(PORT),
    },
    required=("target", "addresses", "capabilities", "lost"), defs={"probe": PROBE, "route": ROUTE})

NETNS = obj({"inode": nullable(INTEGER), "label": STRING, "is_init": nullable(BOOLEAN)}, required=())
_COUNTER_DELTA: Schema = {"type": "object", "additionalProperties": INTEGER}

CONNTRACK = document(
    "conntrack", "podtriage conntrack",
    "Conntrack counters of a network namespace sampled twice, table usage, DNS flow entries.",
    {
        "netns": nullable(NETNS),
        "interval_s": NUMBER,
        "counters_source": nullable(STRING),
        "counters": nullable({"type": "object", "additionalProperties": OBJECT}),
        "per_cpu": array(OBJECT),
        "count": nullable(COUNT),
        "max": nullable(COUNT),
        "usage_pct": nullable(NUMBER),
        "sysctls": nullable(OBJECT),
        "kernel": nullable(OBJECT),
        "dns_entries": array(OBJECT),
        "dns_backends": array(OBJECT),
        "sources": array(OBJECT),
        "net_admin": BOOLEAN,
        # issue 26: the DNS Service's live endpoints the flows were judged against (absent: unknown)
        "dns_live_endpoints": obj({"addresses": STRINGS, "source": STRING, "services": STRINGS}),
    },
    required=("netns", "interval_s", "counters_source", "counters", "per_cpu", "count", "max", "usage_pct",
              "sysctls", "kernel", "dns_entries", "dns_backends", "sources", "net_admin"))

RACE_TEST = document(
    "conntrack race-test", "podtriage conntrack race-test",
    "The A/AAAA conntrack race test: parallel, reopen and TCP modes against one DNS server.",
    {
        "target": STRING,
        "port": PORT,
        "count": COUNT,
        "modes": array(obj({"mode": STRING, "lookups": COUNT, "queries": COUNT, "answered": COUNT,
                            "lost": COUNT, "stalled": COUNT, "loss_rate": nullable(NUMBER),
                            "stall_rate": nullable(NUMBER), "latency_ms_p50": nullable(NUMBER)},
                           required=("mode", "lookups", "queries", "answered", "lost", "stalled"))),
        "counters_delta": nullable(_COUNTER_DELTA),
    },
    required=("target", "port", "count", "modes", "counters_delta"))
