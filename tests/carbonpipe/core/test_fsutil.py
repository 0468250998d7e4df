"""Atomic writes leave the old content or the new, and no temporary files."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonpipe.core.fsutil import atomic_write_bytes, atomic_write_text


@pytest.mark.parametrize("fsync", [False, True])
def test_write_replaces_whole_and_leaves_no_temp(tmp_path: Path, fsync: bool) -> None:
    target = tmp_path / "deep" / "f.txt"
    atomic_write_text(target, "old", fsync=fsync)
    atomic_write_text(target, "new", fsync=fsync)
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_a_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]  # fails mid-write
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]

