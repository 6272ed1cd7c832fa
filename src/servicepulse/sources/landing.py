"""The landing zone: every delivery kept unchanged before anything reads it.

A delivery (a dropped file, a SQL extract, one API page) is stored under
``<landing>/<source>/<sha256><ext>``: named by its content, so the same bytes are
kept once however often they arrive, and nothing downstream can change them without
the name lying. Each load batch also writes ``<landing>/<source>/batches/<batch>.json``,
its manifest: interval, window, every file with origin, checksum, rows and when it
was received. The same facts go to the warehouse table ``raw.deliveries`` in the
transaction that loads the rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class LandedFile:
    source: str
    origin: str                 # where it came from: file URL, SQL table, API page URL
    path: Path                  # the kept copy
    sha256: str
    size_bytes: int
    format: str                 # csv | xlsx | jsonl | json_page
    received_at: datetime
    encoding: str | None = None
    # Filled by the loader.
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_outside_window: int = 0
    new_columns: list[str] = field(default_factory=list)
    # The first rows outside the interval, named (row number and version).
    outside_sample: list[str] = field(default_factory=list)

    def manifest(self) -> dict:
        entry = asdict(self)
        entry["path"] = str(self.path)
        entry["received_at"] = self.received_at.isoformat()
        return entry


class _HashingWriter:
    def __init__(self, out) -> None:
        self._out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes | str) -> int:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.digest.update(data)
        self.size += len(data)
        return self._out.write(data)


def land_stream(landing_root: Path, source: str, origin: str,
                write: Callable[[_HashingWriter], None], extension: str, fmt: str,
                encoding: str | None = None) -> LandedFile:
    """Store a delivery that ``write`` streams into the file it is given; return where
    it is kept and its checksum. The copy appears under its final name only when whole."""
    folder = landing_root / source
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".landing-", suffix=extension)
    try:
        with os.fdopen(handle, "wb") as out:
            hashing = _HashingWriter(out)
            write(hashing)
        sha256 = hashing.digest.hexdigest()
        final = folder / f"{sha256}{extension}"
        if final.exists():
            os.unlink(temporary)   # the same bytes are already kept
        else:
            os.replace(temporary, final)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return LandedFile(source, origin, final, sha256, hashing.size, fmt, datetime.now(UTC),
                      encoding)


def land_chunks(landing_root: Path, source: str, origin: str, chunks: Iterable[bytes],
                extension: str, fmt: str, encoding: str | None = None) -> LandedFile:
    def write(out: _HashingWriter) -> None:
        for chunk in chunks:
            out.write(chunk)
    return land_stream(landing_root, source, origin, write, extension, fmt, encoding)


def write_batch_manifest(landing_root: Path, source: str, batch_id: str,
                         content: dict) -> Path:
    folder = landing_root / source / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (batch_id.replace(":", "_") + ".json")
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(content, ensure_ascii=False, indent=2, default=str),
                         encoding="utf-8")
    os.replace(temporary, path)
    return path
