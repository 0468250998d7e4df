"""Fixtures for collector tests: a fake powercap sysfs tree and isolated settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonpipe.core.config import Settings, load_settings
from tests.collector.fake_sysfs import FakePowercap


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "sys")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home", zone="GB", sysfs_root=tmp_path / "sys")
