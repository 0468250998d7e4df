"""The console command starts light: registering sub-commands imports no heavy library.

Why: ``carbonpipe runs --json`` has 0.5 s in all (issue 12), and most of a short command's time
is imports; a module-level ``import pandas`` in any sub-command module would cost every
command. Checked in a fresh interpreter through ``sys.modules``, not by timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from carbonpipe.cli import COMMAND_OWNERS
from carbonpipe.core.config import REPO_ROOT

# What only a handler may import (each costs 50 ms to seconds at start).
HEAVY = ("pandas", "numpy", "pyarrow", "pyspark", "py4j", "pymongo", "bson", "kafka",
         "requests", "urllib3", "streamlit", "altair", "plotly", "playwright", "codecarbon",
         "jsonschema")  # fmt: skip


def imported_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=REPO_ROOT, env=env)  # fmt: skip
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_building_the_whole_parser_imports_no_heavy_module() -> None:
    assert imported_after("import carbonpipe.cli as c; c.build_parser()") == []


@pytest.mark.parametrize("command", ["runs", "users", "stream", "dashboard", "schedule"])
def test_one_command_parser_imports_no_heavy_module(command: str) -> None:
    assert command in COMMAND_OWNERS
    assert imported_after(f"import carbonpipe.cli as c; c.build_parser({command!r})") == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above can fail: a heavy import is reported."""
    assert imported_after("import carbonpipe.cli; import numpy") == ["numpy"]


def test_the_cli_skips_pydantic_plugin_discovery_and_settings_still_load() -> None:
    code = ("import carbonpipe.cli as c\nc.skip_pydantic_plugin_scan()\n"
            "from pydantic.plugin import _loader\nassert _loader._plugins == {}\n"
            "from carbonpipe.core.config import load_settings\nload_settings()")  # fmt: skip
    assert imported_after(code) == []


def test_quick_exit_flushes_output_and_skips_exit_handlers() -> None:
    code = ("import atexit\nfrom carbonpipe.cli import quick_exit\n"
            "atexit.register(lambda: print('exit handler ran'))\n"
            "print('figures', end='')\nquick_exit(3)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env)  # fmt: skip
    assert (proc.returncode, proc.stdout) == (3, "figures")


def test_only_the_read_only_commands_exit_quickly() -> None:
    import argparse

    from carbonpipe.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    quick = {name for name, p in sub.choices.items() if p.get_default("quick_exit")}
    assert quick == {"runs", "users"}
