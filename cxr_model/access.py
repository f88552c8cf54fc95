"""Who is acting and what they may do: identities and roles, from ID-token claims and a policy.

Roles, least to most: ``viewer`` (reads only), ``reviewer`` (saves decisions, acknowledges and
escalates alerts; sees their own decisions), ``lead`` (a reviewer who may see everyone's).
A person's role comes from an ID-token claim (e.g. Keycloak client roles mapped into a ``roles``
claim) or from lists of e-mail addresses in the policy, whichever grants more; anyone signed in
and in neither is a ``viewer``. Pure code: ``dashboard/auth.py`` reads ``st.user`` and the
``[roles]`` section of ``.streamlit/secrets.toml`` and calls :func:`identity_from_claims`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ROLES = ("viewer", "reviewer", "lead")


def _rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else 0


def can_review(role: str) -> bool:
    """May save decisions and acknowledge or escalate alerts."""
    return _rank(role) >= _rank("reviewer")


def sees_everyone(role: str) -> bool:
    """May see every person's decisions (a lead), not only their own."""
    return role == "lead"


@dataclass(frozen=True)
class Identity:
    """The person behind a session.

    Attributes:
        name: what the records carry (the e-mail address, else the token's ``sub``); at most 120
            characters are stored with a decision.
        display: a name to greet them by.
        role: one of :data:`ROLES`.
        local: True for the single local user when sign-in is not configured.
    """

    name: str
    display: str
    role: str
    local: bool = False

    @property
    def can_review(self) -> bool:
        return can_review(self.role)

    @property
    def sees_everyone(self) -> bool:
        return sees_everyone(self.role)


#: The one user of an installation without sign-in (``make run`` on a workstation): they own every
#: decision on it, so they review and see everything.
LOCAL_USER = Identity(name="local", display="Local user", role="lead", local=True)


def _strings(value) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(v.strip().lower() for v in value.replace(",", " ").split() if v.strip())
    return frozenset(str(v).strip().lower() for v in value)


@dataclass(frozen=True)
class RolePolicy:
    """How roles are granted (the ``[roles]`` section of ``secrets.toml``).

    Attributes:
        claim: ID-token claim holding the person's roles, a list or a space/comma separated string;
            a dotted path reaches into nested claims (``realm_access.roles``).
        reviewer_values: claim values that make a reviewer (compared case-insensitively).
        lead_values: claim values that make a lead.
        reviewers: e-mail addresses that are reviewers whatever the token says.
        leads: e-mail addresses that are leads.
    """

    claim: str = "roles"
    reviewer_values: frozenset[str] = field(default_factory=lambda: frozenset({"reviewer"}))
    lead_values: frozenset[str] = field(default_factory=lambda: frozenset({"lead"}))
    reviewers: frozenset[str] = frozenset()
    leads: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, m: Mapping | None) -> RolePolicy:
        """From a ``[roles]`` table; unknown keys are refused (a typo would silently grant nothing).

        Raises:
            ValueError: naming the unknown key.
        """
        m = dict(m or {})
        unknown = set(m) - {"claim", "reviewer_values", "lead_values", "reviewers", "leads"}
        if unknown:
            raise ValueError(f"[roles] in secrets.toml has unknown key(s): {', '.join(sorted(unknown))}")
        kw = {k: _strings(m[k]) for k in ("reviewer_values", "lead_values", "reviewers", "leads") if k in m}
        if "claim" in m:
            kw["claim"] = str(m["claim"])
        return cls(**kw)


def _claim(claims: Mapping, path: str):
    value = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def role_for(claims: Mapping, policy: RolePolicy) -> str:
    """The highest role the claims or the e-mail lists grant; ``viewer`` when none does."""
    email = str(claims.get("email") or "").strip().lower()
    values = _strings(_claim(claims, policy.claim))
    if email and email in policy.leads or values & policy.lead_values:
        return "lead"
    if email and email in policy.reviewers or values & policy.reviewer_values:
        return "reviewer"
    return "viewer"


def identity_from_claims(claims: Mapping, policy: RolePolicy) -> Identity:
    """The identity of a signed-in person from their ID-token claims (``st.user``).

    Raises:
        ValueError: the token carries neither ``email`` nor ``sub`` (nobody to record).
    """
    name = str(claims.get("email") or claims.get("sub") or "").strip()
    if not name:
        raise ValueError("the identity provider's token has neither 'email' nor 'sub'")
    display = str(claims.get("name") or claims.get("preferred_username") or name)
    return Identity(name=name, display=display, role=role_for(claims, policy))
