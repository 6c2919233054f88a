"""One capture run read from a file: ``analyze_file`` reads a pcap/pcapng file through the
same decoder and analyzer that the live capture uses (``toolkit.capture.live``), and
returns one frozen ``CaptureResult``. Results stream to ``sink`` as they happen.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from toolkit import signals
from toolkit.errors import StoppedBySignal
from toolkit.capture.analysis import Analyzer, Sink
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.decode import MAX_IPV6_EXT, MAX_TUNNEL_DEPTH, Decoder, Malformed
from toolkit.capture.linklayer import LINKTYPE_NFLOG
from toolkit.capture.pcapio import LINKTYPES, PcapReader
from toolkit.capture.records import CaptureMode, CaptureResult, StopReason
from toolkit.deadline import Deadline

PROGRESS_EVERY_S = 1.0
# Stop reading this long before --deadline: closing 65k pending queries and thousands of
# lookups, building the report and rendering it take 0.1-0.3 s on a loaded machine.
WIND_DOWN_S = 0.25
# ARP, LLDP, 802.1X, loop detection, spanning tree (LLC, length field): never carry DNS
_HARMLESS_ETHERTYPES = frozenset((0x0806, 0x88CC, 0x888E, 0x9000, 0x8035))
_ETHERTYPE_NAMES = {0x8863: "PPPoE discovery", 0x8864: "PPPoE session, not IP", 0x8847: "MPLS, not IP",
                    0x88E5: "MACsec", 0x8915: "RoCE", 0x22F0: "AVTP"}
Progress = Callable[[int, float], None]  # (packets so far, packets per second)


def analyze_file(path: str, *, ports: tuple[int, ...] = (53,), config: AnalyzerConfig | None = None,
                 sink: Sink | None = None, on_progress: Progress | None = None,
                 deadline: Deadline | None = None) -> CaptureResult:
    """Decode and analyze a capture file; raises InputFileError when it is not one."""
    t0 = time.monotonic()
    # The analysis allocates short-lived objects without reference cycles: the cyclic GC
    # would only re-scan live state (about 20 % of the run time on 200k packets). Raise its
    # threshold for the loop, restore it after.
    old_threshold = gc.get_threshold()
    gc.set_threshold(max(old_threshold[0], 200_000), old_threshold[1], old_threshold[2])
    try:
        return _analyze(path, ports, Analyzer(config, sink=sink), on_progress, deadline, t0)
    finally:
        gc.set_threshold(*old_threshold)


def _analyze(path: str, ports: tuple[int, ...], analyzer: Analyzer, on_progress: Progress | None,
             deadline: Deadline | None, t0: float) -> CaptureResult:
    decoder = Decoder(ports)
    stopped = StopReason.END
    last_ts = None
    next_progress = t0 + PROGRESS_EVERY_S
    with PcapReader(path) as reader:
        decode = decoder.decode
        feed = analyzer.feed
        n = 0
        try:
            for ts_ns, lt, data in reader:
                for ev in decode(ts_ns, lt, data):
                    feed(ev)
                n += 1  # noqa: SIM113 - the loop is the hot path: a counter is cheaper than enumerate's tuples
                if not n & 0x3FF:  # every 1024 records (~10-20 ms of decoding): deadline, signals
                    now = time.monotonic()
                    if signals.stopped() or (deadline is not None and deadline.remaining() <= WIND_DOWN_S):
                        stopped = StopReason.SIGNAL if signals.stopped() else StopReason.DEADLINE
                        last_ts = ts_ns / 1e9
                        break
                    if on_progress is not None and now >= next_progress:
                        next_progress = now + PROGRESS_EVERY_S
                        on_progress(n, n / max(now - t0, 1e-9))
                last_ts = ts_ns / 1e9
        except StoppedBySignal:
            # a pipe that stays quiet after SIGINT/SIGTERM (toolkit.inputs): what was read
            # is the partial result, as when the loop above sees the stop itself
            stopped = StopReason.SIGNAL
        for reason in reader.malformed_reasons:
            analyzer.add_malformed(Malformed(ts=last_ts or 0.0, reason=f"capture file: {reason}"))
        analyzer.add_malformed_count(reader.malformed - len(reader.malformed_reasons))
        analyzer.finish(last_ts, cut_short=stopped != StopReason.END)
        linktypes = tuple(LINKTYPES.get(lt, f"unsupported ({lt})") for lt in sorted(reader.linktypes))
        return CaptureResult(mode=CaptureMode.READ, source=path, packets=reader.packets, summary=analyzer.summary(),
                             decoder=decoder.counters(), linktypes=linktypes, file_format=reader.format,
                             stopped_by=stopped, elapsed_s=time.monotonic() - t0,
                             notes=tuple(_notes(decoder, stopped, reader.packets, reader.linktypes)),
                             both_directions=decoder.both_directions())


_TOO_DEEP = {"ipv6-extension-headers": f"behind more than {MAX_IPV6_EXT} IPv6 extension headers",
             "tunnels": f"inside more than {MAX_TUNNEL_DEPTH} nested tunnels"}


def _notes(decoder: Decoder, stopped: StopReason, packets: int, linktypes: set[int] | None = None) -> list[str]:
    """What the reader should know about what was not analysed."""
    notes = []
    if linktypes and LINKTYPE_NFLOG in linktypes:
        # libpcap stamps an NFLOG frame when it reads it from the netlink socket, not with the
        # kernel's NFULA_TIMESTAMP (absent on the OUTPUT hook); seen in the lab: without
        # --nflog-threshold 1, seven frames sent over 30 ms were stamped within 12 us.
        notes.append("NFLOG frames are timed when the capturing program read them, not on the wire "
                     "(the kernel batches them unless the rule has --nflog-threshold 1): latencies "
                     "are approximate")
    if decoder.unsupported_linktype:
        notes.append(f"{decoder.unsupported_linktype} frames of an unsupported link type were skipped "
                     f"(supported: Ethernet, Linux cooked SLL/SLL2, raw IP, BSD loopback, NFLOG, PKTAP, "
                     f"PPP, Cisco HDLC)")
    for origin, (q, r) in sorted(decoder.origins.items(), key=lambda kv: -sum(kv[1]))[:8]:
        notes.append(f"seen by {origin}: {q} queries, {r} responses")
    other = {et: n for et, n in decoder.other_ethertypes.items() if et >= 0x0600 and et not in _HARMLESS_ETHERTYPES}
    if other:
        kinds = ", ".join(f"0x{et:04x}{' (' + _ETHERTYPE_NAMES[et] + ')' if et in _ETHERTYPE_NAMES else ''} "
                          f"x{n}" for et, n in sorted(other.items(), key=lambda kv: -kv[1])[:6])
        notes.append(f"{sum(other.values())} frames carried no IP podtriage decodes and were skipped: "
                     f"ethertype {kinds}")
    if decoder.too_deep:
        notes.append(f"{sum(decoder.too_deep.values())} frames were not analysed: "
                     + ", ".join(f"{n} {_TOO_DEEP[k]}" for k, n in sorted(decoder.too_deep.items()))
                     + " (DNS inside them is not counted)")
    if stopped != StopReason.END:
        why = "--deadline reached" if stopped == StopReason.DEADLINE else f"interrupted by {signals.describe()}"
        notes.append(f"{why} after {packets} packets: the analysis covers only the start of "
                     f"the file (read cut short)")
    return notes
