"""Deleting what the plugin created on the way out (node Jobs, a node debugging pod), on
Ctrl-C and SIGTERM too: SIGTERM becomes a KeyboardInterrupt while the work runs (in the
main thread, where handlers can be set), the deletion runs, the interrupt goes on."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from toolkit.kube.output import say


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def deleting(what: str, delete: Callable[[], None]) -> Iterator[None]:
    """Run the body, then ``delete()`` whatever happened; ``what`` names it on an interrupt."""
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        yield
    except KeyboardInterrupt:
        say("interrupted: deleting %s" % what)
        raise
    finally:
        delete()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
