"""Vendor libraries are optional: a missing one names the extra that installs it."""

from __future__ import annotations

import pytest

from carbonpipe.core.errors import ConfigError
from collector.exporters import build_exporters, vendor


def test_a_missing_library_names_its_extra_and_is_both_import_and_config_error() -> None:
    with pytest.raises(ImportError, match=r"pip install 'carbonpipe\[wandb\]'") as info:
        vendor("carbonpipe_no_such_vendor_lib", "wandb")
    assert isinstance(info.value, ConfigError)  # `carbonpipe collect` prints it, no traceback


def test_nothing_asked_builds_nothing() -> None:
    assert build_exporters() == []
