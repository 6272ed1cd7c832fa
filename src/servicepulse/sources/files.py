"""File drops: a local folder or any fsspec URL, globs allowed.

Every matching file is landed unchanged (see landing). In ``snapshot`` mode the files
are full exports and every run reads them; in ``deliveries`` mode each file is a
delivery of changes, taken once: a file whose bytes were already taken by another
batch is recognised and skipped, a corrected file under an old name is new bytes and
so a new delivery.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from servicepulse.errors import RetryableError
from servicepulse.settings import FileConnector, Settings
from servicepulse.sources.landing import LandedFile, land_chunks

FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".jsonl": "jsonl",
           ".ndjson": "jsonl"}


class NoDeliveryFound(RetryableError, FileNotFoundError):
    """No file for the interval yet: a later try may find the drop."""


def resolve_location(settings: Settings, connector: FileConnector) -> str:
    if "://" in connector.location:
        return connector.location
    path = Path(connector.location)
    return str(path if path.is_absolute() else settings.sources_dir / path)


def file_format(connector: FileConnector, name: str) -> str:
    if connector.format:
        return connector.format
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{name}: cannot tell the format from the extension {suffix!r}; "
                         "set the connector's format (csv, xlsx or jsonl)")
    return FORMATS[suffix]


def land_files(settings: Settings, source: str, connector: FileConnector) -> list[LandedFile]:
    """Land every file the location matches, in name order."""
    import fsspec

    location = resolve_location(settings, connector)
    try:
        fs, _, paths = fsspec.get_fs_token_paths(location)
        paths = sorted(p for p in paths if fs.exists(p) and not fs.isdir(p))
    except FileNotFoundError:
        paths = []
    if not paths:
        raise NoDeliveryFound(location)
    landed = []
    for path in paths:
        fmt = file_format(connector, path)
        origin = fs.unstrip_protocol(path) if "://" in location else str(Path(path))

        def chunks(path: str = path) -> Iterator[bytes]:
            with fs.open(path, "rb") as handle:
                while chunk := handle.read(8 << 20):
                    yield chunk
        extension = PurePosixPath(path).suffix.lower()
        landed.append(land_chunks(settings.landing_path, source, origin, chunks(), extension,
                                  fmt, connector.encoding if fmt == "csv" else None))
    return landed
