"""`podtriage merge`: the adapter. The work is in toolkit.kube.merge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from toolkit.cli.common import DEFAULT_DEADLINE, DeadlineOpt, OutputOpt, run
from toolkit.cli.root import app
from toolkit.errors import UsageError
from toolkit.model import Report
from toolkit.report import OutputFormat

if TYPE_CHECKING:
    from toolkit.deadline import Deadline
    from toolkit.kube.merge import Source
    from toolkit.report.reader import Unusable

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

    Reads the documents of every podtriage command (also NDJSON, whose summary line is the
    document, container logs with a document in them, documents written one after the other
    with or without separators). Only documents that match their command's JSON Schema
    (schemas/ in the repository) are merged; every input that could not be used is counted
    and named, and the verdict is then never ok. Groups the reports that share a verdict,
    answered addresses and nameserver path, names a node whose pods all differ from the
    rest, and gives one verdict: ok only when every report is ok.

    Example: kubectl logs -l job-name=... | podtriage merge -
    """

    def build() -> Report:
        from toolkit.deadline import Deadline
        from toolkit.kube.merge import merge

        if not files:
            raise UsageError("give at least one FILE or -")
        sources, unusable, empty = _read_all(files, Deadline.for_command(deadline))
        if not sources:
            _nothing_usable(files, unusable)
        report = merge(sources, unusable=unusable)
        if empty:
            from dataclasses import replace

            report = replace(report, notes=report.notes + tuple(
                "%s: no podtriage JSON document" % p for p in empty))
        return report

    run(build, output, deadline=deadline)


def _read_all(files: list[str], dl: Deadline) -> tuple[list[Source], list[Unusable], list[str]]:
    """Every input's documents, what could not be used, and the inputs with nothing in them.
    Reading stops at the deadline or a signal; what was not read is unusable (never ok)."""
    from toolkit.errors import InputFileError, StoppedBySignal
    from toolkit.inputs import read_bytes
    from toolkit.kube.merge import Source
    from toolkit.report.reader import Unusable, read_documents

    sources: list[Source] = []
    unusable: list[Unusable] = []
    empty: list[str] = []
    total = 0
    for i, path in enumerate(files):
        origin = path if path != "-" else "stdin"
        if dl.expired:
            unusable += [Unusable(origin=p if p != "-" else "stdin", where="all of it", reason=_not_read())
                         for p in files[i:]]
            break
        # One bounded reader for every input (toolkit.inputs): regular files, -, FIFOs
        # and pipes, read under --deadline and cut at the size cap.
        try:
            raw = read_bytes(path, what="a podtriage JSON document or log", limit=MAX_INPUT_BYTES)
        except StoppedBySignal:  # a signal while a FIFO waits: the rest is not read, as below
            unusable += [Unusable(origin=p if p != "-" else "stdin", where="all of it", reason=_not_read())
                         for p in files[i:]]
            break
        total += len(raw)
        if total > MAX_INPUT_BYTES:
            raise InputFileError(path, "input larger than %d MB" % (MAX_INPUT_BYTES >> 20))
        text = raw.decode("utf-8", "replace")
        scan = read_documents(text, origin, stop=lambda: dl.expired)
        sources += [Source(doc=d, origin=origin) for d in scan.documents]
        unusable += scan.unusable
        if scan.cut_at is not None:
            line = text.count("\n", 0, scan.cut_at) + 1
            unusable.append(Unusable(origin=origin, where=f"line {line} to the end", reason=_not_read()))
        elif not scan.documents and not scan.unusable:
            empty.append(path)
    return sources, unusable, empty


def _not_read() -> str:
    from toolkit import signals

    return "not read: " + ("stopped by " + signals.describe() if signals.stopped() else "--deadline reached")


def _nothing_usable(files: list[str], unusable: list[Unusable]) -> NoReturn:
    """No document at all: exit 3, naming what could not be used (also in the error document)."""
    from toolkit.errors import InputFileError

    if not unusable:
        raise InputFileError(", ".join(files), "no podtriage JSON document in the input",
                             hint="produce them with -o json or -o ndjson")
    first = unusable[0]
    raise InputFileError(
        ", ".join(files), "no usable podtriage document: %d input%s could not be used (first: %s %s: %s)" % (
            len(unusable), "" if len(unusable) == 1 else "s", first.origin, first.where, first.reason),
        hint="give merge whole documents (podtriage ... -o json or -o ndjson)",
        data={"reports": 0, "unusable_count": len(unusable),
              "unusable": [{"origin": u.origin, "where": u.where, "reason": u.reason} for u in unusable[:1000]]})
