"""Batch analysis of many incidents: discovery, safe archives, resume keys, local pool or Dask, summary."""

from __future__ import annotations

from weavepcap.batch.run import BatchResult, run_batch

__all__ = ["BatchResult", "run_batch"]
