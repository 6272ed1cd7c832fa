"""The error of a delivery that cannot be loaded at all (every connector raises it)."""

from __future__ import annotations

from pathlib import Path

from servicepulse.errors import UserError


class SourceError(UserError, ValueError):
    """A delivery that cannot be loaded at all. The message names file, row and column."""

    def __init__(self, source: str, path: Path | str, message: str, line: int | None = None,
                 column: str | None = None) -> None:
        where = str(path) + (f", row {line}" if line else "") + (
            f", column {column!r}" if column else "")
        super().__init__(f"source {source}: {where}: {message}")
        self.source, self.path, self.line, self.column = source, path, line, column
