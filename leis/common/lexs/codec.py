"""Pure functions between LEXS-SR structured search messages and the ``leis_api`` messages.

Two dialects are read and written, told apart by the namespace of the body element and
answered in the dialect asked: LEXS-SR 3.1 (the N-DEx WSDL's operations) and ULEX 2.0 /
LEXS 4.0 (the bodies N-DEx and OJBC send today). Nothing here does I/O, and nothing here
judges a value: formats, ORIs, purposes and categories are the policy chain's job; the codec
only refuses what cannot be expressed as one ``leis.v1.SearchRequest`` at all:

- a digest field outside the PIA's four categories (``UNKNOWN_FIELD``, naming the element,
  R-Q-1): eye or hair colour, race, sex, FBI or state fingerprint numbers, age, height…;
- two different values for one field, e.g. two full names (``BATCH_QUERY``, R-Q-2);
  name parts arriving as separate ``DigestQueryStatement`` s are one subject;
- a purpose attribute the caller's agreement does not map to a lawful purpose
  (``PURPOSE_NOT_LAWFUL``) or none at all (``PURPOSE_REQUIRED``), R-Q-3;
- a missing user assertion (``MISSING_FIELD``), R-ID-3.

Field mapping (digest path below ``lexs:DigestQueryField`` ↔ ``SubjectQuery`` field) is the
table ``QUERY_FIELDS``; the same table writes outbound requests, and ``PATH_OF`` names a
LEXS element in a fault raised by the chain about a LEIS field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from google.protobuf import timestamp_pb2
from lxml import etree

from leis.common.errors import (
    MALFORMED_REQUEST,
    MISSING_FIELD,
    PURPOSE_NOT_LAWFUL,
    PURPOSE_REQUIRED,
    UNSUPPORTED_OPERATION,
    FieldViolation,
    InvalidArgument,
    LeisError,
    PermissionDenied,
)
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import records_pb2, subject_pb2

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
NC = "http://niem.gov/niem/niem-core/2.0"
STRUCTURES = "http://niem.gov/niem/structures/2.0"
WSA = "http://www.w3.org/2005/08/addressing"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
FAULT_NS = "urn:leis:lexs:fault:1"
FAULT_DOMAIN = "leis.dhs.gov"

OPERATIONS = ("doStructuredSearch", "getDataItem", "getCapabilities", "getAvailability")
# The N-DEx WSDL's SOAPAction prefix; a client may also send an empty action.
# Where a LEXS-SR service listens (the path of the WSDL's service address).
LEXS_PATH = "/lexs/SRWebService"
SOAP_ACTION_PREFIX = "http://usdoj.gov/leisp/lexs/publishdiscover/3.1/"
MAX_STATEMENTS = 64
QUERY_MATCH_CODES = frozenset({"exact", "fuzzy"})
PURPOSE_ATTRIBUTE_SUFFIXES = ("ReasonText", "PurposeText")
# Purpose text LEIS states when it asks a LEXS partner and the agreement names none.
DEFAULT_REASON_TEXT = {
    "CRIMINAL_LAW_ENFORCEMENT": "Criminal Justice",
    "NATIONAL_SECURITY": "Homeland Security",
    "EMPLOYMENT_BACKGROUND_CHECK": "Criminal Justice Employment",
}
ALIEN_NUMBER_CATEGORY = "A-Number"
ENCOUNTER_CATEGORY = "DHS Encounter ID"
DHS_ORGANIZATION = "U.S. Department of Homeland Security, Immigration and Customs Enforcement"
LEIS_SYSTEM_ID = "LEIS"
LESC_CONTACT = "Law Enforcement Support Center"


@dataclass(frozen=True)
class Dialect:
    """The namespaces and the few element names that differ between the two LEXS-SR dialects."""

    name: str
    wrapper: str  # doStructuredSearchRequest, doSearchResponse, get*Request/Response
    message: str  # message-level elements (ulex:… in 2.0, lexs:… in 3.1)
    lexs: str
    digest: str
    justice: str
    max_items: str
    max_items_requested: str
    item_count: str
    query_match: str
    status: str

    def __str__(self) -> str:
        return self.name


ULEX_2 = Dialect(
    name="ULEX 2.0 / LEXS 4.0",
    wrapper="http://ulex.gov/searchretrieve/2.0",
    message="http://ulex.gov/ulex/2.0",
    lexs="http://lexs.gov/lexs/4.0",
    digest="http://lexs.gov/digest/4.0",
    justice="http://niem.gov/niem/domains/jxdm/4.1",
    max_items="MaxItemMatchesNumeric",
    max_items_requested="MaxItemMatchesRequestedNumeric",
    item_count="NumberItemMatchesText",
    query_match="QueryMatchCode",
    status="DataItemStatusText",
)
LEXS_31 = Dialect(
    name="LEXS-SR 3.1",
    wrapper="http://usdoj.gov/leisp/lexs/searchretrieve/3.1",
    message="http://usdoj.gov/leisp/lexs/3.1",
    lexs="http://usdoj.gov/leisp/lexs/3.1",
    digest="http://usdoj.gov/leisp/lexs/digest/3.1",
    justice="http://niem.gov/niem/domains/jxdm/4.0",
    max_items="MaxItemMatches",
    max_items_requested="MaxItemMatchesRequested",
    item_count="NumberItemMatches",
    query_match="QueryMatch",
    status="DataItemStatus",
)
DIALECTS = {d.wrapper: d for d in (ULEX_2, LEXS_31)}


def _prefixes(dialect: Dialect) -> dict[str, str]:
    return {
        "nc": NC,
        "s": STRUCTURES,
        "j": dialect.justice,
        "lexs": dialect.lexs,
        "lexsdigest": dialect.digest,
        "wsa": WSA,
        **(
            {"ulex": dialect.message, "ulexsr": dialect.wrapper}
            if dialect is ULEX_2
            else {"srv": dialect.wrapper}
        ),
    }


# --------------------------------------------------------------------------- field table

_P = "lexsdigest:EntityPerson/lexsdigest:Person/"
_DL = _P + "j:PersonAugmentation/nc:DriverLicense/nc:DriverLicenseIdentification/"
_ADDR = "lexsdigest:EntityLocation/nc:Location/nc:LocationAddress/"
_STRUCT = _ADDR + "nc:StructuredAddress/"
_OTHER_ID = _P + "nc:PersonOtherIdentification/nc:IdentificationID"
_OTHER_CATEGORY = _P + "nc:PersonOtherIdentification/nc:IdentificationCategoryText"

# The SubjectQuery categories, the first half of every ``category.field`` name below.
_Category = Literal["name", "identifier", "address", "incident"]
_CATEGORIES: tuple[_Category, ...] = get_args(_Category)

# Digest path (below lexs:DigestQueryField) ↔ SubjectQuery field, in the order requests are written.
QUERY_FIELDS: tuple[tuple[str, str], ...] = (
    (_P + "nc:PersonName/nc:PersonGivenName", "name.first_name"),
    (_P + "nc:PersonName/nc:PersonMiddleName", "name.middle_name"),
    (_P + "nc:PersonName/nc:PersonSurName", "name.last_name"),
    (_P + "nc:PersonName/nc:PersonFullName", "name.full_name"),
    (_P + "nc:PersonBirthDate/nc:Date", "name.date_of_birth"),
    (_P + "nc:PersonSSNIdentification/nc:IdentificationID", "identifier.ssn"),
    (_P + "nc:PersonPassportIdentification/nc:IdentificationID", "identifier.passport_number"),
    (_P + "nc:PersonPassportIdentification/nc:IdentificationJurisdictionText", "identifier.passport_country"),
    (_OTHER_ID + f"[{ALIEN_NUMBER_CATEGORY}]", "identifier.alien_number"),
    (_OTHER_ID + f"[{ENCOUNTER_CATEGORY}]", "identifier.encounter_id"),
    (_DL + "nc:IdentificationID", "identifier.driver_license_number"),
    (_DL + "nc:IdentificationSourceText", "identifier.driver_license_state"),
    (_ADDR + "nc:AddressFullText", "address.full_address"),
    (_STRUCT + "nc:LocationStreet/nc:StreetNumberText", "address.street_number"),
    (_STRUCT + "nc:LocationStreet/nc:StreetName", "address.street_name"),
    (_STRUCT + "nc:AddressSecondaryUnitText", "address.secondary_unit"),
    (_STRUCT + "nc:LocationCityName", "address.city"),
    (_STRUCT + "nc:LocationStateName", "address.state"),
    (_STRUCT + "nc:LocationCountryName", "address.country"),
    (_STRUCT + "nc:LocationPostalCode", "address.postal_code"),
    (
        "lexsdigest:EntityTelephoneNumber/lexsdigest:TelephoneNumber/nc:FullTelephoneNumber/"
        "nc:TelephoneNumberFullID",
        "address.phone_number",
    ),
    (
        "lexsdigest:EntityActivity/nc:Activity/nc:ActivityIdentification/nc:IdentificationID",
        "incident.activity_number",
    ),
    ("lexsdigest:EntityActivity/nc:Activity/nc:ActivityDescriptionText", "incident.activity_description"),
)
_FIELD_OF = dict(QUERY_FIELDS) | {_STRUCT + "nc:LocationStateUSPostalServiceCode": "address.state"}
_ALTERNATE_FIELDS = {
    _P + "nc:PersonAlternateName/" + path.removeprefix(_P + "nc:PersonName/"): leis
    for path, leis in QUERY_FIELDS
    if path.startswith(_P + "nc:PersonName/")
}
# A LEIS field (as the policy names it) → the LEXS element a LEXS caller knows it by.
PATH_OF: dict[str, str] = {f"subject.{leis}": path for path, leis in QUERY_FIELDS} | {
    "end_user.user_id": "UserAssertion/UserID",
    "end_user.ori": "UserAssertion/OriginatingAgencyID",
    "client_request_id": "SRMessageMetadata/MessageID",
    "purpose": "SRMessageMetadataDomainAttribute/ReasonText",
}
_OTHER_CATEGORIES = {
    ALIEN_NUMBER_CATEGORY.casefold(): "identifier.alien_number",
    "alien number": "identifier.alien_number",
    "alien registration number": "identifier.alien_number",
    ENCOUNTER_CATEGORY.casefold(): "identifier.encounter_id",
}


# --------------------------------------------------------------------------- errors


class DecodeRefused(Exception):
    """A request the codec cannot turn into one search or data item request; ``request`` holds
    what was read, for audit."""

    def __init__(
        self, error: LeisError, request: query_pb.SearchRequest | query_pb.GetDataItemRequest | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.request: query_pb.SearchRequest | query_pb.GetDataItemRequest = (
            request or query_pb.SearchRequest()
        )


def _unknown(path: str) -> FieldViolation:
    return FieldViolation(
        path,
        "not a LEIS query field: only name, date of birth, identifying number, "
        "address, phone and activity can be queried (R-Q-1)",
    )


# --------------------------------------------------------------------------- reading helpers


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _children(element: etree._Element, ns: str, local: str) -> list[etree._Element]:
    return [c for c in element if c.tag == _q(ns, local)]


def _child(element: etree._Element | None, ns: str, local: str) -> etree._Element | None:
    if element is None:
        return None
    return element.find(_q(ns, local))


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def body_of(envelope: etree._Element) -> etree._Element:
    """The single element in a SOAP 1.1 envelope's Body (``MALFORMED_REQUEST`` otherwise)."""
    if envelope.tag != _q(SOAP_NS, "Envelope"):
        raise InvalidArgument(MALFORMED_REQUEST, "the body is not a SOAP 1.1 envelope")
    body = _child(envelope, SOAP_NS, "Body")
    payload = [c for c in body if isinstance(c.tag, str)] if body is not None else []
    if len(payload) != 1:
        raise InvalidArgument(MALFORMED_REQUEST, "the SOAP Body must hold exactly one element")
    return payload[0]


def operation_of(payload: etree._Element) -> tuple[str, Dialect]:
    """``(operation, dialect)`` of a request body element; ``UNSUPPORTED_OPERATION`` otherwise."""
    qname = etree.QName(payload)
    dialect = DIALECTS.get(qname.namespace or "")
    name = qname.localname.removesuffix("Request")
    if dialect is None or name not in OPERATIONS or not qname.localname.endswith("Request"):
        raise InvalidArgument(
            UNSUPPORTED_OPERATION,
            f"LEIS serves {', '.join(OPERATIONS)} in LEXS-SR 3.1 or ULEX 2.0; not {qname.localname}",
        )
    return name, dialect


def operation_of_action(action: str) -> str | None:
    """The operation a SOAPAction header names ('' or absent: None)."""
    action = action.strip().strip('"')
    if not action:
        return None
    return action.rstrip("/").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- inbound request


@dataclass(frozen=True)
class StructuredSearch:
    """A decoded ``doStructuredSearchRequest``: the search, and what the answer must echo."""

    dialect: Dialect
    request: query_pb.SearchRequest  # purpose UNSPECIFIED until ``with_purpose``
    purpose_text: str
    max_items: int | None
    message_id: str

    def with_purpose(self, purpose: int) -> query_pb.SearchRequest:
        """The search request carrying the lawful purpose the agreement mapped."""
        request = query_pb.SearchRequest()
        request.CopyFrom(self.request)
        request.purpose = purpose  # type: ignore[assignment]
        return request


@dataclass
class _Collected:
    values: dict[str, str] = field(default_factory=dict)
    alternate: dict[str, str] = field(default_factory=dict)
    violations: list[tuple[str, FieldViolation]] = field(default_factory=list)

    def put(self, target: dict[str, str], leis_field: str, value: str, path: str) -> None:
        previous = target.get(leis_field)
        if previous is not None:
            if _same(previous) != _same(value):
                self.violations.append(
                    ("BATCH_QUERY", FieldViolation(path, "one subject per query: two different values given"))
                )
            return
        target[leis_field] = value


def _same(value: str) -> str:
    return " ".join(value.split()).casefold()


def decode_search(payload: etree._Element, dialect: Dialect) -> StructuredSearch:
    """Decode a ``doStructuredSearchRequest`` body element (``DecodeRefused`` on refusal)."""
    m, lx = dialect.message, dialect.lexs
    message = _child(payload, m, "StructuredSearchRequestMessage")
    if message is None:
        raise DecodeRefused(
            InvalidArgument(
                MISSING_FIELD,
                "StructuredSearchRequestMessage is required",
                violations=[FieldViolation("StructuredSearchRequestMessage", "required")],
            )
        )
    metadata = _child(message, m, "SRMessageMetadata")
    message_id = _text(_child(metadata, WSA, "MessageID")) or _text(
        _child(metadata, lx, "MessageSequenceNumber")
    )
    purpose_texts = _purpose_texts(metadata, dialect)
    user_id, ori, assertion_present = _user(message, metadata, dialect)
    request = query_pb.SearchRequest(
        end_user=subject_pb2.EndUser(user_id=user_id, ori=ori),
        client_request_id=message_id,
    )
    collected = _Collected()
    queries = _children(message, m, "StructuredQuery")
    if len(queries) > 1:
        collected.violations.append(
            ("BATCH_QUERY", FieldViolation("StructuredQuery", "one structured query per request (R-Q-2)"))
        )
    statements = [s for q in queries for s in _children(q, m, "DigestQueryStatement")]
    for query in queries:
        for other in query:
            if isinstance(other.tag, str) and other.tag != _q(m, "DigestQueryStatement"):
                collected.violations.append(("UNKNOWN_FIELD", _unknown(_local(other))))
    if len(statements) > MAX_STATEMENTS:
        collected.violations.append(
            ("OVERSIZE_FIELD", FieldViolation("DigestQueryStatement", f"at most {MAX_STATEMENTS} statements"))
        )
    else:
        for statement in statements:
            _read_statement(statement, dialect, collected)
    _merge_alternate_name(collected)
    request.subject.CopyFrom(_subject(collected.values))
    max_items = _max_items(message, dialect, collected)
    if not assertion_present:
        collected.violations.append(
            (
                MISSING_FIELD,
                FieldViolation("UserAssertion", "the end user's assertion is required (R-ID-3)"),
            )
        )
    if len(set(map(_same, purpose_texts))) > 1:
        collected.violations.append(
            ("CONFLICTING_FIELDS", FieldViolation(PATH_OF["purpose"], "one purpose per query"))
        )
    if collected.violations:
        reason = collected.violations[0][0]
        violations = [v for _, v in collected.violations]
        raise DecodeRefused(
            InvalidArgument(
                reason,
                "invalid LEXS search: " + ", ".join(v.field for v in violations),
                violations=violations,
            ),
            request,
        )
    return StructuredSearch(
        dialect, request, purpose_texts[0] if purpose_texts else "", max_items, message_id
    )


@dataclass(frozen=True)
class DataItemRequest:
    """A decoded ``getDataItemRequest``: the item asked for, by whom, and what the answer echoes."""

    dialect: Dialect
    request: query_pb.GetDataItemRequest  # purpose UNSPECIFIED until ``with_purpose``
    purpose_text: str
    message_id: str

    def with_purpose(self, purpose: int) -> query_pb.GetDataItemRequest:
        """The request carrying the lawful purpose the agreement mapped."""
        request = query_pb.GetDataItemRequest()
        request.CopyFrom(self.request)
        request.purpose = purpose  # type: ignore[assignment]
        return request


def decode_data_item(payload: etree._Element, dialect: Dialect) -> DataItemRequest:
    """Decode a ``getDataItemRequest`` body element: one ``DataItemID`` from an earlier
    ``doSearchResponse``, the user assertion and the purpose (``DecodeRefused`` on refusal)."""
    m, lx = dialect.message, dialect.lexs
    message = _child(payload, m, "DataItemRequestMessage")
    if message is None:
        raise DecodeRefused(
            InvalidArgument(
                MISSING_FIELD,
                "DataItemRequestMessage is required",
                violations=[FieldViolation("DataItemRequestMessage", "required")],
            )
        )
    metadata = _child(message, m, "SRMessageMetadata")
    message_id = _text(_child(metadata, WSA, "MessageID")) or _text(
        _child(metadata, lx, "MessageSequenceNumber")
    )
    purpose_texts = _purpose_texts(metadata, dialect)
    user_id, ori, assertion_present = _user(message, metadata, dialect)
    item_ids = [_text(item) for item in _children(message, m, "DataItemID")]
    request = query_pb.GetDataItemRequest(
        data_item_id=item_ids[0] if len(item_ids) == 1 else "",
        end_user=subject_pb2.EndUser(user_id=user_id, ori=ori),
        client_request_id=message_id,
    )
    violations: list[tuple[str, FieldViolation]] = []
    if len(item_ids) != 1:
        reason = MISSING_FIELD if not item_ids else "BATCH_QUERY"
        violations.append((reason, FieldViolation("DataItemID", "exactly one data item id")))
    if not assertion_present:
        violations.append(
            (MISSING_FIELD, FieldViolation("UserAssertion", "the end user's assertion is required (R-ID-3)"))
        )
    if len(set(map(_same, purpose_texts))) > 1:
        violations.append(("CONFLICTING_FIELDS", FieldViolation(PATH_OF["purpose"], "one purpose per query")))
    if violations:
        raise DecodeRefused(
            InvalidArgument(
                violations[0][0],
                "invalid LEXS data item request: " + ", ".join(v.field for _, v in violations),
                violations=[v for _, v in violations],
            ),
            request,
        )
    return DataItemRequest(dialect, request, purpose_texts[0] if purpose_texts else "", message_id)


def _purpose_texts(metadata: etree._Element | None, dialect: Dialect) -> list[str]:
    if metadata is None:
        return []
    if dialect is ULEX_2:
        attributes = _children(metadata, dialect.message, "SRMessageMetadataDomainAttribute")
        value_name = "AttributeValueText"
    else:
        attributes = _children(metadata, dialect.lexs, "DomainAttribute")
        value_name = "AttributeValue"
    ns = dialect.message if dialect is ULEX_2 else dialect.lexs
    texts = []
    for attribute in attributes:
        name = _text(_child(attribute, ns, "AttributeName"))
        if name.rsplit(":", 1)[-1] in PURPOSE_ATTRIBUTE_SUFFIXES:
            texts.append(_text(_child(attribute, ns, value_name)))
    return texts


def _user(
    message: etree._Element, metadata: etree._Element | None, dialect: Dialect
) -> tuple[str, str, bool]:
    """``(user_id, ori, assertion_present)`` from the user assertion and the origin metadata."""
    lx = dialect.lexs
    origin = _child(_child(metadata, dialect.message, "MessageOriginMetadata"), lx, "SystemIdentifier")
    origin_ori = _text(_child(origin, lx, "OriginatingAgencyID")) or _text(_child(origin, lx, "ORI"))
    if dialect is ULEX_2:
        holder = _child(message, dialect.message, "UserAssertionSAML")
        if holder is None:
            return "", origin_ori, False
        assertion = _child(holder, SAML2, "Assertion")
        user_id = _text(_child(_child(assertion, SAML2, "Subject"), SAML2, "NameID"))
        ori = ""
        for attribute in assertion.iter(_q(SAML2, "Attribute")) if assertion is not None else ():
            if attribute.get("Name", "").rsplit(":", 1)[-1] in ("ORI", "OriginatingAgencyID"):
                ori = _text(_child(attribute, SAML2, "AttributeValue"))
        return user_id, ori or origin_ori, True
    holder = _child(message, lx, "UserAssertion")
    if holder is None:
        return "", origin_ori, False
    ori = _text(_child(holder, lx, "ORI")) or _text(_child(holder, lx, "OriginatingAgencyID"))
    return _text(_child(holder, lx, "UserID")), ori or origin_ori, True


def _max_items(message: etree._Element, dialect: Dialect, collected: _Collected) -> int | None:
    metadata = _child(message, dialect.message, "SearchRequestMetadata")
    raw = _text(_child(metadata, dialect.message, dialect.max_items))
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= 10_000:
        collected.violations.append(
            ("MALFORMED_FIELD", FieldViolation(dialect.max_items, "a whole number from 1 to 10000"))
        )
        return None
    return int(raw)


def _path_prefix(dialect: Dialect) -> dict[str, str]:
    return {NC: "nc", dialect.digest: "lexsdigest", dialect.justice: "j"}


def _path(element: etree._Element, top: etree._Element, prefixes: Mapping[str, str]) -> str:
    parts = []
    node: etree._Element | None = element
    while node is not None and node is not top:
        qname = etree.QName(node)
        prefix = prefixes.get(qname.namespace or "")
        parts.append(f"{prefix}:{qname.localname}" if prefix else qname.localname)
        node = node.getparent()
    return "/".join(reversed(parts))


def _read_statement(statement: etree._Element, dialect: Dialect, collected: _Collected) -> None:
    lx = dialect.lexs
    match_ns = dialect.message
    for child in statement:
        if not isinstance(child.tag, str):
            continue
        if child.tag == _q(match_ns, dialect.query_match):
            if _text(child).casefold() not in QUERY_MATCH_CODES:
                collected.violations.append(
                    ("WILDCARD_QUERY", FieldViolation(dialect.query_match, "only exact or fuzzy matching"))
                )
        elif child.tag != _q(lx, "DigestQueryField"):
            collected.violations.append(("UNKNOWN_FIELD", _unknown(_local(child))))
    digest_field = _child(statement, lx, "DigestQueryField")
    if digest_field is None:
        return
    prefixes = _path_prefix(dialect)
    other_ids: dict[etree._Element, dict[str, str]] = {}
    for leaf in digest_field.iter():
        if not isinstance(leaf.tag, str) or leaf is digest_field or len(leaf):
            continue
        path = _path(leaf, digest_field, prefixes)
        value = " ".join((leaf.text or "").split())
        if path in (_OTHER_ID, _OTHER_CATEGORY):
            parent = leaf.getparent()
            assert parent is not None
            other_ids.setdefault(parent, {})[path] = value
        elif path in _FIELD_OF:
            if value:
                collected.put(collected.values, _FIELD_OF[path], value, path)
        elif path in _ALTERNATE_FIELDS:
            if value:
                collected.put(collected.alternate, _ALTERNATE_FIELDS[path], value, path)
        else:
            collected.violations.append(("UNKNOWN_FIELD", _unknown(path)))
    for parts in other_ids.values():
        category = parts.get(_OTHER_CATEGORY, "")
        leis_field = _OTHER_CATEGORIES.get(category.casefold())
        if leis_field is None:
            collected.violations.append(
                ("UNKNOWN_FIELD", _unknown(f"{_OTHER_CATEGORY}[{category or 'none'}]"))
            )
        elif parts.get(_OTHER_ID):
            collected.put(collected.values, leis_field, parts[_OTHER_ID], f"{_OTHER_ID}[{category}]")


def _merge_alternate_name(collected: _Collected) -> None:
    """An alternate name alone is the name; beside a different primary name it is a second subject."""
    if not collected.alternate:
        return
    primary = {
        k: v for k, v in collected.values.items() if k.startswith("name.") and k != "name.date_of_birth"
    }
    if primary and {k: _same(v) for k, v in primary.items()} != {
        k: _same(v) for k, v in collected.alternate.items()
    }:
        collected.violations.append(
            (
                "BATCH_QUERY",
                FieldViolation(_P + "nc:PersonAlternateName", "one subject per query: two different names"),
            )
        )
        return
    collected.values.update(collected.alternate)


def _subject(values: Mapping[str, str]) -> subject_pb2.SubjectQuery:
    subject = subject_pb2.SubjectQuery()
    for leis_field, value in values.items():
        category, name = leis_field.split(".")
        setattr(getattr(subject, category), name, value)
    return subject


def resolve_purpose(text: str, table: Iterable[tuple[str, str]]) -> int:
    """The ``leis.v1.Purpose`` an agreement's table maps a LEXS purpose text to (R-Q-3)."""
    if not text:
        raise InvalidArgument(
            PURPOSE_REQUIRED,
            "a purpose is required: send it as the ReasonText domain attribute",
            violations=[FieldViolation(PATH_OF["purpose"], "required")],
        )
    for stated, purpose in table:
        if _same(stated) == _same(text):
            return subject_pb2.Purpose.Value(f"PURPOSE_{purpose}")
    raise PermissionDenied(
        PURPOSE_NOT_LAWFUL,
        "the stated purpose does not map to a lawful purpose under the caller's agreement",
        violations=[FieldViolation(PATH_OF["purpose"], "not one of the agreement's purpose texts")],
    )


# --------------------------------------------------------------------------- writing helpers


def _el(parent: etree._Element, ns: str, local: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(ns, local))
    if text is not None:
        element.text = text
    return element


def _root(dialect: Dialect, local: str) -> etree._Element:
    return etree.Element(_q(dialect.wrapper, local), nsmap=_prefixes(dialect))


def envelope(payload: etree._Element) -> bytes:
    """A SOAP 1.1 envelope around ``payload``, UTF-8 with declaration."""
    env = etree.Element(_q(SOAP_NS, "Envelope"), nsmap={"soap": SOAP_NS})
    body = etree.SubElement(env, _q(SOAP_NS, "Body"))
    body.append(payload)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _timestamp_text(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metadata(
    parent: etree._Element,
    dialect: Dialect,
    *,
    now: datetime,
    message_id: str,
    origin: tuple[str, str, str],
    destination: tuple[str, str, str],
) -> etree._Element:
    """``SRMessageMetadata``: version, time, id, origin and destination ``(ori, organization, system)``."""
    m, lx = dialect.message, dialect.lexs
    metadata = _el(parent, m, "SRMessageMetadata")
    if dialect is ULEX_2:
        _el(metadata, m, "ULEXFrameworkVersionText", "2.0")
        implementation = _el(metadata, m, "ULEXImplementation")
        _el(implementation, m, "ULEXImplementationVersionText", "4.0")
        _el(implementation, m, "ULEXImplementationName", "LEXS")
        _el(metadata, m, "MessageDateTime", _timestamp_text(now))
        _el(metadata, WSA, "MessageID", message_id)
    else:
        _el(metadata, lx, "LEXSVersion", "3.1.4")
        _el(metadata, lx, "MessageDateTime", _timestamp_text(now))
        _el(metadata, lx, "MessageSequenceNumber", message_id)
    origin_el = _el(metadata, m, "MessageOriginMetadata")
    _system(_el(origin_el, lx, "SystemIdentifier"), dialect, *origin)
    _el(origin_el, lx, "SystemContact")
    _system(_el(metadata, lx, "MessageDestinationIdentifier"), dialect, *destination)
    return metadata


def _system(parent: etree._Element, dialect: Dialect, ori: str, organization: str, system: str) -> None:
    if ori:
        _el(parent, dialect.lexs, "OriginatingAgencyID" if dialect is ULEX_2 else "ORI", ori)
    _el(parent, NC, "OrganizationName", organization)
    _el(parent, dialect.lexs, "SystemID", system)


# --------------------------------------------------------------------------- digests


@dataclass(frozen=True)
class _Person:
    """What one package's digest says about its person (already released or a partner record)."""

    name: records_pb2.PersonName
    date_of_birth: str = ""
    addresses: Sequence[records_pb2.PostalAddress] = ()
    identifiers: Sequence[records_pb2.PersonIdentifier] = ()
    physical: records_pb2.PhysicalDescription | None = None
    country_of_birth: str = ""
    place_of_birth: str = ""
    activity_number: str = ""
    activity_description: str = ""


def _digest(parent: etree._Element, dialect: Dialect, person: _Person) -> None:
    dg, j = dialect.digest, dialect.justice
    digest = _el(parent, dialect.lexs, "Digest")
    entity = _el(digest, dg, "EntityPerson")
    entity.set(_q(STRUCTURES, "id"), "EPerson1")
    p = _el(entity, dg, "Person")
    p.set(_q(STRUCTURES, "id"), "Person1")
    if person.date_of_birth:
        _el(_el(p, NC, "PersonBirthDate"), NC, "Date", person.date_of_birth)
    _birth_location(p, person)
    physical = person.physical
    if physical is not None and physical.eye_color:
        _el(p, NC, "PersonEyeColorText", physical.eye_color)
    if physical is not None and physical.hair_color:
        _el(p, NC, "PersonHairColorText", physical.hair_color)
    if physical is not None and physical.height_inches:
        height = _el(p, NC, "PersonHeightMeasure")
        _el(height, NC, "MeasurePointValue", str(physical.height_inches))
        _el(height, NC, "LengthUnitCode", "INH")
    name = _el(p, NC, "PersonName")
    for local, value in (
        ("PersonGivenName", person.name.first_name),
        ("PersonMiddleName", person.name.middle_name),
        ("PersonSurName", person.name.last_name),
        ("PersonFullName", person.name.full_name),
    ):
        if value:
            _el(name, NC, local, value)
    licence: records_pb2.PersonIdentifier | None = None
    for identifier in person.identifiers:
        kind = identifier.type
        if kind == records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER:
            licence = identifier
            continue
        if kind == records_pb2.IDENTIFIER_TYPE_SSN:
            _el(_el(p, NC, "PersonSSNIdentification"), NC, "IdentificationID", identifier.value)
        elif kind == records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER:
            passport = _el(p, NC, "PersonPassportIdentification")
            _el(passport, NC, "IdentificationID", identifier.value)
            if identifier.issuer:
                _el(passport, NC, "IdentificationJurisdictionText", identifier.issuer)
        elif kind in (records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER, records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID):
            other = _el(p, NC, "PersonOtherIdentification")
            _el(other, NC, "IdentificationID", identifier.value)
            category = (
                ALIEN_NUMBER_CATEGORY
                if kind == records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER
                else ENCOUNTER_CATEGORY
            )
            _el(other, NC, "IdentificationCategoryText", category)
    if physical is not None and physical.weight_pounds:
        weight = _el(p, NC, "PersonWeightMeasure")
        _el(weight, NC, "MeasurePointValue", str(physical.weight_pounds))
        _el(weight, NC, "WeightUnitCode", "LBR")
    if licence is not None:
        dl = _el(_el(_el(p, j, "PersonAugmentation"), NC, "DriverLicense"), NC, "DriverLicenseIdentification")
        _el(dl, NC, "IdentificationID", licence.value)
        if licence.issuer:
            _el(dl, NC, "IdentificationSourceText", licence.issuer)
    _locations(digest, dialect, person)


def _birth_location(p: etree._Element, person: _Person) -> None:
    if person.country_of_birth or person.place_of_birth:
        birth = _el(_el(p, NC, "PersonBirthLocation"), NC, "LocationAddress")
        structured = _el(birth, NC, "StructuredAddress")
        if person.place_of_birth:
            _el(structured, NC, "LocationCityName", person.place_of_birth)
        if person.country_of_birth:
            _el(structured, NC, "LocationCountryName", person.country_of_birth)


def _locations(digest: etree._Element, dialect: Dialect, person: _Person) -> None:
    """The person's addresses, activity and residence associations, after the person entity."""
    dg = dialect.digest
    for position, address in enumerate(person.addresses, start=1):
        location_entity = _el(digest, dg, "EntityLocation")
        location = _el(location_entity, NC, "Location")
        location.set(_q(STRUCTURES, "id"), f"Location{position}")
        structured = _el(_el(location, NC, "LocationAddress"), NC, "StructuredAddress")
        if address.street_number or address.street_name:
            street = _el(structured, NC, "LocationStreet")
            if address.street_number:
                _el(street, NC, "StreetNumberText", address.street_number)
            if address.street_name:
                _el(street, NC, "StreetName", address.street_name)
        for local, value in (
            ("AddressSecondaryUnitText", address.secondary_unit),
            ("LocationCityName", address.city),
            ("LocationStateName", address.state),
            ("LocationCountryName", address.country),
            ("LocationPostalCode", address.postal_code),
        ):
            if value:
                _el(structured, NC, local, value)
    if person.activity_number or person.activity_description:
        activity = _el(_el(digest, dg, "EntityActivity"), NC, "Activity")
        if person.activity_number:
            _el(_el(activity, NC, "ActivityIdentification"), NC, "IdentificationID", person.activity_number)
        if person.activity_description:
            _el(activity, NC, "ActivityDescriptionText", person.activity_description)
    if person.addresses:
        associations = _el(digest, dg, "Associations")
        for position in range(1, len(person.addresses) + 1):
            residence = _el(associations, NC, "ResidenceAssociation")
            _el(residence, NC, "PersonReference").set(_q(STRUCTURES, "ref"), "Person1")
            _el(residence, NC, "LocationReference").set(_q(STRUCTURES, "ref"), f"Location{position}")


def _read_person(digest: etree._Element | None, dialect: Dialect) -> _Person:
    dg, j = dialect.digest, dialect.justice
    entity = _child(digest, dg, "EntityPerson")
    p = _child(entity, dg, "Person")
    name_el = _child(p, NC, "PersonName")
    name = records_pb2.PersonName(
        first_name=_text(_child(name_el, NC, "PersonGivenName")),
        middle_name=_text(_child(name_el, NC, "PersonMiddleName")),
        last_name=_text(_child(name_el, NC, "PersonSurName")),
        full_name=_text(_child(name_el, NC, "PersonFullName")),
    )
    identifiers: list[records_pb2.PersonIdentifier] = []
    ssn = _text(_child(_child(p, NC, "PersonSSNIdentification"), NC, "IdentificationID"))
    if ssn:
        identifiers.append(records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value=ssn))
    passport = _child(p, NC, "PersonPassportIdentification")
    if _text(_child(passport, NC, "IdentificationID")):
        identifiers.append(
            records_pb2.PersonIdentifier(
                type=records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER,
                value=_text(_child(passport, NC, "IdentificationID")),
                issuer=_text(_child(passport, NC, "IdentificationJurisdictionText")),
            )
        )
    for other in _children(p, NC, "PersonOtherIdentification") if p is not None else ():
        leis_field = _OTHER_CATEGORIES.get(_text(_child(other, NC, "IdentificationCategoryText")).casefold())
        value = _text(_child(other, NC, "IdentificationID"))
        if leis_field and value:
            kind = (
                records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER
                if leis_field == "identifier.alien_number"
                else records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID
            )
            identifiers.append(records_pb2.PersonIdentifier(type=kind, value=value))
    dl = _child(
        _child(_child(p, j, "PersonAugmentation"), NC, "DriverLicense"), NC, "DriverLicenseIdentification"
    )
    if _text(_child(dl, NC, "IdentificationID")):
        identifiers.append(
            records_pb2.PersonIdentifier(
                type=records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER,
                value=_text(_child(dl, NC, "IdentificationID")),
                issuer=_text(_child(dl, NC, "IdentificationSourceText")),
            )
        )
    addresses = []
    for location_entity in _children(digest, dg, "EntityLocation") if digest is not None else ():
        structured = _child(
            _child(_child(location_entity, NC, "Location"), NC, "LocationAddress"), NC, "StructuredAddress"
        )
        street = _child(structured, NC, "LocationStreet")
        addresses.append(
            records_pb2.PostalAddress(
                street_number=_text(_child(street, NC, "StreetNumberText")),
                street_name=_text(_child(street, NC, "StreetName")),
                secondary_unit=_text(_child(structured, NC, "AddressSecondaryUnitText")),
                city=_text(_child(structured, NC, "LocationCityName")),
                state=_text(_child(structured, NC, "LocationStateName")),
                country=_text(_child(structured, NC, "LocationCountryName")),
                postal_code=_text(_child(structured, NC, "LocationPostalCode")),
            )
        )
    activity = _child(_child(digest, dg, "EntityActivity"), NC, "Activity")
    return _Person(
        name=name,
        date_of_birth=_text(_child(_child(p, NC, "PersonBirthDate"), NC, "Date")),
        addresses=addresses,
        identifiers=identifiers,
        activity_number=_text(_child(_child(activity, NC, "ActivityIdentification"), NC, "IdentificationID")),
        activity_description=_text(_child(activity, NC, "ActivityDescriptionText")),
    )


# --------------------------------------------------------------------------- inbound response


@dataclass(frozen=True)
class Answer:
    """How a ``doSearchResponse`` is addressed: dialect, ids and the requester it goes back to."""

    dialect: Dialect
    message_id: str
    in_reply_to: str
    max_items: int | None
    requester: tuple[str, str, str] = ("", "", "")


def _response_head(
    answer: Answer, operation: str, message_name: str, *, now: datetime
) -> tuple[etree._Element, etree._Element]:
    """The SOAP body element of ``operation`` and its message with the answer's metadata."""
    dialect = answer.dialect
    root = _root(dialect, operation)
    message = _el(root, dialect.message, message_name)
    metadata = _metadata(
        message,
        dialect,
        now=now,
        message_id=answer.message_id,
        origin=("", "Department of Homeland Security", LEIS_SYSTEM_ID),
        destination=answer.requester,
    )
    if dialect is ULEX_2 and answer.in_reply_to:
        _el(metadata, WSA, "RelatesTo", answer.in_reply_to)
    response_metadata = _el(message, dialect.message, "ResponseMetadata")
    if dialect is LEXS_31:
        _el(response_metadata, dialect.lexs, "ResultCode", "Success")
        _el(response_metadata, dialect.lexs, "InResponseToMessageSequenceNumber", answer.in_reply_to or "0")
    return root, message


def encode_search_response(
    response: query_pb.SearchResponse, answer: Answer, *, now: datetime
) -> etree._Element:
    """A ``doSearchResponse`` shaped like the DHS sample: one package per released person.

    Only the release allow-list leaves (R-REL-4): the digest carries name, date and place of
    birth, address, physical description and the identifiers matched on; photos stay on the
    gRPC interface. ``ServerLimitIndicator`` is true when more matched than were returned
    (R-Q-7). Nothing here depends on what was withheld (R-REL-6).
    """
    dialect = answer.dialect
    m = dialect.message
    root, message = _response_head(answer, "doSearchResponse", "SearchResponseMessage", now=now)
    search_metadata = _el(message, m, "SearchResponseMetadata")
    requested = answer.max_items if answer.max_items is not None else len(response.persons)
    _el(search_metadata, m, dialect.max_items_requested, str(requested))
    _el(search_metadata, m, dialect.item_count, str(len(response.persons)))
    _el(search_metadata, m, "ServerLimitIndicator", "true" if response.narrow_query_required else "false")
    notice = response.notice
    handling = " ".join([notice.obtained_via, notice.lesc_instruction, *notice.caveat_texts]).strip()
    for person in response.persons:
        _package(
            message,
            dialect,
            "SearchResultPackage",
            person,
            audit_reference=response.audit_reference,
            handling=handling,
            now=now,
        )
    return root


def data_item_id(audit_reference: str, result_id: str) -> str:
    """The ``DataItemID`` of a released person: the search's audit reference and its result id,
    which ``getDataItem`` takes back (and the audit log resolves) to fetch the person again."""
    return f"{audit_reference}/{result_id}"


def _package(
    parent: etree._Element,
    dialect: Dialect,
    local: str,
    person: query_pb.PersonResult,
    *,
    audit_reference: str,
    handling: str,
    now: datetime,
) -> None:
    """One package (metadata, data owner, dissemination criteria, digest) for a released person."""
    m, lx = dialect.message, dialect.lexs
    package = _el(parent, m, local)
    package_metadata = _el(package, m, "PackageMetadata")
    _el(package_metadata, m, "DataItemID", data_item_id(audit_reference, person.result_id))
    retrieved = min((ref.retrieved_time.ToDatetime(UTC) for ref in person.sources), default=now)
    _el(package_metadata, m, "DataItemDate", retrieved.date().isoformat())
    references = " ".join(
        f"{records_pb2.SourceSystem.Name(ref.source).removeprefix('SOURCE_SYSTEM_')}:{ref.record_id}"
        for ref in person.sources
    )
    _el(package_metadata, m, "DataItemReferenceID", references)
    _el(package_metadata, lx, dialect.status, "Released")
    owner = _el(package_metadata, m, "DataOwnerMetadata")
    _system(_el(owner, lx, "DataOwnerIdentifier"), dialect, "", DHS_ORGANIZATION, LEIS_SYSTEM_ID)
    contact = _el(owner, lx, "DataOwnerContact")
    _el(contact, NC, "PersonSurName", LESC_CONTACT)
    _el(contact, NC, "OrganizationName", DHS_ORGANIZATION)
    _dissemination(package_metadata, dialect, "DHS", handling)
    _digest(
        package,
        dialect,
        _Person(
            name=person.name,
            date_of_birth=person.date_of_birth,
            addresses=person.addresses,
            identifiers=person.matched_identifiers,
            physical=person.physical_description if person.HasField("physical_description") else None,
            country_of_birth=person.country_of_birth,
            place_of_birth=person.place_of_birth,
        ),
    )


def encode_data_item_response(
    response: query_pb.GetDataItemResponse, answer: Answer, *, now: datetime
) -> etree._Element:
    """A ``getDataItemResponse``: the metadata of a ``doSearchResponse`` and one ``DataItemPackage``
    shaped like a ``SearchResultPackage`` (none when the person is no longer releasable). Its
    ``DataItemID`` names this call's own audit reference."""
    dialect = answer.dialect
    root, message = _response_head(answer, "getDataItemResponse", "DataItemResponseMessage", now=now)
    if response.HasField("person"):
        notice = response.notice
        handling = " ".join([notice.obtained_via, notice.lesc_instruction, *notice.caveat_texts]).strip()
        _package(
            message,
            dialect,
            "DataItemPackage",
            response.person,
            audit_reference=response.audit_reference,
            handling=handling,
            now=now,
        )
    return root


def _dissemination(parent: etree._Element, dialect: Dialect, domain: str, text: str) -> None:
    lx = dialect.lexs
    if dialect is ULEX_2:
        criteria = _el(parent, lx, "DisseminationCriteria")
        _el(criteria, lx, "DisseminationCriteriaDomainName", domain)
    else:
        criteria = _el(parent, lx, "DisseminationCriteriaValue")
        _el(criteria, lx, "DisseminationCriteriaDomainText", domain)
    _el(criteria, lx, "DisseminationCriteriaText", text)


def encode_availability(
    dialect: Dialect, available: bool, *, now: datetime, message_id: str
) -> etree._Element:
    """``getAvailabilityResponse``: whether LEIS can answer searches right now."""
    root = _root(dialect, "getAvailabilityResponse")
    message = _el(root, dialect.message, "AvailabilityResponseMessage")
    _metadata(
        message,
        dialect,
        now=now,
        message_id=message_id,
        origin=("", "Department of Homeland Security", LEIS_SYSTEM_ID),
        destination=("", "", ""),
    )
    _el(message, dialect.message, "ServiceAvailableIndicator", "true" if available else "false")
    return root


def encode_capabilities(
    dialect: Dialect, capabilities: query_pb.GetCapabilitiesResponse, *, now: datetime, message_id: str
) -> etree._Element:
    """``getCapabilitiesResponse``: the caller's query fields, purposes, cap and caveats (R-Q-8)."""
    m, lx = dialect.message, dialect.lexs
    root = _root(dialect, "getCapabilitiesResponse")
    message = _el(root, m, "CapabilitiesResponseMessage")
    _metadata(
        message,
        dialect,
        now=now,
        message_id=message_id,
        origin=("", "Department of Homeland Security", LEIS_SYSTEM_ID),
        destination=("", capabilities.agency_name, capabilities.agency_id),
    )
    caps = _el(message, lx, "Capabilities")
    category = _el(caps, lx, "DataItemCategory")
    _el(category, lx, "DataItemCategoryText", "Person")
    _el(caps, lx, "PagingIndicator", "false")
    _el(caps, lx, "MaxHitsReturned", str(capabilities.max_results))
    structured = _el(caps, lx, "StructuredSearch")
    for local, value in (
        ("MultipleValueIndicator", "false"),
        ("WildcardIndicator", "false"),
        ("FuzzySearchIndicator", "true"),
        ("DateRangeIndicator", "false"),
        ("NumericRangeIndicator", "false"),
    ):
        _el(structured, lx, local, value)
    attributes = [("QueryField", path) for path, _ in QUERY_FIELDS]
    attributes += [
        ("Purpose", subject_pb2.Purpose.Name(p).removeprefix("PURPOSE_"))
        for p in capabilities.permitted_purposes
    ]
    attributes += [("PermittedORI", ori) for ori in capabilities.permitted_oris]
    attributes += [("HandlingCaveat", text) for text in capabilities.notice.caveat_texts]
    for name, value in attributes:
        attribute = _el(caps, lx, "DomainAttribute")
        _el(attribute, lx, "AttributeName", f"LEIS:{name}")
        _el(attribute, lx, "AttributeValue", value)
        _el(attribute, lx, "Domain" if dialect is LEXS_31 else "DomainName", "LEIS")
    return root


# --------------------------------------------------------------------------- faults


def encode_fault(error: LeisError) -> bytes:
    """A SOAP 1.1 Fault carrying the same UPPER_SNAKE reason as gRPC's ``ErrorInfo``.

    ``faultcode`` is ``soap:Server`` when the failure is LEIS's (UNAVAILABLE, INTERNAL, …)
    and ``soap:Client`` otherwise; ``detail`` names the status, reason and each field, with
    LEIS field paths translated to the LEXS element a LEXS caller sent.
    """
    env = etree.Element(_q(SOAP_NS, "Envelope"), nsmap={"soap": SOAP_NS, "leis": FAULT_NS})
    fault = _el(_el(env, SOAP_NS, "Body"), SOAP_NS, "Fault")
    server_side = error.code.name in {"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN"}
    etree.SubElement(fault, "faultcode").text = "soap:Server" if server_side else "soap:Client"
    etree.SubElement(fault, "faultstring").text = f"{error.reason}: {error.message}"
    refusal = _el(etree.SubElement(fault, "detail"), FAULT_NS, "Refusal")
    _el(refusal, FAULT_NS, "Reason", error.reason)
    _el(refusal, FAULT_NS, "Domain", FAULT_DOMAIN)
    _el(refusal, FAULT_NS, "Status", error.code.name)
    for violation in error.violations:
        item = _el(refusal, FAULT_NS, "FieldViolation")
        _el(item, FAULT_NS, "Field", PATH_OF.get(violation.field, violation.field))
        _el(item, FAULT_NS, "Description", violation.description)
    if error.retry_after_seconds is not None:
        _el(refusal, FAULT_NS, "RetryAfterSeconds", f"{error.retry_after_seconds:.3f}")
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True)
class Fault:
    """A SOAP fault as a client reads it."""

    code: str
    reason: str
    status: str
    message: str
    fields: tuple[str, ...]


def read_fault(envelope_root: etree._Element) -> Fault | None:
    """The fault in a SOAP envelope, or None when the body is not a fault."""
    body = _child(envelope_root, SOAP_NS, "Body")
    fault = _child(body, SOAP_NS, "Fault")
    if fault is None:
        return None
    refusal = fault.find(f"detail/{_q(FAULT_NS, 'Refusal')}")
    return Fault(
        code=_text(fault.find("faultcode")),
        reason=_text(_child(refusal, FAULT_NS, "Reason")),
        status=_text(_child(refusal, FAULT_NS, "Status")),
        message=_text(fault.find("faultstring")),
        fields=tuple(
            _text(_child(v, FAULT_NS, "Field")) for v in refusal.iter(_q(FAULT_NS, "FieldViolation"))
        )
        if refusal is not None
        else (),
    )


# --------------------------------------------------------------------------- outbound (LEIS → partner)


def encode_partner_request(
    request: partner_pb.SearchRequest,
    dialect: Dialect,
    *,
    reason_text: str,
    destination: tuple[str, str, str],
    max_items: int,
    now: datetime,
) -> etree._Element:
    """A ``doStructuredSearchRequest`` for a LEXS partner: one statement per field, like the N-DEx sample."""
    m, lx = dialect.message, dialect.lexs
    root = _root(dialect, "doStructuredSearchRequest")
    message = _el(root, m, "StructuredSearchRequestMessage")
    metadata = _metadata(
        message,
        dialect,
        now=now,
        message_id=request.request_id,
        origin=(request.requesting_user.ori, "Department of Homeland Security", LEIS_SYSTEM_ID),
        destination=destination,
    )
    if dialect is ULEX_2:
        attribute = _el(metadata, m, "SRMessageMetadataDomainAttribute")
        _el(attribute, m, "AttributeName", "gfipm:ext:user:NDEx:ReasonText")
        _el(attribute, m, "AttributeValueText", reason_text)
        _el(attribute, m, "DomainName", "N-DEx")
        assertion = _el(_el(message, m, "UserAssertionSAML"), SAML2, "Assertion")
        _el(_el(assertion, SAML2, "Subject"), SAML2, "NameID", request.requesting_user.user_id)
        ori = _el(_el(assertion, SAML2, "AttributeStatement"), SAML2, "Attribute")
        ori.set("Name", "gfipm:2.0:user:ORI")
        _el(ori, SAML2, "AttributeValue", request.requesting_user.ori)
    else:
        attribute = _el(metadata, lx, "DomainAttribute")
        _el(attribute, lx, "AttributeName", "ReasonText")
        _el(attribute, lx, "AttributeValue", reason_text)
        _el(attribute, lx, "Domain", "N-DEx")
        user = _el(message, lx, "UserAssertion")
        _el(user, lx, "UserID", request.requesting_user.user_id)
        _el(user, NC, "OrganizationName", "Department of Homeland Security")
        _el(user, lx, "ORI", request.requesting_user.ori)
    search_metadata = _el(message, m, "SearchRequestMetadata")
    _el(search_metadata, lx, "RequestedDataCategoryCode" if dialect is ULEX_2 else "RequestedData", "Person")
    _el(search_metadata, m, dialect.max_items, str(max_items))
    if dialect is ULEX_2:
        _el(search_metadata, m, "StructuredPayloadsRequestedCode", "none")
    query = _el(message, m, "StructuredQuery")
    prefixes = {v: k for k, v in _path_prefix(dialect).items()}
    present = {category for category in _CATEGORIES if request.subject.HasField(category)}
    for path, leis_field in QUERY_FIELDS:
        category, name = leis_field.split(".")
        value = getattr(getattr(request.subject, category), name) if category in present else ""
        if not value:
            continue
        statement = _el(query, m, "DigestQueryStatement")
        node = _el(statement, lx, "DigestQueryField")
        steps, _, category_text = path.rstrip("]").partition("[")
        for step in steps.split("/"):
            prefix, local = step.split(":")
            node = _el(node, prefixes[prefix], local)
        node.text = value
        if category_text:
            _el(node.getparent(), NC, "IdentificationCategoryText", category_text)  # type: ignore[arg-type]
        _el(statement, m, dialect.query_match, "exact")
    return root


def decode_partner_response(
    envelope_root: etree._Element, agency_id: str, max_records: int
) -> list[records_pb2.PartnerRecord]:
    """A partner's ``doSearchResponse`` as partner records (``ValueError`` when it is not one)."""
    payload = body_of(envelope_root)
    qname = etree.QName(payload)
    dialect = DIALECTS.get(qname.namespace or "")
    if dialect is None or qname.localname != "doSearchResponse":
        raise ValueError(f"expected doSearchResponse, got {qname.localname}")
    m, lx = dialect.message, dialect.lexs
    message = _child(payload, m, "SearchResponseMessage")
    if message is None:
        raise ValueError("doSearchResponse without a SearchResponseMessage")
    packages = _children(message, m, "SearchResultPackage")
    if len(packages) > max_records:
        raise OverflowError(f"{len(packages)} packages, more than {max_records}")
    records = []
    for package in packages:
        metadata = _child(package, m, "PackageMetadata")
        owner = _child(_child(metadata, m, "DataOwnerMetadata"), lx, "DataOwnerIdentifier")
        person = _read_person(_child(package, lx, "Digest"), dialect)
        date_text = _text(_child(metadata, m, "DataItemDate"))
        record = records_pb2.PartnerRecord(
            record_id=_text(_child(metadata, m, "DataItemID")),
            record_type=_RECORD_TYPES.get(
                _text(
                    _child(_child(metadata, lx, "DataItemCategory"), lx, "DataItemCategoryText")
                ).casefold(),
                records_pb2.PARTNER_RECORD_TYPE_UNSPECIFIED,
            ),
            owning_ori=_text(_child(owner, lx, "OriginatingAgencyID")) or _text(_child(owner, lx, "ORI")),
            name=person.name,
            date_of_birth=person.date_of_birth,
            addresses=person.addresses,
            identifiers=person.identifiers,
            activity_number=person.activity_number,
            offense=person.activity_description[:200],
            match_score=_score(metadata, dialect),
        )
        if date_text:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(datetime.fromisoformat(date_text[:10]).replace(tzinfo=UTC))
            record.event_time.CopyFrom(stamp)
        records.append(record)
    return records


_RECORD_TYPES = {
    "incident": records_pb2.PARTNER_RECORD_TYPE_INCIDENT,
    "arrest": records_pb2.PARTNER_RECORD_TYPE_ARREST,
    "booking": records_pb2.PARTNER_RECORD_TYPE_BOOKING,
}
_RECORD_TYPE_TEXT = {number: text.capitalize() for text, number in _RECORD_TYPES.items()}


def _score(metadata: etree._Element | None, dialect: Dialect) -> float:
    for attribute in _children(metadata, dialect.lexs, "DomainAttribute") if metadata is not None else ():
        if _text(_child(attribute, dialect.lexs, "AttributeName")) == "MatchScore":
            try:
                return min(1.0, max(0.0, float(_text(_child(attribute, dialect.lexs, "AttributeValue")))))
            except ValueError:
                return 0.0
    return 0.0


def encode_partner_response(
    records: Sequence[records_pb2.PartnerRecord],
    dialect: Dialect,
    *,
    owner: tuple[str, str],
    in_reply_to: str,
    max_items: int,
    now: datetime,
    message_id: str,
) -> etree._Element:
    """A partner system's ``doSearchResponse`` (the simulators speak LEXS-SR with this)."""
    m, lx = dialect.message, dialect.lexs
    root = _root(dialect, "doSearchResponse")
    message = _el(root, m, "SearchResponseMessage")
    metadata = _metadata(
        message,
        dialect,
        now=now,
        message_id=message_id,
        origin=("", owner[1], owner[0]),
        destination=("", "Department of Homeland Security", LEIS_SYSTEM_ID),
    )
    if dialect is ULEX_2 and in_reply_to:
        _el(metadata, WSA, "RelatesTo", in_reply_to)
    response_metadata = _el(message, m, "ResponseMetadata")
    if dialect is LEXS_31:
        _el(response_metadata, lx, "ResultCode", "Success")
        _el(response_metadata, lx, "InResponseToMessageSequenceNumber", in_reply_to or "0")
    search_metadata = _el(message, m, "SearchResponseMetadata")
    _el(search_metadata, m, dialect.max_items_requested, str(max_items))
    _el(search_metadata, m, dialect.item_count, str(len(records)))
    _el(search_metadata, m, "ServerLimitIndicator", "false")
    for record in records:
        package = _el(message, m, "SearchResultPackage")
        package_metadata = _el(package, m, "PackageMetadata")
        _el(package_metadata, m, "DataItemID", record.record_id)
        if record.HasField("event_time"):
            _el(package_metadata, m, "DataItemDate", record.event_time.ToDatetime(UTC).date().isoformat())
        _el(package_metadata, m, "DataItemReferenceID", record.record_id)
        _el(package_metadata, lx, dialect.status, "Closed")
        owner_metadata = _el(package_metadata, m, "DataOwnerMetadata")
        _system(
            _el(owner_metadata, lx, "DataOwnerIdentifier"), dialect, record.owning_ori, owner[1], owner[0]
        )
        _el(_el(owner_metadata, lx, "DataOwnerContact"), NC, "OrganizationName", owner[1])
        _dissemination(package_metadata, dialect, "N-DEx", "Green")
        category = _el(package_metadata, lx, "DataItemCategory")
        _el(category, lx, "DataItemCategoryText", _RECORD_TYPE_TEXT.get(record.record_type, "Incident"))
        score = _el(package_metadata, lx, "DomainAttribute")
        _el(score, lx, "AttributeName", "MatchScore")
        _el(score, lx, "AttributeValue", f"{record.match_score:.3f}")
        _digest(
            package,
            dialect,
            _Person(
                name=record.name,
                date_of_birth=record.date_of_birth,
                addresses=record.addresses,
                identifiers=record.identifiers,
                activity_number=record.activity_number,
                activity_description=record.offense,
            ),
        )
    return root
