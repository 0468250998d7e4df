"""The README's benchmark tables are exactly what bench/readme_table.py prints from
bench/results/, and the generator never lets a NaN through."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import readme_table as rt

ROOT = Path(__file__).resolve().parents[2]


def test_readme_tables_match_the_committed_results() -> None:
    current = rt.readme_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert current == rt.render(ROOT / "bench" / "results"), (
        "README.md's benchmark tables are stale: run .venv/bin/python bench/readme_table.py --write"
    )


def test_write_replaces_only_the_marked_blocks(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    blocks = "".join(f"<!-- {b}:begin -->\nold\n<!-- {b}:end -->\n" for b in rt.BLOCKS)
    readme.write_text(f"intro\n{blocks}outro\n")
    assert rt.write(readme, ROOT / "bench" / "results")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "\nold\n" not in text
    assert rt.readme_blocks(text) == rt.render(ROOT / "bench" / "results")
    assert not rt.write(readme, ROOT / "bench" / "results")  # second time: nothing to change


def test_a_nan_in_a_results_file_is_refused(tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(ROOT / "bench" / "results", results)
    doc = json.loads((results / "collector.json").read_text())
    key = next(iter(doc["ratios"]))
    doc["ratios"][key]["median"] = float("nan")
    (results / "collector.json").write_text(json.dumps(doc))  # allow_nan: the default
    with pytest.raises(rt.TableError, match="no NaN goes into the README"):
        rt.render(results)


def test_missing_markers_are_reported(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(rt.TableError, match="lacks the <!-- bench-table:begin/end --> markers"):
        rt.write(readme, ROOT / "bench" / "results")
