"""Mutations of signed SAML responses, as Hypothesis strategies (for ``test_saml_fuzz``).

A mutation takes the response's bytes and a draw function and returns new bytes: structural
edits on the parsed tree (remove, duplicate, move or wrap elements; set, delete or add
attributes; replace text; rename tags; inject comments), byte edits (flips, insertions,
deletions, truncation, slices repeated), encoding tricks (UTF-16, BOMs, declarations, character
references, CDATA, DOCTYPE), and huge values (long text, deep nesting, many attributes).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from lxml import etree

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}
_LENIENT = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
Draw = Callable[[st.SearchStrategy[Any]], Any]
Mutation = Callable[[bytes, Draw], bytes]

ATTRIBUTES = [
    "ID",
    "Version",
    "Destination",
    "InResponseTo",
    "Recipient",
    "NotOnOrAfter",
    "NotBefore",
    "IssueInstant",
    "Method",
    "Algorithm",
    "URI",
    "Format",
    "Name",
    "FriendlyName",
    "Value",
    "SessionIndex",
    "{http://www.w3.org/XML/1998/namespace}space",
    "Id",
]
TEXTS = [
    "",
    " ",
    "admin@acme.test",
    "alice@acme.test.evil.com",
    "https://idp.example.test/metadata",
    "https://evil.example/metadata",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-13-45T99:99:99Z",
    "0001-01-01T00:00:00+14:00",
    "2.0",
    "1.0",
    "_req-1",
    "urn:oasis:names:tc:SAML:2.0:cm:bearer",
    "urn:oasis:names:tc:SAML:2.0:status:Success",
    "urn:oasis:names:tc:SAML:2.0:status:Requester",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "#_a",
    "#",
    "\u202e\u200b",
    "A" * 70_000,
    "AAAA",
    "%%%",
]
TAGS = [
    "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion",
    "{urn:oasis:names:tc:SAML:2.0:assertion}EncryptedAssertion",
    "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer",
    "{urn:oasis:names:tc:SAML:2.0:assertion}NameID",
    "{urn:oasis:names:tc:SAML:2.0:assertion}Subject",
    "{urn:oasis:names:tc:SAML:2.0:protocol}Response",
    "{urn:oasis:names:tc:SAML:2.0:protocol}Extensions",
    "{http://www.w3.org/2000/09/xmldsig#}Signature",
    "{http://www.w3.org/2000/09/xmldsig#}Object",
    "{http://www.w3.org/2000/09/xmldsig#}Reference",
    "{urn:other}Assertion",
    "Assertion",
]
# text lxml can hold (no NUL or other C0 controls, no lone surrogates)
texts = st.one_of(
    st.sampled_from(TEXTS),
    # XML 1.0 characters only (lxml refuses the others when the tree is built): no surrogates,
    # no controls, not U+FFFE / U+FFFF
    st.text(
        st.characters(
            codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="\ufffe\uffff"
        ),
        max_size=40,
    ),
)


def _tree(data: bytes) -> etree._Element | None:
    try:
        return etree.fromstring(data, parser=_LENIENT)
    except etree.XMLSyntaxError:
        return None


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _pick(draw: Draw, items: list[Any]) -> Any:
    return items[draw(st.integers(0, len(items) - 1))]


def _tree_mutation(edit: Callable[[etree._Element, Draw], None]) -> Mutation:
    def mutate(data: bytes, draw: Draw) -> bytes:
        root = _tree(data)
        if root is None:
            return data
        edit(root, draw)
        return bytes(etree.tostring(root))

    mutate.__name__ = edit.__name__
    return mutate


@_tree_mutation
def remove_element(root: etree._Element, draw: Draw) -> None:
    children = [e for e in _elements(root) if e is not root]
    if children:
        victim = _pick(draw, children)
        parent = victim.getparent()
        if parent is not None:
            parent.remove(victim)


@_tree_mutation
def duplicate_element(root: etree._Element, draw: Draw) -> None:
    """A copy next to the original, or inside any other element (signature wrapping)."""
    elements = _elements(root)
    original = _pick(draw, elements)
    target = _pick(draw, elements)
    clone = copy.deepcopy(original)
    if draw(st.booleans()) and original.getparent() is not None:
        original.addnext(clone)
    else:
        target.insert(draw(st.integers(0, len(target))), clone)


@_tree_mutation
def move_element(root: etree._Element, draw: Draw) -> None:
    elements = [e for e in _elements(root) if e is not root]
    if not elements:
        return
    moved = _pick(draw, elements)
    target = _pick(draw, _elements(root))
    if moved is target or moved in target.iterancestors():
        return
    target.insert(draw(st.integers(0, len(target))), moved)


@_tree_mutation
def wrap_element(root: etree._Element, draw: Draw) -> None:
    """Put an element (e.g. the signed assertion) inside a new one (ds:Object, Extensions…)."""
    elements = [e for e in _elements(root) if e is not root]
    if not elements:
        return
    inner = _pick(draw, elements)
    parent = inner.getparent()
    if parent is None:
        return
    wrapper = etree.Element(draw(st.sampled_from(TAGS)))
    parent.replace(inner, wrapper)
    wrapper.append(inner)


@_tree_mutation
def set_attribute(root: etree._Element, draw: Draw) -> None:
    element = _pick(draw, _elements(root))
    name = draw(
        st.one_of(st.sampled_from(ATTRIBUTES), st.sampled_from(list(element.attrib) or ["ID"]))
    )
    others = [v for e in _elements(root) for v in e.attrib.values()]
    value = draw(st.one_of(texts, st.sampled_from(others or [""])))
    element.set(name, value)


@_tree_mutation
def delete_attribute(root: etree._Element, draw: Draw) -> None:
    element = _pick(draw, _elements(root))
    if element.attrib:
        del element.attrib[draw(st.sampled_from(sorted(element.attrib)))]


@_tree_mutation
def set_text(root: etree._Element, draw: Draw) -> None:
    element = _pick(draw, _elements(root))
    others = [e.text for e in _elements(root) if e.text]
    element.text = draw(st.one_of(texts, st.sampled_from(others or [""])))


@_tree_mutation
def inject_comment(root: etree._Element, draw: Draw) -> None:
    """``admin@acme.test<!---->.evil.com``: a comment splitting a text node."""
    element = _pick(draw, [e for e in _elements(root) if e.text] or _elements(root))
    text = element.text or ""
    cut = draw(st.integers(0, len(text)))
    element.text = text[:cut]
    comment = etree.Comment(draw(st.sampled_from(["", "x", " - "])))
    element.insert(0, comment)
    comment.tail = text[cut:] + draw(st.sampled_from(["", ".evil.com"]))


@_tree_mutation
def rename_element(root: etree._Element, draw: Draw) -> None:
    element = _pick(draw, _elements(root))
    element.tag = draw(st.sampled_from(TAGS))


@_tree_mutation
def nest_deeply(root: etree._Element, draw: Draw) -> None:
    element = _pick(draw, _elements(root))
    for _ in range(draw(st.integers(1, 3000))):
        element = etree.SubElement(element, draw(st.sampled_from(TAGS)))


@_tree_mutation
def many_attributes(root: etree._Element, draw: Draw) -> None:
    element = _pick(draw, _elements(root))
    for i in range(draw(st.integers(1, 5000))):
        element.set(f"a{i}", "x")


def flip_bytes(data: bytes, draw: Draw) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out) - 1))
        out[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def splice_bytes(data: bytes, draw: Draw) -> bytes:
    at = draw(st.integers(0, len(data)))
    end = draw(st.integers(at, min(len(data), at + 200)))
    insert = draw(
        st.one_of(st.binary(max_size=20), st.sampled_from([b"<", b">", b"&", b"]]>", b"\x00"]))
    )
    return data[:at] + insert + data[end:]


def truncate(data: bytes, draw: Draw) -> bytes:
    return data[: draw(st.integers(0, len(data)))]


def repeat_slice(data: bytes, draw: Draw) -> bytes:
    at = draw(st.integers(0, len(data)))
    end = draw(st.integers(at, len(data)))
    return data[:end] + data[at:end] * draw(st.integers(1, 3)) + data[end:]


def reencode(data: bytes, draw: Draw) -> bytes:
    text = data.decode("utf-8", "replace")
    body = text.split("?>", 1)[1] if text.startswith("<?xml") else text
    trick = draw(
        st.sampled_from(
            ["utf-16", "utf-16-bom", "latin-1-decl", "utf-8-bom", "ebcdic", "lying-decl"]
        )
    )
    if trick == "utf-16":
        return ('<?xml version="1.0" encoding="UTF-16"?>' + body).encode("utf-16")
    if trick == "utf-16-bom":
        return body.encode("utf-16")
    if trick == "latin-1-decl":
        return ('<?xml version="1.0" encoding="ISO-8859-1"?>' + body).encode("latin-1", "replace")
    if trick == "utf-8-bom":
        return b"\xef\xbb\xbf" + data
    if trick == "ebcdic":
        return ('<?xml version="1.0" encoding="cp500"?>' + body).encode("cp500", "replace")
    return b'<?xml version="1.0" encoding="UTF-16LE"?>' + body.encode("utf-8")


def character_references(data: bytes, draw: Draw) -> bytes:
    """Replace letters inside text nodes by ``&#xNN;`` (same document, other bytes)."""
    text = data.decode("utf-8", "replace")
    rng = random.Random(draw(st.integers(0, 2**32)))
    out = []
    in_text = False
    for ch in text:
        if ch == ">":
            in_text = True
        elif ch == "<":
            in_text = False
        elif in_text and ch.isalnum() and rng.random() < 0.3:
            out.append(f"&#x{ord(ch):x};")
            continue
        out.append(ch)
    return "".join(out).encode()


def wrap_cdata(data: bytes, draw: Draw) -> bytes:
    text = data.decode("utf-8", "replace")
    start = text.find(">", draw(st.integers(0, max(0, len(text) - 1)))) + 1
    end = text.find("<", start)
    if start <= 0 or end < 0:
        return data
    return (text[:start] + "<![CDATA[" + text[start:end] + "]]>" + text[end:]).encode()


def add_doctype(data: bytes, draw: Draw) -> bytes:
    decl = draw(
        st.sampled_from(
            [
                b'<!DOCTYPE r [<!ENTITY x "y">]>',
                b'<!DOCTYPE r SYSTEM "http://evil.example/x.dtd">',
                b"<!doctype r>",
                b'<! ENTITY x SYSTEM "file:///etc/passwd">',
            ]
        )
    )
    return decl + data


MUTATIONS: list[Mutation] = [
    remove_element,
    duplicate_element,
    move_element,
    wrap_element,
    set_attribute,
    delete_attribute,
    set_text,
    inject_comment,
    rename_element,
    nest_deeply,
    many_attributes,
    flip_bytes,
    splice_bytes,
    truncate,
    repeat_slice,
    reencode,
    character_references,
    wrap_cdata,
    add_doctype,
]


@st.composite
def random_xml(draw: Draw) -> bytes:
    """A random tree of SAML-ish elements."""

    def build(depth: int) -> etree._Element:
        element = etree.Element(draw(st.sampled_from(TAGS)))
        for name in draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=3, unique=True)):
            element.set(name, draw(texts))
        if draw(st.booleans()):
            element.text = draw(texts)
        if depth < 4:
            for _ in range(draw(st.integers(0, 3))):
                element.append(build(depth + 1))
        return element

    root = build(0)
    if draw(st.booleans()):
        root.tag = "{urn:oasis:names:tc:SAML:2.0:protocol}Response"
        root.set("Version", "2.0")
    return bytes(etree.tostring(root))
