"""cache: answers from its cache when an entry is warm, else passes the query on and caches
the answer (coredns/coredns plugin/cache). A trace cannot know what is cached: it notes that
a warm entry answers first."""

from __future__ import annotations

from toolkit.corefile.document import Directive
from toolkit.corefile.plugins.base import Context, Handler, Query, Step, at, each, passes


def step(d: Directive, query: Query, ctx: Context) -> Step:  # noqa: ARG001 - the Handler signature
    """The query goes on, with a note that a warm entry would answer first."""
    return passes(query, f"cache ({at(d)}) answers first when the entry is warm")


handler: Handler = each(step)
