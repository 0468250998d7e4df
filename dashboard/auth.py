"""Who may open the dashboard, and which runs they see.

``CARBONPIPE_DASHBOARD_AUTH``: ``none`` (whoever reaches the port: loopback by default),
``password`` (a small team: ``user:hash`` lines in ``CARBONPIPE_DASHBOARD_PASSWORDS_FILE``,
hashes from ``carbonpipe dashboard --hash-password``; PBKDF2-SHA256, compared in constant
time, unknown users cost as much as wrong passwords) or ``oidc`` (Streamlit's ``st.login``,
the provider configured under ``[auth]`` in ``.streamlit/secrets.toml``). ``require_login``
runs before anything is drawn, so a session without credentials sees only the login form.

``CARBONPIPE_DASHBOARD_SCOPE=own``: a signed-in viewer sees only runs whose ``user_id`` is
theirs. The rule is ``visible_runs`` (pure) or ``runs_filter`` (the same as a MongoDB query).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from carbonpipe.core.config import ConfigError, Settings

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
SESSION_KEY = "carbonpipe_viewer"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>``: what a passwords file stores."""
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


# Checked against when the user is unknown, so that costs the same time as a wrong password.
_DUMMY = hash_password("unknown user", salt=b"carbonpipe-dummy")


def verify_password(stored: str, password: str) -> bool:
    """``password`` matches ``stored`` (constant-time compare of the derived keys)."""
    try:
        scheme, iterations, salt, want = stored.split("$")
        if scheme != SCHEME:
            return False
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                  int(iterations))  # fmt: skip
        return hmac.compare_digest(got, base64.b64decode(want))
    except ValueError:  # malformed line: never a match
        return False


def load_passwords(path: Path) -> dict[str, str]:
    """``user:hash`` per line (``#`` comments). A line that is not a hash is refused: a
    plain-text password in a file is what this format exists to avoid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"CARBONPIPE_DASHBOARD_PASSWORDS_FILE: cannot read {path}: "
                          f"{exc.strerror}") from None  # fmt: skip
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not user.strip() or not stored.startswith(SCHEME + "$"):
            raise ConfigError(
                f"CARBONPIPE_DASHBOARD_PASSWORDS_FILE: {path} line {n} is not `user:{SCHEME}$...`;"
                " make the hash with `carbonpipe dashboard --hash-password`"
            )
        users[user.strip()] = stored.strip()
    return users


def check_login(users: Mapping[str, str], user: str, password: str) -> bool:
    """The same work whether or not ``user`` exists (no user enumeration by timing)."""
    stored = users.get(user)
    ok = verify_password(stored or _DUMMY, password)
    return ok and stored is not None


def visible_runs(
    user: str | None, runs: Iterable[Mapping[str, Any]], scope: str = "own"
) -> list[Mapping[str, Any]]:
    """The runs ``user`` may see: all with scope ``all``; with ``own`` only theirs (and none
    without a user: a missing identity never widens the view)."""
    if scope == "all":
        return list(runs)
    return [r for r in runs if user is not None and r.get("user_id") == user]


def runs_filter(user: str | None, scope: str = "own") -> dict[str, Any]:
    """``visible_runs`` as a MongoDB filter on ``runs``/``windows`` (for readers that query)."""
    if scope == "all":
        return {}
    return {"user_id": user if user is not None else {"$in": []}}


def _password_form(st: Any, settings: Settings) -> str | None:
    assert settings.dashboard_passwords_file is not None  # Settings checks it
    users = load_passwords(Path(settings.dashboard_passwords_file))
    with st.form("carbonpipe-login"):
        user = st.text_input("user")
        password = st.text_input("password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if check_login(users, user, password):
            st.session_state[SESSION_KEY] = user
            st.rerun()
        st.error("Unknown user or wrong password.")
    return None


def _oidc(st: Any, settings: Settings) -> str | None:
    if "auth" not in st.secrets:
        st.error("CARBONPIPE_DASHBOARD_AUTH=oidc needs an [auth] section in "
                 ".streamlit/secrets.toml (redirect_uri, cookie_secret, client_id, "
                 "client_secret, server_metadata_url).")  # fmt: skip
        return None
    if not st.user.is_logged_in:
        st.button("Sign in", on_click=st.login)
        return None
    claim = st.user.get(settings.dashboard_oidc_user_claim)
    return str(claim) if claim else None


def require_login(st: Any, settings: Settings) -> str | None:
    """The signed-in viewer's user id (None when login is off). Without credentials it draws
    only the sign-in form and stops the script: nothing else of the page is sent."""
    if settings.dashboard_auth == "none":
        return None
    if settings.dashboard_auth == "password":
        user = st.session_state.get(SESSION_KEY) or _password_form(st, settings)
    else:
        user = _oidc(st, settings)
    if not user:
        st.stop()
    with st.sidebar:
        st.text(f"signed in as {user}")
        if st.button("Sign out"):
            st.session_state.pop(SESSION_KEY, None)
            if settings.dashboard_auth == "oidc":
                st.logout()
            st.rerun()
    return str(user)


def main(argv: list[str] | None = None) -> int:
    """``carbonpipe dashboard --hash-password``: read a password (no echo), print its hash."""
    import getpass

    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        print("the two passwords differ")
        return 1
    print(hash_password(first))
    return 0
