"""Secrets never reach a message: credentials in a URI are masked before it is shown."""

from __future__ import annotations

import re


def redact_uri(uri: str) -> str:
    """``mongodb://user:pass@host/`` -> ``mongodb://***@host/`` (for logs, errors, pages); also
    inside a longer text (an exception message that quotes the URI)."""
    return re.sub(r"//[^/@\s]*@", "//***@", uri)
