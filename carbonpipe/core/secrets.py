"""Secrets never reach a message: credentials in a URI are masked before it is shown."""

from __future__ import annotations

import re

# Query options that carry a secret (MongoDB's TLS key password, AWS session tokens, ...).
_SECRET_WORDS = "password|secret|token|key|authmechanismproperties"
_SECRET_PARAM = re.compile(rf"([?&;][^=&;#\s]*(?:{_SECRET_WORDS})[^=&;#\s]*=)[^&;#\s]*", re.I)


def redact_uri(uri: str) -> str:
    """``mongodb://user:pass@host/`` -> ``mongodb://***@host/`` (for logs, errors, pages); also
    inside a longer text (an exception message that quotes the URI), and the values of query
    options named like a secret (``tlsCertificateKeyFilePassword=...`` -> ``...=***``)."""
    return _SECRET_PARAM.sub(r"\1***", re.sub(r"//[^/@\s]*@", "//***@", uri))
