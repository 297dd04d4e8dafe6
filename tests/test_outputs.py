"""planner.outputs: output paths checked before any work, files written atomically."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

import pytest

from planner import outputs
from planner.errors import PlannerError
from planner.outputs import check_output_path, write_atomic


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def _error(path: Path, option: str = "--out") -> str:
    with pytest.raises(PlannerError) as info:
        check_output_path(path, option)
    message = str(info.value)
    assert message.startswith(f"{option}: ") and "\n" not in message
    return message


def test_regular_file_new_and_existing(tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    check_output_path(target, "--out")  # absent, in a writable folder
    write_atomic(target, "first\n")
    assert target.read_text() == "first\n"
    check_output_path(target, "--out")  # present and writable
    target.chmod(0o640)
    write_atomic(target, b"second\n")
    assert target.read_bytes() == b"second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # permission bits kept
    assert _hidden(tmp_path) == []


def test_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    write_atomic(target, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_relative_name_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_output_path(Path("report.md"), "--out")
    write_atomic(Path("report.md"), "ok")
    assert (tmp_path / "report.md").read_text() == "ok"


@pytest.mark.parametrize("empty", [Path(""), Path(".")])
def test_empty_path(empty: Path) -> None:
    assert "empty path" in _error(empty, "--report")


def test_folder_is_refused(tmp_path: Path) -> None:
    assert "is a folder" in _error(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    assert "does not exist" in _error(tmp_path / "nope" / "r.md")


def test_path_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    assert "is not a folder" in _error(tmp_path / "file.txt" / "r.md")


def test_unwritable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable")
        assert "cannot write in folder" in _error(folder / "r.md")
    finally:
        folder.chmod(0o700)


def test_unwritable_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    target.write_text("keep")
    target.chmod(0o400)
    try:
        if os.access(target, os.W_OK):
            pytest.skip("running as root: a read-only file is still writable")
        assert "not writable" in _error(target)
    finally:
        target.chmod(0o600)


def test_temp_file_probe_catches_what_os_access_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root passes os.access everywhere; the probe (a temporary file created and removed)
    still finds a folder it cannot write, e.g. on a read-only file system."""

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(outputs.os, "access", lambda *a, **k: True)
    monkeypatch.setattr(outputs.tempfile, "mkstemp", refuse)
    message = _error(tmp_path / "r.md")
    assert "cannot write in folder" in message and "Read-only file system" in message


def test_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    check_output_path(tmp_path / "r.md", "--out")
    assert list(tmp_path.iterdir()) == []


def test_dev_null_stays_a_device() -> None:
    null = Path("/dev/null")
    if not null.exists():
        pytest.skip("no /dev/null")
    check_output_path(null, "--out")
    write_atomic(null, "discarded\n")
    assert stat.S_ISCHR(null.stat().st_mode)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert _hidden(tmp_path) == []


def test_symlink_is_kept_and_its_target_written(tmp_path: Path) -> None:
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, OSError])
def test_interrupted_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]
) -> None:
    target = tmp_path / "r.md"
    target.write_text("before")

    def fail(*args: object) -> None:
        raise interrupt(28, "No space left on device") if interrupt is OSError else interrupt()

    monkeypatch.setattr(outputs.os, "replace", fail)
    expected = PlannerError if interrupt is OSError else KeyboardInterrupt
    with pytest.raises(expected):
        write_atomic(target, "after")
    assert target.read_text() == "before"  # untouched
    assert _hidden(tmp_path) == []


def test_interrupted_while_writing_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "r.md", "x" * 100_000)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder_is_a_planner_error(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match="cannot write"):
        write_atomic(tmp_path / "nope" / "r.md", "x")


def test_long_file_name_fits_the_temp_name(tmp_path: Path) -> None:
    target = tmp_path / ("r" * 250 + ".md")  # 253 bytes: a legal name, no room for a suffix
    write_atomic(target, "x")
    assert target.read_text() == "x" and _hidden(tmp_path) == []


def test_messages_clip_long_paths(tmp_path: Path) -> None:
    message = _error(tmp_path / ("d" * 5000) / "r.md")
    assert len(message) < 300


def test_temp_names_are_hidden_in_the_target_folder(tmp_path: Path) -> None:
    seen: list[str] = []
    real = tempfile.mkstemp

    def spy(*args: object, **kwargs: object) -> tuple[int, str]:
        fd, name = real(*args, **kwargs)  # type: ignore[call-overload]
        seen.append(name)
        return fd, name

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(outputs.tempfile, "mkstemp", spy)
        write_atomic(tmp_path / "r.md", "x")
    assert len(seen) == 1
    assert Path(seen[0]).parent == tmp_path and Path(seen[0]).name.startswith(".r.md.")
