"""`podtriage merge`: the adapter. The work is in toolkit.kube.merge."""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit.cli.common import DEFAULT_DEADLINE, DeadlineOpt, OutputOpt, run
from toolkit.cli.root import app
from toolkit.model import Report
from toolkit.report import OutputFormat

# A fleet of a few hundred pods writes a few MB of JSON; more is not a podtriage log.
MAX_INPUT_BYTES = 64 * 1024 * 1024


@app.command("merge")
def merge_cmd(
    files: Annotated[list[str], typer.Argument(metavar="FILE... | -",
                                               help="JSON documents, NDJSON or logs; - reads stdin.")],
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """Merge podtriage JSON documents from many pods or nodes into one fleet report.

    Reads diagnose, resolve and conntrack documents (also NDJSON, whose summary line is the
    document, and container logs with a document in them). Groups the reports that share a
    verdict, answered addresses and nameserver path, names a node whose pods all differ from
    the rest, and gives one verdict: ok only when every report is ok.

    Example: kubectl logs -l job-name=... | podtriage merge -
    """

    def build() -> Report:
        from toolkit.errors import InputFileError, UsageError
        from toolkit.inputs import read_bytes
        from toolkit.kube.merge import Source, documents_in, merge

        if not files:
            raise UsageError("give at least one FILE or -")
        sources, total, empty = [], 0, []
        for path in files:
            # One bounded reader for every input (toolkit.inputs): regular files, -, FIFOs
            # and pipes, read under --deadline and cut at the size cap.
            raw = read_bytes(path, what="a podtriage JSON document or log",
                             limit=MAX_INPUT_BYTES)
            total += len(raw)
            if total > MAX_INPUT_BYTES:
                raise InputFileError(path, "input larger than %d MB" % (MAX_INPUT_BYTES >> 20))
            docs = documents_in(raw.decode("utf-8", "replace"))
            if not docs:
                empty.append(path)
            sources += [Source(doc=d, origin=path if path != "-" else "stdin") for d in docs]
        if not sources:
            raise InputFileError(", ".join(files), "no podtriage JSON document in the input",
                                 hint="produce them with -o json or -o ndjson")
        report = merge(sources)
        if empty:
            from dataclasses import replace

            report = replace(report, notes=report.notes + tuple(
                "%s: no podtriage JSON document" % p for p in empty))
        return report

    run(build, output, deadline=deadline)
