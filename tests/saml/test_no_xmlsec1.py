"""`pip install` alone gives working SAML: verification runs with no xmlsec1 binary anywhere on
PATH (the subprocess runs with an empty PATH)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import datetime as dt, shutil
assert shutil.which("xmlsec1") is None, "xmlsec1 is on PATH"
from tests.fakes.saml_idp import FakeSamlIdP, encode
from sso_gate.saml.response import ResponseExpectations, verify_response
idp = FakeSamlIdP()
acs, sp = "https://app.test/acs", "https://app.test/sp"
r = idp.response(idp.signed_assertion(acs_url=acs, audience=sp, in_response_to="_r1"),
                 acs_url=acs, in_response_to="_r1")
v = verify_response(encode(r), ResponseExpectations(
    idp_entity_id=idp.entity_id, sp_entity_id=sp, acs_url=acs, certificates=(idp.cert,),
    now=dt.datetime.now(dt.UTC), in_response_to="_r1"))
print(v.name_id)
"""


def test_saml_verification_without_xmlsec1(tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PATH",)}
    env["PATH"] = str(empty)
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alice@acme.test"


def test_no_runtime_dependency_on_pysaml2() -> None:
    import sso_gate

    root = Path(sso_gate.__file__).parent
    assert not [
        p
        for p in root.rglob("*.py")
        if "saml2" in p.read_text().replace("saml2:", "") and "import saml2" in p.read_text()
    ]
