"""Attribute mapping presets and per-connection overrides."""

from __future__ import annotations

import pytest

from sso_gate.saml.attributes import PRESETS, map_attributes

CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"


def test_entra_id_claim_uris() -> None:
    attrs = {
        CLAIMS + "emailaddress": ["alice@acme.test"],
        CLAIMS + "givenname": ["Alice"],
        CLAIMS + "surname": ["Anderson"],
        MS + "groups": ["a1b2-c3", "d4e5"],
        MS + "role": ["Admin"],
        "http://schemas.microsoft.com/identity/claims/objectidentifier": ["oid-123"],
    }
    m = map_attributes(attrs, name_id="opaque-nameid", preset="entra_id")
    assert (m.email, m.first_name, m.last_name) == ("alice@acme.test", "Alice", "Anderson")
    assert m.groups == ("a1b2-c3", "d4e5") and m.roles == ("Admin",) and m.idp_id == "oid-123"


def test_shibboleth_oids() -> None:
    attrs = {
        "urn:oid:0.9.2342.19200300.100.1.3": ["bob@uni.test"],
        "urn:oid:2.5.4.42": ["Bob"],
        "urn:oid:2.5.4.4": ["Brown"],
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1": ["staff"],
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": ["bob@uni.test"],
    }
    m = map_attributes(attrs, name_id="_transient123", preset="shibboleth")
    assert m.email == "bob@uni.test" and m.first_name == "Bob" and m.groups == ("staff",)
    assert m.idp_id == "bob@uni.test"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_reads_generic_names(preset: str) -> None:
    m = map_attributes(
        {"email": ["x@y.test"], "firstName": ["X"], "lastName": ["Y"]}, name_id="nid", preset=preset
    )
    assert m.email == "x@y.test" and m.first_name == "X" and m.last_name == "Y"


def test_overrides_custom_and_name_id_fallback() -> None:
    attrs = {"mailPrimary": ["c@acme.test"], "dept": ["R&D"], "cost": ["1", "2"]}
    m = map_attributes(
        attrs,
        name_id="c@acme.test",
        overrides={"email": "mailPrimary"},
        custom={"department": "dept", "cost_centers": "cost", "missing": "nope"},
    )
    assert m.email == "c@acme.test"
    assert m.custom == {"department": "R&D", "cost_centers": ["1", "2"]}
    assert map_attributes({}, name_id="d@acme.test").email == "d@acme.test"
    assert map_attributes({}, name_id="opaque").email is None
