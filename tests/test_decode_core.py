"""The compiled decode core: built by the install, the default path, and a warned fallback when missing."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from support.build import ethernet, fastdp_heartbeat_frame, ipv4, ipv6, udp, vxlan
from support.chunks import make_chunk

from tests.test_decode_equivalence import assert_same_columns
from weavepcap.decode import DecodeState, core, decode_chunk
from weavepcap.io.records import chunk_from_frames
from weavepcap.schema import COLUMN_BY_NAME
from weavepcap.settings import Settings

CI = os.environ.get("WEAVEPCAP_CI") == "1"
needs_core = pytest.mark.skipif(
    not core.available() and not CI, reason="weavepcap._core not built (pip install -e . compiles it)"
)


@needs_core
def test_core_is_the_default_and_decodes_every_frame() -> None:
    chunk = make_chunk(3000, seed=5)
    decoded = decode_chunk(chunk, Settings(), DecodeState())
    assert decoded.slow_frames == 0
    assert_same_columns(chunk)


@needs_core
def test_core_columns_the_core_does_not_know_stay_missing() -> None:
    from weavepcap import _core

    chunk = chunk_from_frames([ethernet(ipv4(udp(vxlan(fastdp_heartbeat_frame(7, 1376), 0x5005), dport=6784)))])
    cols = decode_chunk(chunk, Settings(), DecodeState(), engine="core").columns
    assert cols["weave_conn_uid"][0] == 7 and cols["weave_hb_len"][0] == 1376 + 14
    for name in ("klass", "reasm_status", "frag_train", "overlay_mtu", "stop_layer"):
        assert name not in _core.COLUMNS and cols[name][0] == COLUMN_BY_NAME[name].missing


@needs_core
def test_core_rejects_columns_of_the_wrong_type() -> None:
    from weavepcap.decode.core import CoreDecoder
    from weavepcap.schema import empty_columns

    chunk = chunk_from_frames([ethernet(ipv6(udp(b"x")), ethertype=0x86DD)])
    cols = empty_columns(1)
    cols["ip_len"] = np.full(1, -1, dtype=np.int64)  # schema says int32
    with pytest.raises(ValueError, match="ip_len"):
        CoreDecoder(Settings()).decode(chunk, cols)
    cols = empty_columns(1)
    cols["ip_src"] = np.array([""], dtype="U10")
    with pytest.raises(ValueError, match="ip_src"):
        CoreDecoder(Settings()).decode(chunk, cols)


@needs_core
def test_core_survives_frames_reaching_past_the_buffer() -> None:
    chunk = chunk_from_frames([ethernet(ipv4(udp(b"y" * 40)))] * 3)
    chunk.caplen[2] = 10_000  # a bad record: the decoder reads what the buffer holds, never past it
    chunk.offsets[1] = chunk.data.size + 50
    decoded = decode_chunk(chunk, Settings(), DecodeState(), engine="core")
    assert decoded.columns["ip_src"][0] == "10.0.0.1" and decoded.columns["l3_off"][1] == -1


def test_missing_core_falls_back_to_numpy_with_one_warning() -> None:
    # a fresh interpreter where importing weavepcap._core fails, as on a machine without a compiler
    code = """
import sys, warnings
sys.modules["weavepcap._core"] = None  # makes `from weavepcap import _core` raise ImportError
sys.path.insert(0, "tests")
from support.build import ethernet, ipv4, udp
from weavepcap.decode import DecodeState, decode_chunk, core
from weavepcap.io.records import chunk_from_frames
from weavepcap.settings import Settings
# three VLAN tags: the numpy path leaves this frame to the per-packet path, the core would not
chunk = chunk_from_frames([ethernet(ipv4(udp(b"x")), tags=((0x88A8, 1), (0x8100, 2), (0x8100, 3)))])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    a = decode_chunk(chunk, Settings(), DecodeState())
    b = decode_chunk(chunk, Settings(), DecodeState())
assert not core.available()
print(len([w for w in caught if "compiled decode core" in str(w.message)]), a.slow_frames == b.slow_frames == 1)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(root, "src"), root])}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["1", "True"], out.stderr


def test_unknown_engine_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="engine"):
            decode_chunk(chunk_from_frames([]), Settings(), DecodeState(), engine="fast")
