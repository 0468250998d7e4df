"""One resolver for schemas/ and data/: the packaged copy first, else the checkout's top level."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from carbonpipe.core import resources
from carbonpipe.core.resources import REPO_ROOT, resource, resource_root

READ_BY_THE_CODE = (  # every bundled file a reader opens through resource()
    "schemas/metric_event.v1.json",
    "schemas/grid_intensity.v1.json",
    "data/zone_averages.csv",
    "data/cpu_tdp.csv",
    "data/cloud_regions.csv",
    "data/em_zones.json",
    "data/traces/us-cal-ciso-2023.csv",
)


@pytest.fixture
def fresh_root():
    resource_root.cache_clear()
    yield
    resource_root.cache_clear()


def test_checkout_reads_the_top_level_folders() -> None:
    assert resource_root() == REPO_ROOT
    for rel in READ_BY_THE_CODE:
        assert resource(rel).is_file(), rel


def test_packaged_copy_wins_over_the_checkout(tmp_path: Path, monkeypatch, fresh_root) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "metric_event.v1.json").write_text("{}")
    monkeypatch.setattr(resources, "_packaged_root", lambda: tmp_path)
    assert resource("data/x.csv") == tmp_path / "data" / "x.csv"


def test_incomplete_packaged_copy_is_ignored(tmp_path: Path, monkeypatch, fresh_root) -> None:
    monkeypatch.setattr(resources, "_packaged_root", lambda: tmp_path)  # no marker file
    assert resource_root() == REPO_ROOT


def test_version_is_declared_once() -> None:
    import carbonpipe
    from carbonpipe.cli import main
    from carbonpipe.core.version import VERSION

    assert carbonpipe.__version__ == VERSION
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "carbonpipe.core.version.VERSION"
    }
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0


def test_a_zipped_wheel_gets_real_files(tmp_path: Path, monkeypatch) -> None:
    """`spark-submit --py-files carbonpipe.whl` imports the package from the zip: the readers
    still get real paths, extracted once per archive."""
    import tempfile
    import zipfile

    whl = tmp_path / "carbonpipe-0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("carbonpipe/_resources/schemas/metric_event.v1.json", "{}")
        zf.writestr("carbonpipe/_resources/data/traces/a.csv", "zone,g\nGB,1\n")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = zipfile.Path(whl, "carbonpipe/_resources/")
    got = resources._extracted(root)
    assert (got / "data" / "traces" / "a.csv").read_text() == "zone,g\nGB,1\n"
    assert (got / "schemas" / "metric_event.v1.json").is_file()
    assert resources._extracted(root) == got  # the same folder, not a second copy
    assert len(list((tmp_path / "tmp").iterdir())) == 1
