"""A server block's plugin chain: its plugins in execution order (plugin.cfg, never the
order they are written in), each asked in turn what it does with the query until one
answers, fails or forwards (core/dnsserver: the chain of plugin.Handler)."""

from __future__ import annotations

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.base import CURRENT, Action, Context, Query, Semantics, Step
from toolkit.corefile.plugins.registry import HANDLERS

# Plugins the build does not know run after all the others (they do nothing to a query here).
_UNORDERED = 10_000

NO_ANSWER = "no plugin answers: CoreDNS returns SERVFAIL"


def chain(block: ServerBlock, semantics: Semantics = CURRENT
          ) -> list[tuple[str, tuple[Directive, ...]]]:
    """BLOCK's plugins in execution order, each with its directives in line order."""
    def key(d: Directive) -> tuple[int, int]:
        i = semantics.order(d.name)
        return (_UNORDERED if i is None else i, d.line)

    groups: dict[str, list[Directive]] = {}
    for d in sorted(block.directives, key=key):
        groups.setdefault(d.name, []).append(d)
    return [(name, tuple(ds)) for name, ds in groups.items()]


def walk_block(block: ServerBlock, query: Query, semantics: Semantics = CURRENT) -> Step:
    """What BLOCK does with QUERY: the step of the plugin that decides (with the notes and
    conditional answerers of the plugins before it), or DEAD_END when none does."""
    ctx = Context(block, semantics)
    name = query.name
    notes: list[str] = []
    conditional: list[str] = []
    for plugin, directives in chain(block, semantics):
        handler = HANDLERS.get(plugin)
        if handler is None:
            continue
        step = handler(directives, Query(name, query.qtype), ctx)
        name = step.name
        notes.extend(step.notes)
        conditional.extend(step.conditional)
        if step.action.final:
            return Step(action=step.action, name=name, directive=step.directive,
                        outcome=step.outcome, notes=tuple(notes), conditional=tuple(conditional))
    return Step(action=Action.DEAD_END, name=name, outcome=NO_ANSWER, notes=tuple(notes),
                conditional=tuple(conditional))
