"""The compiled decode core: every frame of a chunk in one C pass, the same columns as the per-packet path."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

from weavepcap.io.records import FrameChunk
from weavepcap.settings import Settings

Cols = dict[str, np.ndarray]


def _load() -> ModuleType | None:
    try:
        from weavepcap import _core
    except ImportError as exc:  # not built (no compiler at install): the numpy path decodes instead
        warnings.warn(
            f"weavepcap: the compiled decode core is not available ({exc}); decoding with the slower numpy path",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return _core


_CORE: ModuleType | None = None
_LOADED = False


def core_module() -> ModuleType | None:
    """weavepcap._core, or None (warned once per process) when the extension was not built."""
    global _CORE, _LOADED
    if not _LOADED:
        _CORE, _LOADED = _load(), True
    return _CORE


def available() -> bool:
    """True when the compiled core can be used."""
    return core_module() is not None


class CoreDecoder:
    """Decodes a chunk with weavepcap._core into preallocated schema columns."""

    def __init__(self, settings: Settings) -> None:
        self.weave_port = settings.weave_port
        self.fastdp_port = settings.fastdp_port
        self.vxlan_ports = tuple(sorted(set(settings.vxlan_ports) | {settings.fastdp_port}))
        self.geneve_ports = tuple(sorted(settings.geneve_ports))
        self.fragments = np.zeros((0, 3), dtype=np.int64)
        self.control = np.zeros((0, 5), dtype=np.int64)

    def decode(self, chunk: FrameChunk, cols: Cols) -> None:
        """Fill cols (schema dtypes, missing values already in place) for every frame of the chunk."""
        core = core_module()
        if core is None:
            raise RuntimeError("weavepcap._core is not available")
        n = len(chunk)
        fragments = np.empty((n, 3), dtype=np.int64)
        control = np.empty((n, 5), dtype=np.int64)
        texts = [cols[name] for name in core.TEXT_COLUMNS]
        for name, values in zip(core.TEXT_COLUMNS, texts, strict=True):
            # the C side swaps str references in these arrays in place: they must be plain object arrays
            if values.dtype != object or not values.flags.c_contiguous or values.shape != (n,):
                raise ValueError(f"column {name}: expected a contiguous object array of {n} str")
        n_fragments, n_control = core.decode(
            np.ascontiguousarray(chunk.data, dtype=np.uint8),
            np.ascontiguousarray(chunk.offsets, dtype=np.int64),
            np.ascontiguousarray(chunk.caplen, dtype=np.int32),
            np.ascontiguousarray(chunk.linktype, dtype=np.int16),
            tuple(cols[name] for name in core.COLUMNS),
            tuple(values.ctypes.data for values in texts),
            self.vxlan_ports,
            self.geneve_ports,
            self.fastdp_port,
            self.weave_port,
            fragments,
            control,
        )
        self.fragments = fragments[:n_fragments]
        self.control = control[:n_control]

    def fragment_spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows of the fragments, and where each one's IP payload starts and ends in the chunk buffer."""
        return self.fragments[:, 0], self.fragments[:, 1], self.fragments[:, 2]

    def control_segments(self) -> tuple[np.ndarray, ...]:
        """Rows of TCP control segments: (rows, seq, payload start, end, payload length)."""
        return tuple(self.control[:, k] for k in range(5))
