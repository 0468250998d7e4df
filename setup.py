"""Build hook: the wheel carries the repo's top-level ``schemas/`` and ``data/`` as package data.

The repo layout is the user's, so those folders stay at the top (people read, cite and edit
them there) instead of moving into the package. A wheel has no top level, so ``build_py``
copies them to ``carbonpipe/_resources/`` in the *build* tree only (never the source tree,
never git); ``carbonpipe.core.resources.resource()`` finds them there after ``pip install``,
and at the top level in a checkout. An editable install skips the copy: it reads the checkout.
``MANIFEST.in`` puts the same folders in the sdist, so sdist -> wheel builds carry them too.
Everything else about the project is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGED = Path("carbonpipe") / "_resources"  # = carbonpipe.core.resources.PACKAGED_DIR
RESOURCE_DIRS = ("schemas", "data")


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in RESOURCE_DIRS:
            src = ROOT / name
            if not src.is_dir():
                raise SystemExit(f"setup.py: {src} is missing; build from a full checkout")
            shutil.copytree(
                src,
                Path(self.build_lib) / PACKAGED / name,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
            )


setup(cmdclass={"build_py": BuildPyWithResources})
