"""Type stub of weavepcap._core, the compiled decode core (src/weavepcap/_core.c)."""

from collections.abc import Sequence

import numpy as np

COLUMNS: tuple[str, ...]  # numeric columns decode() fills, in the order it takes them
TEXT_COLUMNS: tuple[str, ...]  # object (str) columns decode() fills, in the order it takes their addresses

def decode(
    data: np.ndarray,
    offsets: np.ndarray,
    caplen: np.ndarray,
    linktype: np.ndarray,
    columns: tuple[np.ndarray, ...],
    texts: tuple[int, ...],
    vxlan_ports: Sequence[int],
    geneve_ports: Sequence[int],
    fastdp_port: int,
    weave_port: int,
    fragments: np.ndarray,
    control: np.ndarray,
) -> tuple[int, int]: ...
