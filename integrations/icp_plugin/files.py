"""Folder work: atomic writes, moves that never overwrite, settling, pruning."""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TMP_PREFIX = ".icp-"
TMP_SUFFIX = ".tmp"
DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM\d|LPT\d)(\..*)?$", re.IGNORECASE)


def local_today() -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone().date()


def is_plain_xml_name(name: object) -> bool:
    """A bare ``*.xml`` file name: no folders, no ``..``, nothing Windows would refuse."""
    if not isinstance(name, str) or not 5 <= len(name) <= 200:
        return False
    if not name.lower().endswith(".xml") or name.startswith("."):
        return False
    if any(c in name for c in '/\\:*?"<>|') or ".." in name:
        return False
    if any(ord(c) < 32 for c in name) or name != name.strip():
        return False
    return not _WINDOWS_RESERVED.match(name)


def describe_os_error(exc: OSError) -> str:
    """An OSError in words: "permission denied", "the disk is full", ..."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "the folder does not exist"
    if isinstance(exc, NotADirectoryError):
        return "part of the path is a file, not a folder"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EROFS:
        return "the disk is read-only"
    return exc.strerror or str(exc)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open folders.
    if sys.platform == "win32":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see no file or the whole file.

    A temporary name in the same folder (hidden, not ``*.xml``, so InterLink
    ignores it), fsync, then one rename. Raises OSError on failure and leaves
    nothing behind.
    """
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def remove_stale_temp_files(folder: Path) -> None:
    """Temp files left by a plug-in killed mid-write (the work request is served again)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(TMP_PREFIX) and entry.name.endswith(TMP_SUFFIX):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def move_no_clobber(src: Path, folder: Path) -> Path:
    """Move ``src`` into ``folder``; a name already there gets ``-1``, ``-2``, ... added."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = src.stem, src.suffix
    for n in range(10_000):
        target = folder / (src.name if n == 0 else f"{stem}-{n}{suffix}")
        try:
            # A hard link fails if the target exists, so nothing is ever overwritten.
            os.link(src, target)
        except FileExistsError:
            continue
        except OSError:
            # File systems without hard links (FAT, some shares): check, then rename.
            if target.exists():
                continue
            os.replace(src, target)
            return target
        os.unlink(src)
        return target
    raise OSError(errno.EEXIST, f"no free name for {src.name} in {folder}")


def candidate_files(folder: Path, suffix: str) -> list[Path]:
    """Files directly in ``folder`` ending in ``suffix``, oldest first (by mtime, then name)."""
    found = []
    for entry in os.scandir(folder):
        name = entry.name
        if name.startswith(".") or not name.lower().endswith(suffix):
            continue
        try:
            if not entry.is_file():
                continue
            found.append((entry.stat().st_mtime_ns, name, Path(entry.path)))
        except FileNotFoundError:
            continue
    return [path for _mtime, _name, path in sorted(found)]


@dataclass
class _Look:
    size: int
    mtime_ns: int
    since: float


class SettleTracker:
    """Tells when a file has stopped changing.

    InterLink may still be writing a result file when we first see it, so a
    file counts as finished only when its size and modification time are the
    same at two looks at least ``settle_seconds`` apart.
    """

    def __init__(self, settle_seconds: float, clock: Callable[[], float]) -> None:
        self.settle_seconds = settle_seconds
        self.clock = clock
        self._looks: dict[Path, _Look] = {}

    def look(self, paths: list[Path]) -> tuple[list[Path], float | None]:
        """(settled paths in the given order, seconds until the next may settle or None)."""
        now = self.clock()
        settled: list[Path] = []
        wait: float | None = None
        for path in paths:
            try:
                stat = path.stat()
            except FileNotFoundError:
                self._looks.pop(path, None)
                continue
            seen = self._looks.get(path)
            if seen and seen.size == stat.st_size and seen.mtime_ns == stat.st_mtime_ns:
                remaining = self.settle_seconds - (now - seen.since)
                if remaining <= 0:
                    if stat.st_size > 0:  # an empty file is not finished, however old
                        settled.append(path)
                    continue
            else:
                self._looks[path] = _Look(stat.st_size, stat.st_mtime_ns, now)
                remaining = self.settle_seconds
            remaining = max(remaining, 0.05)
            wait = remaining if wait is None else min(wait, remaining)
        return settled, wait

    def forget(self, path: Path) -> None:
        self._looks.pop(path, None)

    def keep_only(self, paths: set[Path]) -> None:
        for path in list(self._looks):
            if path not in paths:
                del self._looks[path]


def prune_archive(archive: Path, keep_days: int, today: dt.date) -> list[Path]:
    """Delete ``archive/YYYY-MM-DD`` folders older than ``keep_days``; returns them."""
    removed: list[Path] = []
    if keep_days <= 0:
        return removed
    try:
        entries = list(os.scandir(archive))
    except OSError:
        return removed
    cutoff = today - dt.timedelta(days=keep_days)
    for entry in entries:
        if not entry.is_dir() or not DATE_FOLDER.match(entry.name):
            continue
        try:
            day = dt.date.fromisoformat(entry.name)
        except ValueError:
            continue
        if day < cutoff:
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
    return removed
