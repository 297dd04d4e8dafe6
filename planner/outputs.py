"""Output files: checked before any work, written atomically, never renamed over anything but
a regular file.

`check_output_path` runs before a command does any work, so a bad `--out` costs nothing;
`write_atomic` writes a temporary file beside the target and renames it over the target, so a
reader never sees half a file — except when the target exists and is not a regular file (a
device such as /dev/null or /dev/stdout, a FIFO), which is written in place: renaming over it
would replace the device with a file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from planner.errors import PlannerError
from planner.yamlio import clip


def _shown(path: Path) -> str:
    return clip(path, 120)


def _reason(exc: OSError) -> str:
    return clip(exc.strerror or exc, 120)


def _target(path: Path) -> Path:
    """`path`, or the file a symbolic link at `path` points to (the link is kept)."""
    try:
        return path.resolve() if path.is_symlink() else path
    except (OSError, RuntimeError):  # a link loop: let the write report it
        return path


def _temp_prefix(path: Path) -> str:
    return f".{path.name[:40]}."  # hidden; short enough for any file-name limit


def check_output_path(path: Path, option: str) -> None:
    """Raise a PlannerError naming `option` (e.g. `--out`) unless `path` can be written: not
    empty, not a folder, in an existing writable folder, and writable if it exists. Besides
    os.access (which root always passes), a temporary file is created and removed in the folder,
    so a read-only file system or a full quota is caught too."""
    if str(path) in ("", "."):
        raise PlannerError(f"{option}: empty path")
    target = _target(path)
    try:
        if target.is_dir():
            raise PlannerError(f"{option}: {_shown(path)} is a folder")
        folder = target.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise PlannerError(f"{option}: folder {_shown(folder)} {what}")
        mode = target.stat().st_mode if target.exists() else None
    except OSError as exc:
        raise PlannerError(f"{option}: {_shown(path)}: {_reason(exc)}") from None
    if mode is not None and not os.access(target, os.W_OK):
        raise PlannerError(f"{option}: {_shown(path)} is not writable")
    if mode is not None and not stat.S_ISREG(mode):
        return  # a device or FIFO: written in place, the folder does not matter
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PlannerError(f"{option}: cannot write in folder {_shown(folder)}")
    try:
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(target), dir=folder)
    except OSError as exc:
        raise PlannerError(
            f"{option}: cannot write in folder {_shown(folder)}: {_reason(exc)}"
        ) from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def _encode(data: str | bytes) -> bytes:
    if isinstance(data, bytes):
        return data
    try:
        return data.encode("utf-8", "surrogateescape")  # file names that were not UTF-8
    except UnicodeEncodeError:
        return data.encode("utf-8", "replace")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path`: through a temporary file in the same folder,
    renamed over `path` only when `path` does not exist or is a regular file (whose permission
    bits are kept); anything else that exists (/dev/null, /dev/stdout, a FIFO) is written in
    place. On any failure or interruption (KeyboardInterrupt too) the temporary file is
    removed; an OSError becomes a PlannerError naming the path."""
    raw = _encode(data)
    target = _target(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise PlannerError(f"cannot write {_shown(path)}: {_reason(exc)}") from None
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with target.open("wb") as fh:
                fh.write(raw)
        except OSError as exc:
            raise PlannerError(f"cannot write {_shown(path)}: {_reason(exc)}") from None
        return
    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), dir=folder)
    except OSError as exc:
        raise PlannerError(f"cannot write in {_shown(folder)}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            bits = 0o666 & ~umask  # mkstemp creates 0600; give a new file the usual bits
        else:
            bits = stat.S_IMODE(mode)
        os.chmod(tmp, bits)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PlannerError(f"cannot write {_shown(path)}: {_reason(exc)}") from None
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
