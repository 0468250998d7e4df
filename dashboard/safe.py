"""What a viewer may be shown: user-supplied text as text, failures without their details.

Run ids, user ids, model names, tags and zones come from any event on the log, so they are
attacker-chosen: in ``st.markdown`` they would render links, remote images (tracking pixels)
and Streamlit's colour directives; ``md`` makes them code spans, shown verbatim. Exceptions
(and the MongoDB URI with its password) go to the server's log with an incident id; the
viewer gets the id and no details.
"""

from __future__ import annotations

import functools
import logging
import re
import traceback
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from carbonpipe.core.secrets import redact_uri

log = logging.getLogger("carbonpipe.dashboard")
F = TypeVar("F", bound=Callable[..., Any])

def md(value: object) -> str:
    """``value`` as literal text inside Markdown: an inline code span, inside which nothing is
    markup (backslash escapes are not enough: GFM still autolinks ``https\\://a\\.b``).
    Newlines are folded (a user id must not end the span), the fence is longer than any run of
    backticks in the value."""
    text = " ".join(str(value).split())
    if not text:
        return ""
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def incident(what: str, exc: BaseException) -> str:
    """Log ``exc`` with its traceback (credentials in URIs masked); returns the incident id
    that the viewer is shown instead."""
    ref = uuid.uuid4().hex[:8]
    trace = redact_uri("".join(traceback.format_exception(exc)))
    log.error("dashboard incident %s: %s failed\n%s", ref, what, trace)
    return ref


def hot_store_down(st: Any, exc: BaseException) -> None:
    """MongoDB is unreachable: say so, without its URI (which may hold a password)."""
    ref = incident("reading the hot store", exc)
    st.error(f"The hot store (MongoDB) is not reachable (incident {ref}). The details are in "
             "the dashboard's server log; check that the database runs and MONGO_URI is right.")


def guarded(what: str) -> Callable[[F], F]:
    """Decorator for a page section: an exception is logged server-side and the viewer sees
    one line with an incident id, never a traceback (Streamlit's own stop/rerun pass, being
    BaseExceptions)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                import streamlit as st

                ref = incident(what, exc)
                st.error(f"Part of this page failed (incident {ref}); the server log has the "
                         "details.")
                return None

        return run  # type: ignore[return-value]

    return wrap


def text_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for ``st.table``, which renders Markdown in headers and cells: every string (run
    ids as column names too) becomes a code span (``md``); numbers stay numbers."""
    return [{md(k): md(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows]
