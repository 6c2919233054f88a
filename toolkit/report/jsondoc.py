"""JSON and NDJSON renderers: the contract runbooks parse (see README "JSON contract")."""

from __future__ import annotations

import json
from typing import Any, TextIO

from toolkit.model import Report, to_jsonable


def render_json(report: Report, stream: TextIO) -> None:
    json.dump(report.to_dict(), stream, indent=2, sort_keys=False)
    stream.write("\n")


def ndjson_line(event: str, body: dict[str, Any]) -> str:
    return json.dumps({"event": event, **body}, separators=(",", ":")) + "\n"


def render_ndjson(report: Report, stream: TextIO) -> None:
    """One event per line: the command's own events, each finding, then the summary.

    The summary line is the whole JSON document, so a consumer that reads only the last
    line still gets everything.
    """
    for event in report.events:
        body = dict(to_jsonable(event))
        kind = body.pop("event", "result")
        stream.write(ndjson_line(kind, body))
    for finding in report.findings:
        stream.write(ndjson_line("finding", to_jsonable(finding)))
    stream.write(ndjson_line("summary", report.to_dict()))
