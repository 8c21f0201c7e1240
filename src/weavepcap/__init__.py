"""weavepcap: pcap forensics for Weave Net overlay incidents (public API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "analyze", "Analysis"]

if TYPE_CHECKING:  # pragma: no cover
    from weavepcap.api import Analysis


def analyze(*args: Any, **kwargs: Any) -> Analysis:
    """Analyse captures (paths or `HOST=PATH` strings) and return an Analysis; see weavepcap.api.analyze."""
    from weavepcap.api import analyze as _analyze

    return _analyze(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Analysis":
        from weavepcap.api import Analysis

        return Analysis
    raise AttributeError(name)
