"""Atomic writes of folders and files: readers see the old version or the complete new one,
never a half-written one, and a crash leaves only a dot-prefixed temp sibling behind.

Torch-free on purpose: the artifact store (no torch) and the model store (torch) both use it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def write_dir_atomically(final_dir: str | Path, fill: Callable[[Path], object]) -> Path:
    """Run ``fill(tmp)`` into a sibling temp folder, then swap it into ``final_dir``; an
    existing ``final_dir`` is replaced (never merged) only once the new one is complete."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.tmp-"))
    try:
        fill(tmp)
        old = None
        if final_dir.exists():
            old = final_dir.parent / f".{final_dir.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(final_dir, old)
        os.replace(tmp, final_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final_dir


def write_file_atomically(target: str | Path, fill: Callable[[Path], object]) -> Path:
    """Run ``fill(tmp_file)`` on a sibling temp file, then rename it onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.tmp-")
    os.close(fd)
    tmp = Path(name)
    try:
        fill(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
