"""Hardened XML parsing for everything LEIS reads over LEXS-SR (CONVENTIONS: edge protocols).

defusedxml's list of attacks is the checklist, each closed here rather than by luck:

- external entities (XXE) and external DTD retrieval: no DTD is loaded, entities are never
  resolved, the network is never touched, and any ``<!DOCTYPE`` is refused before parsing;
- entity expansion (billion laughs, quadratic blowup): no DOCTYPE means no entity can be
  declared, and an undeclared entity reference is a parse error;
- decompression bombs: callers refuse compressed bodies; the byte bound below applies to what
  is parsed;
- XInclude and XSLT: never processed;
- resource exhaustion: bounded input size, element depth and element count, ``huge_tree`` off.

Errors are ``XmlRefused`` with an UPPER_SNAKE reason, so the transports can answer with the
same fault shape as any other refusal.
"""

from __future__ import annotations

from lxml import etree

from leis.common.errors import (
    MALFORMED_XML,
    XML_DTD_FORBIDDEN,
    XML_ENCODING_REFUSED,
    XML_TOO_DEEP,
    XML_TOO_LARGE,
    XML_TOO_MANY_ELEMENTS,
)

DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_DEPTH = 48
DEFAULT_MAX_ELEMENTS = 20_000


class XmlRefused(ValueError):
    """An XML document LEIS will not read; ``reason`` is UPPER_SNAKE."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_PARSER = _parser()


def parse(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> etree._Element:
    """The root element of ``data``, or ``XmlRefused``.

    Reasons: ``XML_TOO_LARGE``, ``XML_ENCODING_REFUSED``, ``XML_DTD_FORBIDDEN`` (any DOCTYPE:
    XXE, billion laughs, external DTDs), ``MALFORMED_XML``, ``XML_TOO_DEEP``,
    ``XML_TOO_MANY_ELEMENTS``.
    """
    if len(data) > max_bytes:
        raise XmlRefused(XML_TOO_LARGE, f"the XML document is larger than {max_bytes} bytes")
    if b"\x00" in data or data.startswith((b"\xfe\xff", b"\xff\xfe")):
        # UTF-16/32 would hide a DOCTYPE from the byte check below: only UTF-8 (or ASCII) is read.
        raise XmlRefused(XML_ENCODING_REFUSED, "only UTF-8 XML is accepted")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise XmlRefused(XML_DTD_FORBIDDEN, "document type declarations and entities are refused")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        if "depth" in (exc.msg or "").lower():
            # libxml2 stops at its own nesting limit (256) before our shape check runs.
            raise XmlRefused(XML_TOO_DEEP, f"the document nests deeper than {max_depth} elements") from None
        raise XmlRefused(MALFORMED_XML, f"the body is not well-formed XML: {exc.msg}") from None
    if root is None:
        raise XmlRefused(MALFORMED_XML, "the body holds no XML element")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRefused(XML_DTD_FORBIDDEN, "document type declarations and entities are refused")
    _check_shape(root, max_depth, max_elements)
    return root


def _check_shape(root: etree._Element, max_depth: int, max_elements: int) -> None:
    count = 0
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        count += 1
        if count > max_elements:
            raise XmlRefused(XML_TOO_MANY_ELEMENTS, f"the document has more than {max_elements} elements")
        if depth > max_depth:
            raise XmlRefused(XML_TOO_DEEP, f"the document nests deeper than {max_depth} elements")
        for child in element:
            if child.tag is etree.Entity:  # type: ignore[comparison-overlap]
                raise XmlRefused(XML_DTD_FORBIDDEN, "entity references are refused")
            if isinstance(child.tag, str):
                stack.append((child, depth + 1))
