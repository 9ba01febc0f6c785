"""The LEXS-SR codec as pure functions: both dialects, the refusals of R-Q-1/R-Q-2/R-Q-3, the
release allow-list in answers, faults, the outbound round trip, and hostile XML.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from lexs_samples import (
    BILLION_LAUGHS,
    EXTERNAL_DTD,
    LEXS31,
    ULEX,
    XXE,
    deeply_nested,
    location,
    name_statements,
    person,
    search_envelope,
)
from lxml import etree

from leis.common.errors import FieldViolation, InvalidArgument, PermissionDenied
from leis.common.lexs import codec
from leis.common.lexs.xml import XmlRefused, parse
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import records_pb2, subject_pb2

NOW = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
AUDIT_REFERENCE = "0b8f7c1e-3c1d-4a2e-9f5b-6d7e8f9a0b1c"
TABLE = (("Criminal Justice", "CRIMINAL_LAW_ENFORCEMENT"), ("Homeland Security", "NATIONAL_SECURITY"))


def decode(data: bytes) -> codec.StructuredSearch:
    payload = codec.body_of(parse(data))
    operation, dialect = codec.operation_of(payload)
    assert operation == "doStructuredSearch"
    return codec.decode_search(payload, dialect)


def refused(data: bytes) -> codec.DecodeRefused:
    with pytest.raises(codec.DecodeRefused) as info:
        decode(data)
    return info.value


# ---------------------------------------------------------------- request: both dialects


@pytest.mark.parametrize("dialect", [ULEX, LEXS31], ids=["ulex-2.0", "lexs-3.1"])
def test_name_parts_in_separate_statements_are_one_subject(dialect: dict[str, str]) -> None:
    data = search_envelope(
        [
            *name_statements(first="Maria", last="Quintanilla", middle="L", dob="1985-04-12"),
            person(
                "<nc:PersonSSNIdentification><nc:IdentificationID>123-45-6789</nc:IdentificationID>"
                "</nc:PersonSSNIdentification>"
            ),
            location(
                "<nc:LocationStreet><nc:StreetNumberText>12</nc:StreetNumberText>"
                "<nc:StreetName>Main Street</nc:StreetName></nc:LocationStreet>"
                "<nc:LocationCityName>Yuma</nc:LocationCityName>"
                "<nc:LocationStateName>AZ</nc:LocationStateName>"
            ),
        ],
        dialect=dialect,
        max_items=5,
    )
    search = decode(data)
    assert search.dialect.wrapper == dialect["wrapper"]
    name = search.request.subject.name
    assert (name.first_name, name.middle_name, name.last_name, name.date_of_birth) == (
        "Maria",
        "L",
        "Quintanilla",
        "1985-04-12",
    )
    assert search.request.subject.identifier.ssn == "123-45-6789"
    address = search.request.subject.address
    assert (address.street_number, address.street_name, address.city, address.state) == (
        "12",
        "Main Street",
        "Yuma",
        "AZ",
    )
    assert (search.request.end_user.user_id, search.request.end_user.ori) == ("det.jones", "WVFBI9900")
    assert search.purpose_text == "Criminal Justice"
    assert search.max_items == 5
    assert search.request.client_request_id.startswith("uuid:")
    assert search.request.purpose == subject_pb2.PURPOSE_UNSPECIFIED
    assert (
        search.with_purpose(subject_pb2.PURPOSE_NATIONAL_SECURITY).purpose
        == subject_pb2.PURPOSE_NATIONAL_SECURITY
    )


def test_identifier_kinds_map_to_their_fields() -> None:
    alien = person(
        "<nc:PersonOtherIdentification><nc:IdentificationID>A123456789</nc:IdentificationID>"
        "<nc:IdentificationCategoryText>A-Number</nc:IdentificationCategoryText></nc:PersonOtherIdentification>"
    )
    assert decode(search_envelope([alien])).request.subject.identifier.alien_number == "A123456789"
    licence = person(
        "<j:PersonAugmentation><nc:DriverLicense><nc:DriverLicenseIdentification>"
        "<nc:IdentificationID>D1234567</nc:IdentificationID><nc:IdentificationSourceText>AZ"
        "</nc:IdentificationSourceText></nc:DriverLicenseIdentification></nc:DriverLicense></j:PersonAugmentation>"
    )
    identifier = decode(search_envelope([licence])).request.subject.identifier
    assert (identifier.driver_license_number, identifier.driver_license_state) == ("D1234567", "AZ")


@pytest.mark.parametrize(
    ("inner", "element"),
    [
        ("<nc:PersonEyeColorCode>BRO</nc:PersonEyeColorCode>", "nc:PersonEyeColorCode"),
        ("<nc:PersonHairColorCode>BLK</nc:PersonHairColorCode>", "nc:PersonHairColorCode"),
        ("<nc:PersonRaceCode>W</nc:PersonRaceCode>", "nc:PersonRaceCode"),
        ("<nc:PersonSexCode>M</nc:PersonSexCode>", "nc:PersonSexCode"),
        (
            "<j:PersonAugmentation><j:PersonFBIIdentification><nc:IdentificationID>12345</nc:IdentificationID>"
            "</j:PersonFBIIdentification></j:PersonAugmentation>",
            "j:PersonFBIIdentification",
        ),
        (
            "<nc:PersonAgeMeasure><nc:MeasureRangeValue><nc:RangeMinimumValue>38</nc:RangeMinimumValue>"
            "</nc:MeasureRangeValue></nc:PersonAgeMeasure>",
            "nc:PersonAgeMeasure",
        ),
        (
            "<nc:PersonWeightMeasure><nc:MeasurePointValue>200</nc:MeasurePointValue></nc:PersonWeightMeasure>",
            "nc:PersonWeightMeasure",
        ),
    ],
)
def test_fields_outside_the_four_categories_are_refused_by_name(inner: str, element: str) -> None:
    error = refused(search_envelope([*name_statements(last="Scott"), person(inner)])).error
    assert isinstance(error, InvalidArgument)
    assert error.reason == "UNKNOWN_FIELD"
    assert any(element in v.field for v in error.violations)


def test_two_different_full_names_are_a_batch() -> None:
    full = "<nc:PersonName><nc:PersonFullName>{}</nc:PersonFullName></nc:PersonName>"
    error = refused(search_envelope([person(full.format("Ann Lee")), person(full.format("Bo Chan"))])).error
    assert error.reason == "BATCH_QUERY"
    # The same name twice is still one subject.
    twice = decode(search_envelope([person(full.format("Ann Lee")), person(full.format("ann  lee"))]))
    assert twice.request.subject.name.full_name == "Ann Lee"


def test_alternate_name_beside_another_name_is_a_batch_alone_it_is_the_name() -> None:
    alternate = person(
        "<nc:PersonAlternateName><nc:PersonSurName>Mouse</nc:PersonSurName></nc:PersonAlternateName>"
    )
    assert refused(search_envelope([*name_statements(last="Scott"), alternate])).error.reason == "BATCH_QUERY"
    assert decode(search_envelope([alternate])).request.subject.name.last_name == "Mouse"


def test_missing_user_assertion_is_refused_but_what_was_read_is_kept_for_audit() -> None:
    refusal = refused(search_envelope(name_statements(last="Scott"), assertion=False))
    assert refusal.error.reason == "MISSING_FIELD"
    assert isinstance(refusal.request, query_pb.SearchRequest)
    assert refusal.request.subject.name.last_name == "Scott"


def test_wildcard_match_code_is_refused() -> None:
    data = search_envelope(name_statements(last="Scott")).replace(b">exact<", b">wildcard<")
    assert refused(data).error.reason == "WILDCARD_QUERY"


def test_purpose_is_mapped_by_the_agreement_table_and_anything_else_refused() -> None:
    assert codec.resolve_purpose("criminal justice", TABLE) == subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
    with pytest.raises(PermissionDenied) as info:
        codec.resolve_purpose("Licensing", TABLE)
    assert info.value.reason == "PURPOSE_NOT_LAWFUL"
    with pytest.raises(InvalidArgument) as missing:
        codec.resolve_purpose("", TABLE)
    assert missing.value.reason == "PURPOSE_REQUIRED"
    assert decode(search_envelope(name_statements(last="Scott"), reason=None)).purpose_text == ""


def test_unknown_operation_is_refused() -> None:
    body = b'<x:doTextSearchRequest xmlns:x="http://ulex.gov/searchretrieve/2.0"/>'
    data = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        + body
        + b"</s:Body></s:Envelope>"
    )
    with pytest.raises(InvalidArgument) as info:
        codec.operation_of(codec.body_of(parse(data)))
    assert info.value.reason == "UNSUPPORTED_OPERATION"
    assert (
        codec.operation_of_action('"http://usdoj.gov/leisp/lexs/publishdiscover/3.1/getAvailability"')
        == "getAvailability"
    )


# ---------------------------------------------------------------- response


def released_response(narrow: bool = False) -> query_pb.SearchResponse:
    person_result = query_pb.PersonResult(
        result_id="P1",
        match_score=1.0,
        name=records_pb2.PersonName(
            first_name="Maria", last_name="Quintanilla", full_name="Maria Quintanilla"
        ),
        date_of_birth="1985-04-12",
        addresses=[
            records_pb2.PostalAddress(street_number="12", street_name="Main St", city="Yuma", state="AZ")
        ],
        physical_description=records_pb2.PhysicalDescription(height_inches=64, eye_color="BROWN"),
        matched_identifiers=[
            records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value="123456789")
        ],
        booking_photos=[records_pb2.BookingPhoto(photo_id="ph1", image=b"\x89PNG")],
        sources=[query_pb.SourceReference(source=records_pb2.SOURCE_SYSTEM_EID, record_id="EID-1")],
    )
    response = query_pb.SearchResponse(
        persons=[person_result], narrow_query_required=narrow, audit_reference=AUDIT_REFERENCE
    )
    response.notice.obtained_via = "Obtained via the DHS Law Enforcement Information Sharing Service"
    response.notice.lesc_instruction = "Contact the Law Enforcement Support Center before acting."
    response.notice.caveat_texts.extend(["For viewing only.", "Do not store."])
    return response


@pytest.mark.parametrize("dialect", [codec.ULEX_2, codec.LEXS_31], ids=["ulex-2.0", "lexs-3.1"])
def test_response_is_shaped_like_the_dhs_sample_with_only_released_fields(dialect: codec.Dialect) -> None:
    answer = codec.Answer(dialect, "uuid:answer", "uuid:question", 10, ("WVFBI9900", "N-DEx", "ndex"))
    root = codec.encode_search_response(released_response(narrow=True), answer, now=NOW)
    text = etree.tostring(root).decode()
    m = dialect.message
    assert root.tag == f"{{{dialect.wrapper}}}doSearchResponse"
    assert root.findtext(f".//{{{m}}}ServerLimitIndicator") == "true"
    assert root.findtext(f".//{{{m}}}DataItemID") == f"{AUDIT_REFERENCE}/P1"
    assert root.find(f".//{{{dialect.digest}}}EntityPerson") is not None
    assert root.findtext(f".//{{{codec.NC}}}PersonName/{{{codec.NC}}}PersonSurName") == "Quintanilla"
    assert (
        root.findtext(f".//{{{codec.NC}}}PersonSSNIdentification/{{{codec.NC}}}IdentificationID")
        == "123456789"
    )
    assert "Law Enforcement Support Center" in text
    for absent in ("PersonRaceCode", "PersonSexCode", "FBIIdentification", "Narrative", "ph1", "PNG"):
        assert absent not in text


def test_a_no_hit_answer_depends_only_on_the_request() -> None:
    answer = codec.Answer(codec.ULEX_2, "uuid:a", "uuid:q", 10)
    empty = query_pb.SearchResponse(audit_reference="ref-1", trace_id="a" * 32)
    other = query_pb.SearchResponse(audit_reference="ref-2", trace_id="b" * 32)
    assert codec.envelope(codec.encode_search_response(empty, answer, now=NOW)) == codec.envelope(
        codec.encode_search_response(other, answer, now=NOW)
    )


def test_fault_carries_the_grpc_reason_and_the_lexs_element_name() -> None:
    error = InvalidArgument(
        "MALFORMED_FIELD",
        "invalid search request",
        violations=[codec_violation("subject.identifier.ssn")],
    )
    fault = codec.read_fault(parse(codec.encode_fault(error)))
    assert fault is not None
    assert (fault.code, fault.reason) == ("soap:Client", "MALFORMED_FIELD")
    assert fault.fields == (
        "lexsdigest:EntityPerson/lexsdigest:Person/nc:PersonSSNIdentification/nc:IdentificationID",
    )


def codec_violation(path: str) -> FieldViolation:
    return FieldViolation(path, "expected nine digits")


# ---------------------------------------------------------------- outbound round trip


@pytest.mark.parametrize("dialect", [codec.ULEX_2, codec.LEXS_31], ids=["ulex-2.0", "lexs-3.1"])
def test_outbound_request_and_partner_answer_round_trip(dialect: codec.Dialect) -> None:
    request = partner_pb.SearchRequest(
        subject=subject_pb2.SubjectQuery(
            name=subject_pb2.NameCriteria(
                first_name="Luis", last_name="Quintanilla", date_of_birth="1990-01-02"
            ),
            identifier=subject_pb2.IdentifierCriteria(alien_number="A123456789"),
        ),
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        requesting_user=subject_pb2.EndUser(user_id="analyst.1", ori="DCICE0000"),
        request_id="evt-123",
    )
    wire = codec.envelope(
        codec.encode_partner_request(
            request,
            dialect,
            reason_text="Criminal Justice",
            destination=("", "N-DEx", "ndex"),
            max_items=50,
            now=NOW,
        )
    )
    search = decode(wire)
    assert search.request.subject == request.subject
    assert (search.request.end_user.user_id, search.request.end_user.ori) == ("analyst.1", "DCICE0000")
    assert search.purpose_text == "Criminal Justice"
    record = records_pb2.PartnerRecord(
        record_id="NDX-1",
        record_type=records_pb2.PARTNER_RECORD_TYPE_ARREST,
        owning_ori="AZ0079900",
        name=records_pb2.PersonName(first_name="Luis", last_name="Quintanilla"),
        date_of_birth="1990-01-02",
        identifiers=[
            records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER, value="A123456789")
        ],
        activity_number="ACT-2019-0012345",
        offense="Burglary",
        match_score=0.875,
    )
    record.event_time.FromDatetime(datetime(2020, 5, 6, tzinfo=UTC))
    answer = codec.encode_partner_response(
        [record],
        dialect,
        owner=("ndex", "N-DEx"),
        in_reply_to="evt-123",
        max_items=50,
        now=NOW,
        message_id="m1",
    )
    records = codec.decode_partner_response(parse(codec.envelope(answer)), "ndex", 50)
    assert records == [record]
    with pytest.raises(OverflowError):
        codec.decode_partner_response(parse(codec.envelope(answer)), "ndex", 0)


# ---------------------------------------------------------------- hostile XML


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (XXE, "XML_DTD_FORBIDDEN"),
        (BILLION_LAUGHS, "XML_DTD_FORBIDDEN"),
        (EXTERNAL_DTD, "XML_DTD_FORBIDDEN"),
        (deeply_nested(), "XML_TOO_DEEP"),
        (deeply_nested(60), "XML_TOO_DEEP"),
        (b"<a>&undeclared;</a>", "MALFORMED_XML"),
        ("<a/>".encode("utf-16"), "XML_ENCODING_REFUSED"),
        (b"<a><b></a>", "MALFORMED_XML"),
    ],
    ids=[
        "xxe",
        "billion-laughs",
        "external-dtd",
        "deep-5000",
        "deep-60",
        "undeclared-entity",
        "utf16",
        "broken",
    ],
)
def test_hostile_xml_is_refused_quickly(data: bytes, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(XmlRefused) as info:
        parse(data)
    assert info.value.reason == reason
    assert time.monotonic() - started < 1.0


def test_fifty_megabytes_is_refused_before_parsing() -> None:
    data = b"<a>" + b"x" * (50 * 1024 * 1024) + b"</a>"
    started = time.monotonic()
    with pytest.raises(XmlRefused) as info:
        parse(data)
    assert info.value.reason == "XML_TOO_LARGE"
    assert time.monotonic() - started < 1.0
