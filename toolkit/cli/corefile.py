"""`podtriage corefile lint|trace|check`: adapters over toolkit.corefile.

Imports typer only at module level; the library is imported inside each command.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import validate
from toolkit.cli.root import app
from toolkit.cli.common import DEFAULT_DEADLINE, DeadlineOpt, OutputOpt, run
from toolkit.report import OutputFormat

if TYPE_CHECKING:
    from toolkit.corefile.document import Corefile
    from toolkit.corefile.plugins.base import Semantics
    from toolkit.corefile.roles import Assembly
    from toolkit.model import Report

corefile_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Read CoreDNS / NodeLocal DNSCache Corefiles: lint them, trace which block and "
         "upstream answer a name.",
)

# Every corefile subcommand takes its Corefiles the same way: FILE arguments, -c/--corefile
# FILE options, or both (FILE arguments first, then the -c ones, in the order given).
FilesArg = Annotated[
    list[str],
    typer.Argument(metavar="[FILE]...", show_default=False,
                   help="Corefiles or ConfigMaps (kubectl get cm -o yaml|json; several documents "
                        "or a List), '-' for stdin. Also as -c FILE."),
]
CorefileOpt = Annotated[
    list[str],
    typer.Option("--corefile", "-c", metavar="FILE", show_default=False,
                 help="A Corefile or ConfigMap, as a FILE argument (repeatable)."),
]


def _files(files: list[str], corefile: list[str]) -> list[str]:
    """The Corefiles named as FILE arguments and as -c FILE (at least one: exit 2 otherwise)."""
    named = [*files, *corefile]
    if not named:
        raise typer.BadParameter("give the Corefiles as FILE arguments or -c FILE ('-' for stdin)",
                                 param_hint="FILE")
    return named


def _env(pairs: list[str]) -> dict[str, str] | None:
    """--env NAME=VALUE pairs as a mapping (None when none given)."""
    if not pairs:
        return None
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise typer.BadParameter(f"expected NAME=VALUE, got {p!r}", param_hint="--env")
        out[k] = v
    return out


EnvOpt = Annotated[list[str], typer.Option("--env", metavar="NAME=VALUE",
                                           help="Value for a {$NAME} placeholder (repeatable).")]
def _version(text: str) -> str:
    """--coredns-version: a version such as 1.12.1 or v1.14 (exit 2 otherwise)."""
    from toolkit.corefile.plugins.versions import parse_version

    if parse_version(text) is None:
        raise typer.BadParameter(f"{text[:40]!r} is not a CoreDNS version (e.g. 1.12.1)")
    return text


VersionOpt = Annotated[str | None, typer.Option(
    "--coredns-version", metavar="VERSION", parser=_version,
    help="The CoreDNS that runs the Corefiles (its plugin order, plugins and behaviour). "
         "Default: the version of a coredns image in the input (a Deployment given with the "
         "ConfigMaps), else the newest pinned (1.14.7). Node caches are read as node-cache.")]
RootOpt = Annotated[str | None, typer.Option(
    "--root", metavar="DIR",
    help="Read the hosts and zone files the Corefiles name from DIR (a copy of the CoreDNS "
         "pod's files: /etc/hosts is DIR/etc/hosts, a relative path DIR/PATH).")]

# List options default to [] (Typer's way to say "none given"); Typer never mutates them.
RoleOpt = Annotated[list[str], typer.Option(
    "--role", metavar="SELECTOR=ROLE",
    help="Say what a Corefile is instead of letting podtriage work it out (repeatable). "
         "SELECTOR: a file, a ConfigMap ([ns/]name) or name:key (e.g. nodelocaldns:Corefile-second); "
         "ROLE: node-cache, node-cache-secondary, cluster-dns, custom-imports, server.")]


def _semantics(version: str | None, images: list[str]) -> tuple[Semantics, Semantics]:
    """(the CoreDNS semantics, the node cache's) for --coredns-version and the input's images."""
    from toolkit.corefile.plugins.base import Semantics
    from toolkit.corefile.plugins.versions import choose

    core, cache = choose(version, images)  # the version was checked by _version
    return Semantics(core), Semantics(cache)


def _assemble(corefiles: Sequence[Corefile], roles: list[str], env: dict[str, str] | None,
              service_ip: str | None = None) -> Assembly:
    """The Corefiles as CoreDNS runs them, with the role of each (toolkit.corefile.roles)."""
    from toolkit.corefile.roles import assemble, parse_role_overrides

    return assemble(corefiles, overrides=parse_role_overrides(roles), env=env,
                    service_ip=service_ip)


@corefile_app.command("lint")
def lint_cmd(
    files: FilesArg = [],  # noqa: B006 - Typer's default, never mutated
    corefile: CorefileOpt = [],  # noqa: B006 - Typer's default, never mutated
    env: EnvOpt = [],  # noqa: B006 - Typer's default, never mutated
    role: RoleOpt = [],  # noqa: B006 - Typer's default, never mutated
    coredns_version: VersionOpt = None,
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """Find mistakes in Corefiles, with line numbers: duplicate plugins, missing cache/loop/
    errors, forward to /etc/resolv.conf, stub-forward blocks that shadow the default upstream,
    unknown plugins, duplicate server blocks, file order that is not execution order.

    The Corefiles are read as CoreDNS runs them: the keys of a coredns-custom ConfigMap are
    spliced in where `import custom/*.server|*.override` asks for them, and each file's role
    (node cache, cluster DNS, custom imports) is shown with the evidence it was taken from.

    Exit 0: CoreDNS loads it (warnings and info are advice); 1: a critical finding (CoreDNS
    refuses to load it, or it fails names it must answer: verdict dns-error); 3: a file is
    missing or cannot be parsed (the message names the line CoreDNS would name).

    Example: kubectl get cm -n kube-system coredns -o yaml | podtriage corefile lint -
    """
    files = _files(files, corefile)
    env_map = _env(env)

    def build() -> Report:
        import os

        from toolkit.corefile.document import CorefileError
        from toolkit.corefile.lint import lint, lint_report
        from toolkit.corefile.loadcheck import syntax_refusal
        from toolkit.corefile.source import load_all
        from toolkit.deadline import Deadline

        subject = " ".join(os.path.basename(f) or f for f in files)
        with Deadline.for_command(deadline).enforce("linting the Corefiles"):
            images: list[str] = []
            try:
                cfs = load_all(files, env=env_map, images=images)
            except CorefileError as exc:
                raise syntax_refusal(exc, _semantics(coredns_version, images)[0].build) from None
            core, cache = _semantics(coredns_version, images)
            return lint_report(lint(cfs, assembly=_assemble(cfs, role, env_map), semantics=core,
                                    node_cache=cache), subject=subject)

    run(build, output, deadline=deadline)


@corefile_app.command("trace")
def trace_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", parser=validate.dns_name,
                                             help="The fully qualified name to follow.")],
    files: FilesArg = [],  # noqa: B006 - Typer's default, never mutated
    corefile: Annotated[list[str], typer.Option("--corefile", "-c", metavar="FILE", show_default=False,
                                                help="A Corefile or ConfigMap, as a FILE argument "
                                                     "(repeatable): give NodeLocal's and CoreDNS's "
                                                     "to follow the chain.")] = [],  # noqa: B006 - Typer's default, never mutated
    service_ip: Annotated[str | None, typer.Option("--service-ip", metavar="IP", parser=validate.ip_address,
                                                   help="The address the CoreDNS Corefile listens "
                                                        "on (its Service ClusterIP, e.g. "
                                                        "10.233.0.3).")] = None,
    nameserver: Annotated[str | None, typer.Option("--nameserver", metavar="IP", parser=validate.ip_address,
                                                   help="The address the client asks first (the "
                                                        "pod's resolv.conf nameserver); selects "
                                                        "blocks by bind.")] = None,
    qtype: Annotated[str, typer.Option("--type", "-t", metavar="TYPE", parser=validate.rdtype)] = "A",
    port: Annotated[int | None, typer.Option(
        "--port", min=1, max=65535,
        help="The port the client asks (default 53, the Service port, mapped to a Corefile's "
             "only listen port such as OpenShift's 5353).")] = None,
    env: EnvOpt = [],  # noqa: B006 - Typer's default, never mutated
    role: RoleOpt = [],  # noqa: B006 - Typer's default, never mutated
    coredns_version: VersionOpt = None,
    root: RootOpt = None,
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """Say which server block and plugin answer NAME and where the query goes next, following
    NodeLocal -> CoreDNS -> the final upstream when both Corefiles are given.

    Exit 0: the name takes the default route; 1: it ends in a stub forward or a dead end.

    Example: podtriage corefile trace api.corp.example nodelocaldns.yaml coredns.yaml
    (or -c nodelocaldns.yaml -c coredns.yaml)
    """
    files = _files(files, corefile)
    env_map = _env(env)

    def build() -> Report:
        from toolkit.corefile.lint import duplicate_blocks, with_refusals
        from toolkit.corefile.source import load_all, root_reader
        from toolkit.corefile.trace import trace_name
        from toolkit.corefile.trace_report import trace_report
        from toolkit.deadline import Deadline

        with Deadline.for_command(deadline).enforce("tracing the Corefiles"):
            images: list[str] = []
            cfs = load_all(files, env=env_map, images=images)
            core, cache = _semantics(coredns_version, images)
            asm = _assemble(cfs, role, env_map, service_ip)
            report = trace_report(trace_name(name, cfs, qtype=qtype, port=port, service_ip=service_ip,
                                             nameserver=nameserver, assembly=asm, semantics=core,
                                             node_cache=cache, files=root_reader(root)))
            return with_refusals(report, duplicate_blocks(asm, core))

    run(build, output, deadline=deadline)


@corefile_app.command("check")
def check_cmd(
    files: FilesArg = [],  # noqa: B006 - Typer's default, never mutated
    corefile: CorefileOpt = [],  # noqa: B006 - Typer's default, never mutated
    name: Annotated[list[str], typer.Option("--name", "-n", metavar="NAME", parser=validate.dns_name,
                                            help="Also ask every target (and the default upstream) "
                                                 "for this name's A record, to compare answers. "
                                                 "Repeatable.")] = [],  # noqa: B006 - Typer's default, never mutated
    timeout: Annotated[float, typer.Option("--timeout", parser=validate.seconds(0.05, 30.0), metavar="SECONDS",
                                           help="Per-query timeout (bounded by --deadline).")] = 2.0,
    role: RoleOpt = [],  # noqa: B006 - Typer's default, never mutated
    output: OutputOpt = OutputFormat.table,
    deadline: DeadlineOpt = DEFAULT_DEADLINE,
) -> None:
    """Probe every forward target over UDP and TCP: unreachable, refusing, lame, slow, or
    answering differently from the config's default upstream (a stub block whose target
    differs is the classic forgotten-forward incident).

    Example: podtriage corefile check coredns.yaml --name api.corp.example
    """
    files = _files(files, corefile)

    def build() -> Report:
        from toolkit.corefile.check import check_corefiles, check_report
        from toolkit.corefile.lint import duplicate_blocks, with_refusals
        from toolkit.corefile.source import load_all
        from toolkit.deadline import Deadline

        dl = Deadline.for_command(deadline)
        with dl.enforce("reading the Corefiles"):
            asm = _assemble(load_all(files), role, None)
            refusals = duplicate_blocks(asm)
        checks, notes = check_corefiles(asm.corefiles, names=name, deadline=dl, timeout=timeout,
                                        assembly=asm)
        return with_refusals(check_report(checks, notes, subject=" ".join(files), assembly=asm), refusals)

    run(build, output, deadline=deadline)



app.add_typer(corefile_app, name="corefile",
              help="Read CoreDNS / NodeLocal Corefiles: lint, trace a name, check upstreams.")
