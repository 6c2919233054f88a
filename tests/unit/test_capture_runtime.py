"""What a capture run leaves behind: nothing for the cyclic GC.

A reference cycle through the analyzer (analyzer -> chain tracker -> a bound method of the
analyzer) kept its whole state alive after `capture --read` returned, 650k objects for a
200k-packet file; the next full GC pass then spent ~0.35 s freeing them inside the report's
rendering, after a --deadline cut: `capture --read --deadline 3` overshot by +0.34 s
(scripts/benchmarks/stop_latency.py). Reference counting alone must free a finished run."""

from __future__ import annotations

import gc
import weakref

from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.decode import Decoder

T0 = 1_700_000_000_000_000_000


def test_a_finished_analysis_is_freed_without_the_cyclic_gc():
    was = gc.isenabled()
    gc.disable()
    try:
        cfg = AnalyzerConfig(max_pending=64)
        a = Analyzer(cfg)
        d = Decoder()
        for i in range(2000):  # lookups, pending queries, twins, evictions: every table used
            t = T0 + i * 1_000_000
            for qtype in (1, 28):
                for ev in d.decode(t, 101, S.udp("10.0.0.1", "10.0.0.53", 30000 + i, 53,
                                                 S.dns_query(i & 0xFFFF, f"h{i}.example", qtype))):
                    a.feed(ev)
            if i % 3 == 0:
                for ev in d.decode(t + 500_000, 101, S.udp("10.0.0.53", "10.0.0.1", 53, 30000 + i,
                                                           S.dns_response(i & 0xFFFF, f"h{i}.example", 1,
                                                                          addresses=("10.1.1.1",)))):
                    a.feed(ev)
        a.finish(cut_short=True)
        summary = a.summary()
        # the analyzer's config, held by it and its parts: freed only when all of them are
        # (a weak reference to the config, not to the analyzer: a mypyc-compiled class,
        # scripts/build-mypyc, takes none)
        ref = weakref.ref(cfg)
        del a, cfg
        assert ref() is None, [type(r).__name__ for r in gc.get_referrers(ref())]
        assert summary.queries == 4000
    finally:
        if was:
            gc.enable()
