"""`podtriage capture`: the adapter. The work is in toolkit.capture."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import validate
from toolkit.cli.aliases import old_spelling
from toolkit.cli.root import app
from toolkit.cli.common import DeadlineOpt, OutputOpt, progress, progress_enabled, run
from toolkit.report import OutputFormat

if TYPE_CHECKING:
    from toolkit.capture.analysis import Result, Sink
    from toolkit.capture.config import AnalyzerConfig
    from toolkit.capture.records import CaptureResult
    from toolkit.deadline import Deadline
    from toolkit.model import Report

DEFAULT_DURATION = 10.0


@app.command("capture")
def capture_cmd(
    interface: Annotated[str, typer.Option("--interface", "-i", metavar="IF|any", parser=validate.interface,
                                           help="Interface to capture on (live).")] = "any",
    duration: Annotated[float | None, typer.Option("--duration", "-d", parser=validate.seconds(0.1, 86400.0),
                                                   metavar="SECONDS",
                                                   help=f"Stop after this long (live; default "
                                                        f"{DEFAULT_DURATION:g} s unless --count is given).")] = None,
    count: Annotated[int | None, typer.Option("--count", "-N", min=1, metavar="N",
                                              help="Stop after N captured packets (live).")] = None,
    bpf: Annotated[str | None, typer.Option("--filter", metavar="BPF",
                                            help="Kernel filter in tcpdump syntax (default: the DNS ports "
                                                 "over UDP/TCP, and ICMP errors).")] = None,
    port: Annotated[list[int] | None, typer.Option("--port", "-p", min=1, max=65535, metavar="N",
                                                   help="Also treat this port as DNS (repeatable), "
                                                        "e.g. 5353.")] = None,
    write: Annotated[str | None, typer.Option("--write", "-w", metavar="FILE",
                                              help="Also write the captured packets to a pcap file "
                                                   "(Wireshark-readable; valid even if interrupted).")] = None,
    read: Annotated[str | None, typer.Option("--read", "-R", metavar="FILE",
                                             help="Analyze a pcap/pcapng file instead of capturing "
                                                  "(tcpdump, tshark, ksniff...; needs no capability).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", parser=validate.seconds(0.05, 120.0), metavar="SECONDS",
                                           help="Resolver timeout: a query without an answer this long "
                                                "is unanswered (glibc default 5).")] = 5.0,
    details: Annotated[bool, typer.Option("--details",
                                          help="Table output: also each lookup's line as it completes, and "
                                               "every lookup kept in the lookups table.")] = False,
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = 3600.0,
    # the old letters (toolkit.cli.aliases): hidden, for one release
    old_count: Annotated[int | None, typer.Option("-c", min=1, metavar="N", hidden=True)] = None,
    old_filter: Annotated[str | None, typer.Option("-f", metavar="BPF", hidden=True)] = None,
    old_read: Annotated[str | None, typer.Option("-r", metavar="FILE", hidden=True)] = None,
) -> None:
    """Capture DNS (or read a pcap) and pair every query with its answer.

    Shows the verdict and findings first (unanswered queries with the ICMP errors that
    explain them, late answers, errors, the 5-second A/AAAA signature), the latency
    histogram, per-server counts, and the last lookups (search-list candidates grouped, with
    their amplification); --details adds each lookup's line as it completes.

    Examples: podtriage capture --duration 30 -w dns.pcap;  podtriage capture -R dns.pcap -o json
    """
    count = old_spelling("capture", "-c", old_count, count)
    bpf = old_spelling("capture", "-f", old_filter, bpf)
    read = old_spelling("capture", "-r", old_read, read)
    if read and (write or count or duration):
        raise typer.BadParameter("--read analyzes a file: --write/--count/--duration apply to live capture",
                                 param_hint="--read")
    ports = tuple(sorted(set(port or ()) | {53}))

    def build() -> Report:
        """The capture (or the read) and its report, under ``run``'s exception boundary."""
        from toolkit.capture.config import AnalyzerConfig
        from toolkit.capture.report import capture_report
        from toolkit.deadline import Deadline

        dl = Deadline.for_command(deadline)
        config = AnalyzerConfig(timeout=timeout, search=() if read else _search_list())
        sink = _sink(output, live=not read, details=details)
        if read:
            res = _read(read, ports, config, sink, dl)
        else:
            dur = duration if duration is not None else (None if count else DEFAULT_DURATION)
            res = _live(interface, dur, count, bpf, ports, write, config, sink, dl)
        if output is OutputFormat.table and details and res.summary.lookups_total:
            sys.stdout.write("\n")
        return capture_report(res, details=details)

    run(build, output, deadline=deadline)


def _sink(output: OutputFormat, *, live: bool, details: bool) -> Sink | None:
    """What streams while the capture runs: every result as ndjson, each lookup's line in
    the table format with --details (flushed at once when live; without it the verdict
    comes first), nothing otherwise."""
    stream = sys.stdout
    if output is OutputFormat.ndjson:
        import json

        from toolkit.capture.text import event_dict

        def ndjson(obj: Result) -> None:
            stream.write(json.dumps(event_dict(obj), separators=(",", ":")) + "\n")
            if live:
                stream.flush()
        return ndjson
    if output is OutputFormat.table and details:
        from toolkit.capture.records import Lookup
        from toolkit.capture.text import lookup_line
        from toolkit.report.sanitize import for_terminal

        def lines(obj: Result) -> None:
            if type(obj) is Lookup:
                # Names off the wire: no terminal controls reach the screen.
                stream.write(for_terminal(lookup_line(obj)) + "\n")
                if live:
                    stream.flush()
        return lines
    return None


def _read(path: str, ports: tuple[int, ...], config: AnalyzerConfig, sink: Sink | None,
          dl: Deadline) -> CaptureResult:
    from toolkit.capture.session import analyze_file

    def on_progress(packets: int, rate: float) -> None:
        progress(f"{packets} packets ({rate:.0f}/s)")

    return analyze_file(path, ports=ports, config=config, sink=sink,
                        on_progress=on_progress if progress_enabled() else None, deadline=dl)


def _live(interface: str, duration: float | None, count: int | None, bpf: str | None, ports: tuple[int, ...],
          write: str | None, config: AnalyzerConfig, sink: Sink | None, dl: Deadline) -> CaptureResult:
    from toolkit.capture.live import capture_live
    from toolkit.capture.whoasked import WhoAsked

    def on_progress(packets: int, rate: float) -> None:
        progress(f"{packets} packets ({rate:.0f}/s)")

    progress(f"capturing on {interface}" + (f" for {duration:g} s" if duration else "")
             + (f", up to {count} packets" if count else "") + " (Ctrl-C stops)")
    return capture_live(interface=interface, duration=duration, count=count, bpf=bpf, ports=ports,
                        write=write, config=config, sink=sink, on_progress=on_progress,
                        deadline=dl, who=WhoAsked(),
                        on_ready=lambda expr: progress(f"listening on {interface} ({expr})"))


def _search_list() -> tuple[str, ...]:
    """The pod's search list, so candidates group exactly (best effort)."""
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as fh:
            text = fh.read(1 << 16)
    except OSError:
        return ()
    search: tuple[str, ...] = ()
    for line in text.split("\n"):
        if line.startswith(("search ", "search\t", "domain ", "domain\t")):
            words = line.split()[1:]
            search = tuple(words if line.startswith("search") else words[:1])
    return search
