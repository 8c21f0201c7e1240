"""Shared test fixtures: where samples and the shared real captures are, and skip-or-fail for tools CI has."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
REAL_CAPTURES = ROOT.parent / "shared" / "real-captures"
IN_CI = bool(os.environ.get("WEAVEPCAP_CI") or os.environ.get("CI"))


def need(condition: bool, reason: str) -> None:
    """Skip when a prerequisite is missing on a developer machine; fail in CI, which must have it."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def need_tool(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"{name} is not installed")
    return str(path)


def need_root_netns() -> None:
    need(hasattr(os, "geteuid") and os.geteuid() == 0, "needs root for network namespaces")
    need(shutil.which("ip") is not None, "needs iproute2 (ip netns)")


def real_captures() -> list[Path]:
    """Every capture in ../shared/real-captures (empty list where the folder is absent)."""
    if not REAL_CAPTURES.is_dir():
        return []
    return sorted(p for p in REAL_CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.fixture
def real_captures_dir() -> Path:
    need(REAL_CAPTURES.is_dir(), "../shared/real-captures is not beside the checkout")
    return REAL_CAPTURES


@functools.cache
def benchmark_script(name: str) -> ModuleType:
    """benchmarks/NAME.py loaded as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module = sys.modules.setdefault(name, module)  # its dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def benchmark_generator() -> ModuleType:
    """benchmarks/make_capture.py: the benchmark's Weave frame builders."""
    return benchmark_script("make_capture")
