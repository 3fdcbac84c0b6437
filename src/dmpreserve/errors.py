"""Exceptions raised by dmpreserve.

Every error names the file (``path``) and, where it applies, the field or JSON path
(``field``) at fault, so that a failing Snakemake job tells the analyst exactly what to fix.
"""

from __future__ import annotations

import os


class DmpreserveError(Exception):
    """Base class of all dmpreserve errors.

    Args:
        message: What is wrong, in words.
        path: The file the problem was found in, if any.
        field: The column, key or JSON path at fault, if any.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, field: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        # one line, always: a multi-line message (e.g. a validator's list) is joined with " | "
        return " | ".join(line for line in ": ".join([*parts, self.message]).splitlines() if line.strip())


class InvalidConfig(DmpreserveError):
    """The analysis configuration is schema-invalid or inconsistent."""


class InvalidData(DmpreserveError):
    """A data file (reduced data, sidecar, result file) is missing, corrupt or inconsistent."""


class InvalidSpectrum(DmpreserveError):
    """A signal spectrum (or its requested energy grid) is invalid."""


class InvalidWorkspace(DmpreserveError):
    """A pyhf workspace or patchset is schema-invalid or does not match its digests."""
