"""Output files: checked before any work, written atomically, never renamed over anything but
a regular file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from planner.errors import PlannerError


def check_output_path(path: Path, option: str) -> None:
    """A PlannerError naming `option` unless `path` can be written: not empty, not a folder,
    in an existing writable folder."""
    if str(path) in ("", "."):
        raise PlannerError(f"{option}: empty path")
    if path.is_dir():
        raise PlannerError(f"{option}: {path} is a folder")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise PlannerError(f"{option}: folder {folder} {what}")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise PlannerError(f"{option}: {path} is not writable")
        if not path.is_file():
            return
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise PlannerError(f"{option}: cannot write in {folder}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path` — only when
    `path` is absent or a regular file; anything else (a device such as /dev/null, a FIFO) is
    written in place. The temporary file is removed on any failure or interruption."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if path.exists() and not path.is_file():
        try:
            with path.open("wb") as fh:
                fh.write(raw)
        except OSError as exc:
            raise PlannerError(f"cannot write {path}: {exc.strerror}") from None
        return
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise PlannerError(f"cannot write in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PlannerError(f"cannot write {path}: {exc.strerror}") from None
        raise


def check_output_dir(path: Path, option: str) -> None:
    """A PlannerError naming `option` unless `path` is a writable folder or can be created
    (its nearest existing ancestor is a writable folder)."""
    if str(path) == "":
        raise PlannerError(f"{option}: empty path")
    if path.exists():
        if not path.is_dir():
            raise PlannerError(f"{option}: {path} exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise PlannerError(f"{option}: folder {path} is not writable")
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PlannerError(f"{option}: cannot create {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PlannerError(f"{option}: cannot create {path}: {ancestor} is not writable")


def write_tree(folder: Path, files: dict[str, str]) -> list[Path]:
    """Create `folder` (and missing parents) and write each {relative path: text} into it
    atomically; shell scripts (`.sh`) become executable. Returns the paths written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlannerError(f"cannot create {folder}: {exc.strerror}") from None
    umask = os.umask(0)
    os.umask(umask)
    written = []
    for name, text in files.items():
        path = folder / name
        write_atomic(path, text)
        if path.suffix == ".sh" and path.is_file():
            os.chmod(path, 0o777 & ~umask)
        written.append(path)
    return written
