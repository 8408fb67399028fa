"""The errors an export raises for bad input or an empty selection (both leave nothing written).

Kept in their own module so that every stage of the package (selection, orchestration) can raise
them without importing the package itself; ``agentsynth.exports`` re-exports both.
"""

from __future__ import annotations


class ExportError(ValueError):
    """The export was asked for something the store does not hold (bad input; nothing written)."""


class NothingToExport(ExportError):
    """The selection is valid but accepts nothing (nothing written)."""
