"""The shared StrEnums: one definition each, and a misspelled word fails at once."""

from __future__ import annotations

import pytest

from toolkit.dns.query import QueryError
from toolkit.dns.walk import PathOutcome, path_outcome
from toolkit.probe.model import AddressState, ProbeKind, ProbeOutcome, ProbeResult, derive_state
from toolkit.sockerr import NetError


def test_every_socket_error_is_a_query_error():
    assert {e.value for e in NetError} <= {e.value for e in QueryError}


def test_probe_outcome_and_address_state_are_distinct_words():
    # "silence" is what one probe met; "silent" is what an address is.
    assert ProbeOutcome.SILENCE == "silence" and AddressState.SILENT == "silent"
    assert "silent" not in {o.value for o in ProbeOutcome}
    assert "silence" not in {s.value for s in AddressState}


@pytest.mark.parametrize("make", [
    lambda: ProbeResult(
        address="10.0.0.1", kind=ProbeKind("tcp-syn"), port=80, result=ProbeOutcome("silent")),
    lambda: ProbeResult(
        address="10.0.0.1", kind=ProbeKind("tcp-sin"), port=80, result=ProbeOutcome("silence")),
    lambda: QueryError("timed-out"),
    lambda: path_outcome("anwser"),
])
def test_a_misspelled_word_fails_loudly(make):
    with pytest.raises(ValueError):
        make()


def test_recorded_words_become_members():
    p = ProbeResult(
        address="10.0.0.1", kind=ProbeKind("tcp-syn"), port=80, result=ProbeOutcome("closed"))
    assert p.kind is ProbeKind.TCP_SYN and p.result is ProbeOutcome.CLOSED
    assert derive_state(None, (p,)) is AddressState.PORT_CLOSED
    # Recorded words (fixtures, documents) become members where they are read, never in a
    # constructor (issue 20).
    assert path_outcome("timeout") is QueryError.TIMEOUT
    assert path_outcome("nxdomain") is PathOutcome.NXDOMAIN
    assert PathOutcome.of_rcode("BADSIG") is PathOutcome.OTHER_RCODE
