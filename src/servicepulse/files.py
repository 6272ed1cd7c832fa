"""Writing a file so that no reader ever sees half of it."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_whole(path: Path, content: bytes) -> None:
    """Write ``content`` under a temporary name of this writer's own (process and
    thread), then rename it to ``path``: a reader, a task re-run while the first still
    writes, or another worker writing the same file never sees half a file; the last
    rename wins, with a whole one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temporary.write_bytes(content)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
