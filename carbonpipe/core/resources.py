"""Where carbonpipe's bundled files are: one resolver for the schemas, the tables and the trace.

The JSON Schemas (``schemas/``), the cited reference tables and the bundled ODbL trace
(``data/``) live at the top of the repository, because that layout is the user's: people read,
cite and edit them there. A wheel has no top level of its own, so ``setup.py``'s build step
copies both folders into the package as ``carbonpipe/_resources/`` (in the build tree only,
never in git). ``resource("data/zone_averages.csv")`` answers for both cases:

1. the packaged copy, found through ``importlib.resources`` (a ``pip install`` of the wheel);
2. else the checkout's top level (an editable install, ``PYTHONPATH=.``, the Docker image).

The packaged copy wins when both exist, so an installed wheel never reads a stray ``data/``
folder that another distribution dropped into site-packages. Imported from a zip (the wheel
on ``spark-submit --py-files``: zipimport), the packaged copy is extracted once into a folder
of the temp directory named by the wheel's size and time (``_extracted``), because the readers
want real paths (the Spark job and pandas open them by name).

Only ``infra/`` (Maven poms, FerretDB sources, scripts) is not packaged: the local stack needs a
checkout or ``docker compose``; ``in_checkout()`` tells the two cases apart.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import tempfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["PACKAGED_DIR", "REPO_ROOT", "in_checkout", "resource", "resource_root"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGED_DIR = "_resources"  # carbonpipe/_resources/{schemas,data} inside a built wheel
# A file every complete copy has: a folder without it is not a resource root.
_MARKER = Path("schemas") / "metric_event.v1.json"


def _packaged_root() -> Path:
    root = files("carbonpipe") / PACKAGED_DIR
    # A normal (unzipped) install gives a real path; str() is its file-system form.
    path = Path(str(root))
    if path.exists() or not root.is_dir():
        return path
    return _extracted(root)  # inside a zip: exists() is False but the archive has it


def _copy_tree(src: Traversable, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_dir():
            _copy_tree(item, dst / item.name)
        else:
            (dst / item.name).write_bytes(item.read_bytes())


def _extracted(root: Traversable) -> Path:
    """The zipped resources as real files: extracted once per archive (its path, size and
    time name the folder), renamed into place whole so a concurrent reader sees all or none."""
    archive = Path(str(root)).parents[1]  # <archive>/carbonpipe/_resources
    st = archive.stat()
    key = hashlib.sha256(f"{archive}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"carbonpipe-resources-{key}"
    if not (target / _MARKER).is_file():
        work = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
        _copy_tree(root, work)
        try:
            work.rename(target)
        except OSError:  # another process was first: its copy is the same
            shutil.rmtree(work, ignore_errors=True)
    return target


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
