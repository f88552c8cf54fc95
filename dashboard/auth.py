"""Who is using the dashboard: OpenID Connect sign-in through Streamlit (``st.login``/``st.user``),
or the single local user when sign-in is not configured.

Sign-in is on when ``.streamlit/secrets.toml`` has an ``[auth]`` section (see the README,
"Sign-in and roles"); roles come from its ``[roles]`` section (``cxr_model.access.RolePolicy``).
Pages call :func:`current_identity`: signed out, it draws the sign-in screen and stops the run, so
no page shows anything before sign-in. Actions worth an audit row call :func:`audit`.

Before sending the browser to the identity provider, the sign-in button fetches the provider's
discovery document: when the provider cannot be reached the page says so, instead of Streamlit's
bare "Authentication error".
"""
from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlparse

import streamlit as st

from cxr_model import audit as audit_trail
from cxr_model.access import LOCAL_USER, Identity, RolePolicy, identity_from_claims
from dashboard.text import plain

log = logging.getLogger(__name__)
IDP_TIMEOUT_S = 5.0


def auth_section() -> Mapping | None:
    """The ``[auth]`` section of the secrets, or ``None`` (sign-in not configured)."""
    try:
        section = st.secrets.get("auth")
    except FileNotFoundError:  # no secrets.toml at all (StreamlitSecretNotFoundError is one)
        return None
    return section or None


def configured() -> bool:
    return auth_section() is not None


def _provider(section: Mapping) -> tuple[str | None, str]:
    """``(provider name for st.login or None, discovery URL)`` of the configured provider."""
    if "server_metadata_url" in section:
        return None, str(section["server_metadata_url"])
    for name, value in section.items():
        if isinstance(value, Mapping) and "server_metadata_url" in value:
            return str(name), str(value["server_metadata_url"])
    raise ValueError("[auth] in secrets.toml names no server_metadata_url (the provider's discovery document)")


def idp_problem(url: str, timeout: float = IDP_TIMEOUT_S) -> str | None:
    """Why the identity provider's discovery document cannot be fetched, or ``None`` when it can."""
    host = urlparse(url).netloc or url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (an https/http URL from secrets)
            if r.status != 200:
                return f"the sign-in service at {host} answered HTTP {r.status}"
    except urllib.error.HTTPError as exc:
        return f"the sign-in service at {host} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"the sign-in service at {host} cannot be reached ({getattr(exc, 'reason', exc)})"
    return None


def _policy() -> RolePolicy:
    try:
        roles = st.secrets.get("roles")
    except FileNotFoundError:
        roles = None
    return RolePolicy.from_mapping(roles)


def _sign_in_screen(section: Mapping) -> None:
    st.title("Clinician AI dashboard")
    st.write("Sign in with your hospital account to review studies and record decisions.")
    try:
        provider, discovery = _provider(section)
    except ValueError as exc:
        st.error(f"Sign-in is misconfigured: {plain(exc)}")
        return
    if st.button("Sign in", key="auth_sign_in", type="primary"):
        problem = idp_problem(discovery)
        if problem:
            log.warning("sign-in refused before redirect: %s", problem)
            st.error(f"Cannot sign in now: {plain(problem)}. Nothing was changed; try again in a moment, "
                     "or ask IT whether the identity provider is up.")
        elif provider:
            st.login(provider)
        else:
            st.login()


def signed_in() -> bool:
    """True for the local user and for a signed-in session."""
    return not configured() or bool(st.user.is_logged_in)


def signed_in_identity() -> Identity | None:
    """The identity of this session without drawing anything (``None`` when signed out).

    Raises:
        ValueError: the token names nobody, or the ``[roles]`` section is malformed.
    """
    if not configured():
        return LOCAL_USER
    if not st.user.is_logged_in:
        return None
    return identity_from_claims(st.user.to_dict(), _policy())


def current_identity() -> Identity:
    """The person using this session; signed out, the sign-in screen is drawn and the run stops."""
    try:
        me = signed_in_identity()
    except ValueError as exc:
        st.error(f"Signed in, but the dashboard cannot tell who you are: {plain(exc)}. Ask IT to check the "
                 "identity provider's claims and the [roles] section of secrets.toml.")
        if st.button("Sign out", key="auth_sign_out_bad"):
            st.logout()
        st.stop()
    if me is None:
        _sign_in_screen(auth_section())
        st.stop()
    return me


def sidebar(me: Identity) -> None:
    """Who is signed in (and a sign-out button), or that the app runs as one local user."""
    if me.local:
        st.caption("**Single local user**: sign-in is not configured, so decisions are saved as `local` "
                   "(see the README, 'Sign-in and roles').")
        return
    st.markdown(f"Signed in as **{plain(me.display)}** ({plain(me.name)})")
    st.caption(f"Role: {me.role}" + ("" if me.can_review else " (read only)"))
    if st.button("Sign out", key="auth_sign_out"):
        st.logout()


def audit(action: str, subject: str, detail: dict | None = None, me: Identity | None = None) -> str | None:
    """Append an audit row for this session's person; returns ``None`` or why it failed (never raises).

    A failed audit write is logged and reported to the caller, which decides what to tell the user.
    """
    try:
        me = me or signed_in_identity()
    except ValueError as exc:
        return f"the audit trail could not be written ({exc})"
    if me is None:
        return "the audit trail could not be written (nobody is signed in)"
    try:
        audit_trail.record(actor=me.name, role=me.role, action=action, subject=subject, detail=detail)
    except Exception as exc:  # the database may be down: the caller shows a message, never a traceback
        log.exception("audit %s on %s failed", action, subject)
        return f"the audit trail could not be written ({type(exc).__name__})"
    return None
