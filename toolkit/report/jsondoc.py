"""JSON and NDJSON renderers of the document (toolkit.report.document)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from toolkit.model import Report, to_jsonable
from toolkit.report.document import RunContext, json_document


def render_json(report: Report, stream: TextIO, context: RunContext | None = None) -> None:
    """The document, indented, on one stream."""
    json.dump(json_document(report, context), stream, indent=2, sort_keys=False)
    stream.write("\n")


def ndjson_line(event: str, body: Mapping[str, Any]) -> str:
    """One NDJSON line: ``{"event": EVENT, ...body}``."""
    return json.dumps({"event": event, **body}, separators=(",", ":")) + "\n"


def render_ndjson(report: Report, stream: TextIO, context: RunContext | None = None) -> None:
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
    stream.write(ndjson_line("summary", json_document(report, context)))


def render_error(doc: Mapping[str, Any], ndjson: bool, stream: TextIO) -> None:
    """An error document (toolkit.report.document.error_document): indented for json, one
    ``summary`` line for ndjson (the last line of an NDJSON stream is always the document)."""
    if ndjson:
        stream.write(ndjson_line("summary", doc))
    else:
        json.dump(doc, stream, indent=2)
        stream.write("\n")
