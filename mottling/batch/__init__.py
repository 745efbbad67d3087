"""Batch scoring of archives: one row per input file, resumable shards, local or Ray engines."""

from mottling.batch.runner import BatchConfig, BatchSummary, run_batch

__all__ = ["BatchConfig", "BatchSummary", "run_batch"]
