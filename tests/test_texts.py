"""Text vocabularies: stable codes, empty string at 0, fixed sets first, remapping between captures."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from weavepcap.defrag import STATUSES
from weavepcap.texts import FIXED_VALUES, TextTables, Vocabulary


def test_empty_string_is_code_zero_and_codes_follow_first_sight() -> None:
    v = Vocabulary()
    assert v.code("") == 0
    assert list(v.codes(["10.0.0.1", "10.0.0.2", "10.0.0.1"])) == [1, 2, 1]
    assert list(v.decode(np.array([2, 0, 1]))) == ["10.0.0.2", "", "10.0.0.1"]
    assert list(v.lookup(["10.0.0.2", "nope"])) == [2, -1]
    assert len(v) == 3


def test_address_columns_share_one_vocabulary_and_fixed_sets_keep_their_codes() -> None:
    tables = TextTables()
    assert tables.of("ip_src") is tables.of("q_ip_dst") is tables.addresses
    assert tables.of("reasm_status").values[1:] == list(STATUSES)
    assert tables.of("ctl_msg").values[1:] == list(FIXED_VALUES["ctl_msg"])


@given(st.lists(st.text(max_size=4)), st.lists(st.text(max_size=4)))
def test_remap_carries_every_value_across(first: list[str], second: list[str]) -> None:
    a, b = Vocabulary(first), Vocabulary(second)
    mapping = a.remap_from(b)
    codes = np.arange(len(b))
    assert list(a.decode(mapping[codes])) == b.values
