"""The one way a carbonpipe process opens MongoDB: ``mongo_client(uri)``.

Everything in ``MONGO_URI`` applies as written (user and password, ``authSource``, ``tls=true``,
``tlsCAFile``, ``replicaSet``...): the options added here are only timeouts, ``tz_aware`` and,
on a replica set, a majority write concern, and a ``w=`` in the URI wins. pymongo is imported
late (``carbonpipe --help`` stays fast) and connects lazily (making a client needs no server).
"""

from __future__ import annotations

from typing import Any


def client_options(uri: str, timeout_s: float) -> dict[str, Any]:
    """pymongo options: a timeout on every call, and write concern ``majority`` on a replica set.

    A hung server must fail the batch (which is retried) instead of wedging the job, so server
    selection, connect, socket reads and the write concern all give up after ``timeout_s``. On
    a replica set a w:1 write can be rolled back by a failover after Spark has committed the
    batch, so writes wait for a journaled majority there. FerretDB and a standalone mongod are
    no replica set: plain w:1. Read from the URI (``replicaSet=``, ``mongodb+srv://``), so that
    making a store needs no server; a ``w=`` in the URI wins.
    """
    from urllib.parse import parse_qs, urlsplit

    ms = max(1, int(timeout_s * 1000))
    opts: dict[str, Any] = {
        "serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms, "socketTimeoutMS": ms,
        "wTimeoutMS": ms, "tz_aware": True,
    }  # fmt: skip
    query = {k.lower() for k in parse_qs(urlsplit(uri).query)}
    if "w" not in query and ("replicaset" in query or uri.startswith("mongodb+srv://")):
        opts.update(w="majority", journal=True)
    return opts


def mongo_client(uri: str, timeout_s: float = 30.0, **extra: Any) -> Any:
    """A ``pymongo.MongoClient`` for ``uri`` with ``client_options`` (``extra`` may add, say,
    ``maxPoolSize``; it may not drop credentials or TLS, which live in the URI)."""
    from pymongo import MongoClient

    return MongoClient(uri, **{**client_options(uri, timeout_s), **extra})
