"""Schema of the capture document (live or --read)."""

from __future__ import annotations

from toolkit.report.schemas.common import (BOOLEAN, COUNT, INTEGER, NUMBER, OBJECT, STRING, STRINGS, Schema,
                                           array, document, nullable, obj)

COUNTS: Schema = {"type": "object", "additionalProperties": COUNT}
LOOKUP = obj({"client": STRING, "base": STRING, "qtypes": STRINGS, "queries": COUNT,
              "retransmissions": COUNT, "nxdomain": COUNT, "unanswered": COUNT, "outcome": STRING,
              "addresses": STRINGS, "duration_ms": nullable(NUMBER),
              "process": nullable(obj({"pid": INTEGER, "name": STRING, "cmdline": nullable(STRING),
                                       "library": nullable(obj({"kind": STRING, "version": nullable(STRING),
                                                                "detail": STRING, "how": STRING},
                                                               required=("kind",)))},
                                      required=("pid", "name")))},
             required=("client", "base", "queries", "outcome", "process"))
SERVER = obj({"server": STRING, "port": INTEGER, "queries": COUNT, "responses": COUNT, "unanswered": COUNT,
              "retransmissions": COUNT, "rcodes": COUNTS},
             required=("server", "queries", "responses", "unanswered"))

CAPTURE = document(
    "capture", "podtriage capture",
    "DNS on the wire (live, or a pcap read): queries paired with answers, lookups, servers.",
    {
        "mode": STRING,
        "packets": COUNT,
        "queries": COUNT,
        "responses": COUNT,
        "unanswered": COUNT,
        "retransmissions": COUNT,
        "malformed": COUNT,
        "rcodes": COUNTS,
        "servers": array(SERVER),
        "lookups": array(LOOKUP),
        "lookups_total": COUNT,
        "decoder": OBJECT,
        "kernel": nullable(OBJECT),
        "who_asked": nullable(obj({"lookups_attributed": COUNT, "lookups": COUNT})),
        "capture_path": nullable(STRING),  # live: "tpacket_v3" or "recvmsg"
        "capture_path_reason": nullable(STRING),  # live on the recvmsg path: why not the ring
        "stopped_by": nullable(STRING),
        "cut_short": BOOLEAN,
        "pending_at_cut": COUNT,
        "unread": nullable(COUNT),
        "evicted_pending": COUNT,
        "max_pending": COUNT,
    },
    required=("packets", "queries", "responses", "unanswered", "retransmissions", "malformed", "rcodes",
              "servers", "lookups", "decoder", "stopped_by", "cut_short", "pending_at_cut", "evicted_pending",
              "max_pending"))
