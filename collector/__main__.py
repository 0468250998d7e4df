"""``python -m collector collect ...``: the same command as ``carbonpipe collect``.

Kept for scripts that call it; ``carbonpipe collect`` is just as lean, because the console
command imports only the module that owns the chosen sub-command (``carbonpipe.cli``).
"""

from __future__ import annotations

import sys

from carbonpipe.cli import main

if __name__ == "__main__":
    sys.exit(main())
