"""SAML 2.0 service-provider core: pure functions over bytes and dataclasses.

Only :mod:`sso_gate.saml._xmlsig` calls the XML-signature library; everything that reads
identity data reads it from the element that signature covers.
"""
