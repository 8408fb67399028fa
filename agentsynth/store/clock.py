"""Timestamps in the store: naive UTC (DuckDB ``TIMESTAMP``), so reading them needs no tz library."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
