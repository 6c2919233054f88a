"""`podtriage reach`: the adapter. The work is in toolkit.probe."""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit.cli import validate
from toolkit.cli.root import app
from toolkit.cli.common import DEFAULT_DEADLINE, DeadlineOpt, OutputOpt, progress, run
from toolkit.model import Report
from toolkit.report import OutputFormat


@app.command("reach")
def reach_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", parser=validate.dns_name_or_ip,
                                          help="A name (resolved with the system resolver, as the "
                                               "application would) or an IP address.")],
    port: Annotated[list[int], typer.Option("--port", "-p", min=1, max=65535, metavar="N",
                                            help="TCP port to probe (repeatable). Without it only "
                                                 "ARP/ICMP say whether the host is there.")] = [],  # noqa: B006 - Typer reads it, nothing mutates it
    no_control: Annotated[bool, typer.Option("--no-control",
                                             help="Skip the control probe of the gateway / a "
                                                  "neighbour.")] = False,
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """Is the address there, is the port open, and if not, who says so?

    For every address of TARGET: the route the kernel picks, ARP when on-link, ICMP echo,
    a TCP SYN to each --port, and a control probe of the gateway, so that "the path works,
    nobody holds the address" (ICMP host-unreachable from the last router, ~3 s after the
    SYN) differs from "the path is broken". Needs NET_RAW for raw probes (kubectl debug
    --profile=netadmin); without it falls back to connect() and says what was lost.

    Example: podtriage reach api.corp.example --port 443
    """

    def build() -> Report:
        from toolkit.deadline import Deadline
        from toolkit.probe import reach, reach_report

        dl = Deadline.for_command(deadline)
        return reach_report(reach(target, tuple(port), dl, control=not no_control, on_progress=progress))

    run(build, output, deadline=deadline)
