"""Text columns on the hot path: int32 codes into per-capture vocabularies (code 0 is always the empty string)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from weavepcap.schema import TEXT_COLUMNS

# Text column -> the vocabulary its codes index. Every address column shares one, so an address has one
# code wherever it appears (outer, inner, quoted) and comparisons across columns are integer compares.
ADDRESS_COLUMNS: tuple[str, ...] = ("ip_src", "ip_dst", "q_ip_src", "q_ip_dst", "inner_ip_src", "inner_ip_dst")
# `klass` is not here: its codes are class codes (classes.CLASS_CODE), fixed for every capture.
VOCABULARY_OF: dict[str, str] = {name: "address" if name in ADDRESS_COLUMNS else name
                                 for name in TEXT_COLUMNS if name != "klass"}
# Vocabularies whose values are a small fixed set start with them, so their codes are the same in every capture.
FIXED_VALUES: dict[str, tuple[str, ...]] = {
    "ctl_msg": ("handshake", "features", "heartbeat", "gossip", "overlay_ctl", "data", "encrypted"),
    "reasm_status": ("complete", "overlap", "conflict", "timeout", "incomplete", "evicted"),
}


class Vocabulary:
    """Distinct strings in first-seen order; a string's code is its position. Only ever grows."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = [""]
        self.index: dict[str, int] = {"": 0}
        self._array: np.ndarray | None = None
        self.extend(values)

    def __len__(self) -> int:
        return len(self.values)

    def code(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
            self._array = None
        return found

    def extend(self, values: Iterable[str]) -> None:
        for value in values:
            self.code(value)

    def codes(self, values: Iterable[str]) -> np.ndarray:
        """int32 codes of the values (new ones are added)."""
        return np.fromiter((self.code(v) for v in values), dtype=np.int32)

    def array(self) -> np.ndarray:
        """The values as a numpy object array (index it with codes to get text back)."""
        if self._array is None or len(self._array) != len(self.values):
            self._array = np.array(self.values, dtype=object)
        return self._array

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.array()[codes]

    def lookup(self, values: Iterable[str]) -> np.ndarray:
        """int32 codes of values that are known, -1 for the others (nothing is added)."""
        return np.fromiter((self.index.get(v, -1) for v in values), dtype=np.int32)

    def remap_from(self, other: Vocabulary) -> np.ndarray:
        """An int32 array mapping `other`'s codes to this vocabulary's codes (adding what is missing)."""
        return self.codes(other.values)


class TextTables:
    """The vocabularies of one capture's text columns."""

    def __init__(self) -> None:
        self.vocabularies: dict[str, Vocabulary] = {name: Vocabulary(FIXED_VALUES.get(name, ()))
                                                    for name in sorted(set(VOCABULARY_OF.values()))}

    def of(self, column: str) -> Vocabulary:
        return self.vocabularies[VOCABULARY_OF[column]]

    @property
    def addresses(self) -> Vocabulary:
        return self.vocabularies["address"]
