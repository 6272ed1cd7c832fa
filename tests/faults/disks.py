"""Small file systems for full-disk faults: a tmpfs of a given size, and filling one."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_file_system(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. "24m") on ``mount``; required under CI=true."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mounting a small tmpfs is required under CI=true: {done.stderr}")
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> Path:
    """Write ``path`` until the disk it is on is full."""
    with path.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return path
