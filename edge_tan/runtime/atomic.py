"""Atomic writes: artifacts appear complete or not at all, never half-written.

A failed write (disk full, quota, read-only or vanished folder) raises `WriteFailed`, an EdgeTanError:
the CLI prints one line naming the file and exits non-zero, and the temp file is gone. The temp file
is fsync'ed before the rename, so an error the kernel reports late still lands here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import EdgeTanError


class WriteFailed(EdgeTanError, OSError):
    """Writing an output failed; nothing was left at the destination (still an OSError to callers
    that catch one)."""


def ensure_dir(folder: str | os.PathLike, what: str = "output") -> Path:
    """mkdir -p with one clear line when it cannot be made (a path part is a regular file, no
    permission, read-only file system) instead of a traceback."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker is not None else (e.strerror or str(e))
        raise WriteFailed(f"cannot create the {what} folder {folder}: {why}") from None
    return folder


def check_can_create(folder: str | os.PathLike, what: str = "output") -> None:
    """Refuse early, creating nothing, when `folder` could never be made because a part of its path is a
    regular file (checked before hours of work, not after)."""
    for p in [Path(folder), *Path(folder).parents]:
        if p.exists():
            if not p.is_dir():
                raise WriteFailed(f"cannot create the {what} folder {folder}: {p} is a file, not a folder")
            return


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `dest`; rename it onto `dest` only if the block succeeds.

    The temp name keeps `dest`'s suffix (or `suffix`) so writers that pick a format by extension
    (cv2.VideoWriter, np.savez) still work.
    """
    dest = Path(dest)
    ensure_dir(dest.parent)
    sfx = suffix if suffix is not None else "".join(dest.suffixes) or ".tmp"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=sfx, dir=dest.parent)
    except OSError as e:
        raise WriteFailed(f"cannot write {dest}: {e.strerror or e}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts should read like normal files
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~_umask())  # some writers recreate the file with 0600
            _fsync(tmp_path)
        os.replace(tmp_path, dest)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(e, OSError):   # ENOSPC, EDQUOT, EFBIG, EIO, EROFS ...: one line, nothing left behind
            raise WriteFailed(f"cannot write {dest}: {e.strerror or e} (nothing was written)") from None
        raise


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike, keep: Callable[[], bool] | None = None) -> Iterator[Path]:
    """Yield a temp directory beside `dest`; it replaces `dest` only if the block succeeds.

    keep: for caches that several processes may fill at once (batch workers opening the same artifact):
    when `dest` exists by the time the block ends and keep() says it is complete, the existing `dest` is
    left alone and the temp directory dropped. Replacing it takes two renames, and a reader that had
    just found it could open the path in between and miss it."""
    dest = Path(dest)
    ensure_dir(dest.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as e:
        raise WriteFailed(f"cannot write {dest}: {e.strerror or e}") from None
    os.chmod(tmp, 0o777 & ~_umask())
    kept = lambda: keep is not None and dest.exists() and keep()  # noqa: E731
    try:
        yield tmp
        if kept():
            shutil.rmtree(tmp, ignore_errors=True)
        elif dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, dest)
            except OSError:   # another writer's `dest` appeared since the check: keep it if complete
                if not kept():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise WriteFailed(f"cannot write {dest}: {e.strerror or e} (nothing was written)") from None
        raise


def write_text(dest: str | os.PathLike, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
