"""Roles from ID-token claims or e-mail lists: who may save, who sees everyone's decisions."""
from __future__ import annotations

import pytest

from cxr_model.access import LOCAL_USER, ROLES, RolePolicy, can_review, identity_from_claims, role_for, sees_everyone

KEYCLOAK = RolePolicy.from_mapping({"claim": "resource_access.cxr-dashboard.roles",
                                    "reviewer_values": ["cxr-reviewer"], "lead_values": ["cxr-lead"]})


@pytest.mark.parametrize("claims, role", [
    ({"email": "a@h.org"}, "viewer"),                                            # signed in, granted nothing
    ({"email": "a@h.org", "roles": ["reviewer"]}, "reviewer"),
    ({"email": "a@h.org", "roles": "viewer Reviewer"}, "reviewer"),              # a string, any case
    ({"email": "a@h.org", "roles": ["reviewer", "lead"]}, "lead"),               # the highest wins
    ({"email": "a@h.org", "roles": "radiologist"}, "viewer"),
    ({"email": "a@h.org", "groups": ["reviewer"]}, "viewer"),                    # another claim counts for nothing
])
def test_role_from_the_default_roles_claim(claims, role):
    assert role_for(claims, RolePolicy()) == role


def test_role_from_a_nested_keycloak_claim():
    claims = {"email": "a@h.org", "resource_access": {"cxr-dashboard": {"roles": ["cxr-reviewer"]}}}
    assert role_for(claims, KEYCLOAK) == "reviewer"
    assert role_for({"email": "a@h.org", "resource_access": {"other": {"roles": ["cxr-lead"]}}}, KEYCLOAK) == "viewer"
    assert role_for({"email": "a@h.org", "resource_access": "not a table"}, KEYCLOAK) == "viewer"


def test_role_from_email_lists_grants_more_than_the_token():
    policy = RolePolicy.from_mapping({"reviewers": ["Ann@H.org"], "leads": "lead@h.org, boss@h.org"})
    assert role_for({"email": "ann@h.org"}, policy) == "reviewer"
    assert role_for({"email": "BOSS@h.org", "roles": ["reviewer"]}, policy) == "lead"
    assert role_for({"email": "eve@h.org"}, policy) == "viewer"
    assert role_for({"sub": "123"}, policy) == "viewer"  # no e-mail: lists cannot match


def test_a_typo_in_the_roles_section_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown key.*reviewer$"):
        RolePolicy.from_mapping({"reviewer": ["a@h.org"]})


def test_identity_is_the_email_else_the_subject_and_needs_one():
    i = identity_from_claims({"email": "a@h.org", "name": "Dr Ann", "roles": ["reviewer"]}, RolePolicy())
    assert (i.name, i.display, i.role, i.can_review, i.sees_everyone, i.local) == \
        ("a@h.org", "Dr Ann", "reviewer", True, False, False)
    assert identity_from_claims({"sub": "u-42"}, RolePolicy()).name == "u-42"
    with pytest.raises(ValueError, match="neither 'email' nor 'sub'"):
        identity_from_claims({"name": "nobody"}, RolePolicy())


def test_permissions_by_role_and_the_local_user():
    assert [can_review(r) for r in ROLES] == [False, True, True]
    assert [sees_everyone(r) for r in ROLES] == [False, False, True]
    assert not can_review("superuser")  # unknown roles grant nothing
    assert LOCAL_USER.local and LOCAL_USER.can_review and LOCAL_USER.sees_everyone
