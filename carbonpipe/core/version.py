"""carbonpipe's version: declared once, here.

The wheel's metadata reads it (``pyproject.toml``: ``version = {attr = ...}``, evaluated
statically, without importing the package), ``carbonpipe.__version__`` re-exports it, and
``carbonpipe --version`` prints it; so an installed wheel and a checkout agree by construction.
"""

VERSION = "0.1.0"
