"""Where carbonpipe's bundled files are: one resolver for the schemas, the tables and the trace.

The JSON Schemas (``schemas/``), the cited reference tables and the bundled ODbL trace
(``data/``) live at the top of the repository, because that layout is the user's: people read,
cite and edit them there. A wheel has no top level of its own, so ``setup.py``'s build step
copies both folders into the package as ``carbonpipe/_resources/`` (in the build tree only,
never in git). ``resource("data/zone_averages.csv")`` answers for both cases:

1. the packaged copy, found through ``importlib.resources`` (a ``pip install`` of the wheel);
2. else the checkout's top level (an editable install, ``PYTHONPATH=.``, the Docker image).

The packaged copy wins when both exist, so an installed wheel never reads a stray ``data/``
folder that another distribution dropped into site-packages. Installs from a zip (zipimport)
are not supported: the readers want real paths (the Spark job and pandas open them by name).

Only ``infra/`` (Maven poms, FerretDB sources, scripts) is not packaged: the local stack needs a
checkout or ``docker compose``; ``in_checkout()`` tells the two cases apart.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

__all__ = ["PACKAGED_DIR", "REPO_ROOT", "in_checkout", "resource", "resource_root"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGED_DIR = "_resources"  # carbonpipe/_resources/{schemas,data} inside a built wheel
# A file every complete copy has: a folder without it is not a resource root.
_MARKER = Path("schemas") / "metric_event.v1.json"


def _packaged_root() -> Path:
    root = files("carbonpipe") / PACKAGED_DIR
    # A normal (unzipped) install gives a real path; str() is its file-system form.
    return Path(str(root))


@functools.cache
def resource_root() -> Path:
    """The folder holding ``schemas/`` and ``data/``: the packaged copy, else the checkout.

    Where neither is complete, the packaged location is returned anyway, so the error a reader
    then raises names the place where pip should have put the file.
    """
    packaged = _packaged_root()
    if (packaged / _MARKER).is_file():
        return packaged
    if (REPO_ROOT / _MARKER).is_file():
        return REPO_ROOT
    return packaged


def resource(relpath: str) -> Path:
    """Path of a bundled file or folder, e.g. ``resource("data/zone_averages.csv")``."""
    return resource_root() / relpath


def in_checkout() -> bool:
    """True when running from a source checkout (editable install or ``PYTHONPATH``).

    The local stack (``carbonpipe up``, ``make demo``) needs ``infra/`` from a checkout; a
    wheel-only install measures and schedules, and talks to a stack started elsewhere.
    """
    return resource_root() == REPO_ROOT and (REPO_ROOT / "infra").is_dir()
