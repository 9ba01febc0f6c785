"""Our own LEXS-SR test messages, modelled field for field on OJBC's N-DEx samples (none copied).

``search_envelope`` writes a ``doStructuredSearchRequest`` in either dialect: the message
metadata (version, time, message id, origin, destination N-DEx, the ReasonText purpose
attribute), the user assertion, the search metadata (MaxItemMatches) and one
``DigestQueryStatement`` per field, as the N-DEx sample does.
"""

from __future__ import annotations

from collections.abc import Sequence

ULEX = {
    "wrapper": "http://ulex.gov/searchretrieve/2.0",
    "message": "http://ulex.gov/ulex/2.0",
    "lexs": "http://lexs.gov/lexs/4.0",
    "digest": "http://lexs.gov/digest/4.0",
    "j": "http://niem.gov/niem/domains/jxdm/4.1",
}
LEXS31 = {
    "wrapper": "http://usdoj.gov/leisp/lexs/searchretrieve/3.1",
    "message": "http://usdoj.gov/leisp/lexs/3.1",
    "lexs": "http://usdoj.gov/leisp/lexs/3.1",
    "digest": "http://usdoj.gov/leisp/lexs/digest/3.1",
    "j": "http://niem.gov/niem/domains/jxdm/4.0",
}
SOAP_ACTION = "http://usdoj.gov/leisp/lexs/publishdiscover/3.1/doStructuredSearch"


def person(inner: str) -> str:
    """A person digest field: ``inner`` is what goes inside ``lexsdigest:Person``."""
    return (
        f"<lexsdigest:EntityPerson><lexsdigest:Person>{inner}</lexsdigest:Person></lexsdigest:EntityPerson>"
    )


def location(inner: str) -> str:
    """An address digest field: ``inner`` goes inside ``nc:StructuredAddress``."""
    return (
        "<lexsdigest:EntityLocation><nc:Location><nc:LocationAddress><nc:StructuredAddress>"
        f"{inner}</nc:StructuredAddress></nc:LocationAddress></nc:Location></lexsdigest:EntityLocation>"
    )


def name_statements(first: str = "", last: str = "", middle: str = "", dob: str = "") -> list[str]:
    """One statement per name part, as the N-DEx sample splits them."""
    out = []
    if last:
        out.append(person(f"<nc:PersonName><nc:PersonSurName>{last}</nc:PersonSurName></nc:PersonName>"))
    if first:
        out.append(person(f"<nc:PersonName><nc:PersonGivenName>{first}</nc:PersonGivenName></nc:PersonName>"))
    if middle:
        out.append(
            person(f"<nc:PersonName><nc:PersonMiddleName>{middle}</nc:PersonMiddleName></nc:PersonName>")
        )
    if dob:
        out.append(person(f"<nc:PersonBirthDate><nc:Date>{dob}</nc:Date></nc:PersonBirthDate>"))
    return out


def search_body(
    statements: Sequence[str],
    *,
    dialect: dict[str, str] = ULEX,
    reason: str | None = "Criminal Justice",
    user_id: str = "det.jones",
    ori: str = "WVFBI9900",
    max_items: int | None = 100,
    assertion: bool = True,
    message_id: str = "uuid:5d1c2b8e-0000-4000-8000-00000000a001",
) -> str:
    """The ``doStructuredSearchRequest`` element, as text."""
    ulex = dialect is ULEX
    m = "ulex" if ulex else "lexs"
    match = "QueryMatchCode" if ulex else "QueryMatch"
    query = "".join(
        f"<{m}:DigestQueryStatement><lexs:DigestQueryField>{s}</lexs:DigestQueryField>"
        f"<{m}:{match}>exact</{m}:{match}></{m}:DigestQueryStatement>"
        for s in statements
    )
    if ulex:
        version = (
            "<ulex:ULEXFrameworkVersionText>2.0</ulex:ULEXFrameworkVersionText><ulex:ULEXImplementation>"
            "<ulex:ULEXImplementationVersionText>4.0</ulex:ULEXImplementationVersionText>"
            "<ulex:ULEXImplementationName>LEXS</ulex:ULEXImplementationName></ulex:ULEXImplementation>"
            f"<ulex:MessageDateTime>2024-03-01T10:00:00-05:00</ulex:MessageDateTime>"
            f"<wsa:MessageID>{message_id}</wsa:MessageID>"
        )
        purpose = (
            "<ulex:SRMessageMetadataDomainAttribute><ulex:AttributeName>gfipm:ext:user:NDEx:ReasonText"
            f"</ulex:AttributeName><ulex:AttributeValueText>{reason}</ulex:AttributeValueText>"
            "<ulex:DomainName>N-DEx</ulex:DomainName></ulex:SRMessageMetadataDomainAttribute>"
        )
        user = (
            "<ulex:UserAssertionSAML><saml2:Assertion><saml2:Subject><saml2:NameID>"
            f"{user_id}</saml2:NameID></saml2:Subject><saml2:AttributeStatement>"
            '<saml2:Attribute Name="gfipm:2.0:user:ORI">'
            f"<saml2:AttributeValue>{ori}</saml2:AttributeValue></saml2:Attribute>"
            "</saml2:AttributeStatement></saml2:Assertion></ulex:UserAssertionSAML>"
        )
        requested = "<lexs:RequestedDataCategoryCode>Person</lexs:RequestedDataCategoryCode>"
        max_element = "MaxItemMatchesNumeric"
    else:
        version = (
            "<lexs:LEXSVersion>3.1.4</lexs:LEXSVersion>"
            "<lexs:MessageDateTime>2024-03-01T10:00:00</lexs:MessageDateTime>"
            f"<lexs:MessageSequenceNumber>{message_id}</lexs:MessageSequenceNumber>"
        )
        purpose = (
            "<lexs:DomainAttribute><lexs:AttributeName>ReasonText</lexs:AttributeName>"
            f"<lexs:AttributeValue>{reason}</lexs:AttributeValue><lexs:Domain>N-DEx</lexs:Domain>"
            "</lexs:DomainAttribute>"
        )
        user = (
            f"<lexs:UserAssertion><lexs:UserID>{user_id}</lexs:UserID>"
            "<nc:OrganizationName>Test PD</nc:OrganizationName>"
            f"<lexs:ORI>{ori}</lexs:ORI></lexs:UserAssertion>"
        )
        requested = "<lexs:RequestedData>Person</lexs:RequestedData>"
        max_element = "MaxItemMatches"
    ulex_ns = f'xmlns:ulex="{dialect["message"]}" ' if ulex else ""
    return (
        f'<srq:doStructuredSearchRequest xmlns:srq="{dialect["wrapper"]}" '
        f"{ulex_ns}"
        f'xmlns:lexs="{dialect["lexs"]}" xmlns:lexsdigest="{dialect["digest"]}" xmlns:j="{dialect["j"]}" '
        'xmlns:nc="http://niem.gov/niem/niem-core/2.0" xmlns:wsa="http://www.w3.org/2005/08/addressing" '
        'xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion">'
        f"<{m}:StructuredSearchRequestMessage><{m}:SRMessageMetadata>{version}"
        f"<{m}:MessageOriginMetadata><lexs:SystemIdentifier>"
        "<nc:OrganizationName>Test PD</nc:OrganizationName></lexs:SystemIdentifier>"
        f"<lexs:SystemContact/></{m}:MessageOriginMetadata>"
        "<lexs:MessageDestinationIdentifier><lexs:OriginatingAgencyID>WVNDX0001</lexs:OriginatingAgencyID>"
        "<nc:OrganizationName>FBI CJIS</nc:OrganizationName><lexs:SystemID>N-DEx</lexs:SystemID>"
        "</lexs:MessageDestinationIdentifier>"
        f"{purpose if reason is not None else ''}</{m}:SRMessageMetadata>"
        f"{user if assertion else ''}"
        f"<{m}:SearchRequestMetadata>{requested}"
        f"{f'<{m}:{max_element}>{max_items}</{m}:{max_element}>' if max_items is not None else ''}"
        f"</{m}:SearchRequestMetadata>"
        f"<{m}:StructuredQuery>{query}</{m}:StructuredQuery>"
        f"</{m}:StructuredSearchRequestMessage></srq:doStructuredSearchRequest>"
    )


def data_item_envelope(
    item_id: str,
    *,
    dialect: dict[str, str] = ULEX,
    user_id: str = "det.jones",
    ori: str = "WVFBI9900",
    reason: str = "Criminal Justice",
) -> bytes:
    """A whole SOAP ``getDataItemRequest`` for one ``DataItemID`` of an earlier ``doSearchResponse``:
    the search request's metadata and user assertion, then the id."""
    search = search_body([], dialect=dialect, user_id=user_id, ori=ori, reason=reason)
    m = "ulex" if dialect is ULEX else "lexs"
    head, _, rest = search.partition(f"<{m}:StructuredSearchRequestMessage>")
    metadata_and_user = rest.partition(f"<{m}:SearchRequestMetadata>")[0]
    return envelope(
        head.replace("doStructuredSearchRequest", "getDataItemRequest")
        + f"<{m}:DataItemRequestMessage>{metadata_and_user}"
        + f"<{m}:DataItemID>{item_id}</{m}:DataItemID>"
        + f"</{m}:DataItemRequestMessage></srq:getDataItemRequest>"
    )


def envelope(body: str) -> bytes:
    """A SOAP 1.1 envelope around a body element."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f"{body}</soap:Body></soap:Envelope>"
    ).encode()


def search_envelope(statements: Sequence[str], **kwargs: object) -> bytes:
    """A whole SOAP request for ``doStructuredSearch``."""
    return envelope(search_body(statements, **kwargs))  # type: ignore[arg-type]


def operation_envelope(operation: str, dialect: dict[str, str] = ULEX) -> bytes:
    """``getCapabilitiesRequest`` / ``getAvailabilityRequest`` (no user assertion: applications ask)."""
    return envelope(f'<srq:{operation}Request xmlns:srq="{dialect["wrapper"]}"/>')


# Hostile bodies (defusedxml's checklist).
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&x;</soap:Body>'
    b"</soap:Envelope>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b']><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol9;'
    b"</soap:Body></soap:Envelope>"
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>'
)


def deeply_nested(depth: int = 5000) -> bytes:
    """A body nesting ``depth`` elements inside a SOAP envelope."""
    return envelope("<a>" * depth + "</a>" * depth)
