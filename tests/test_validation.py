"""Query validation (R-Q-1, R-Q-2, R-Q-4): every field checked, every violation collected."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leis.common.errors import InvalidArgument
from leis.rules import validation
from leis_api.v1 import federated_search_service_pb2, query_service_pb2, subject_pb2

TODAY = date(2026, 6, 15)


def request(**subject: dict[str, str]) -> query_service_pb2.SearchRequest:
    """A well-formed request whose subject holds the given categories."""
    req = query_service_pb2.SearchRequest(
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        end_user=subject_pb2.EndUser(user_id="officer.0042", ori="AZ0070000"),
    )
    for category, values in subject.items():
        getattr(req.subject, category).SetInParent()
        for field, value in values.items():
            setattr(getattr(req.subject, category), field, value)
    return req


def validate(req: Any) -> validation.ValidatedQuery:
    return validation.validate_search(req, today=TODAY)


def refusal(req: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        validate(req)
    return info.value


def assert_refused(req: Any, reason: str, field: str) -> None:
    err = refusal(req)
    assert err.reason == reason, err.violations
    assert field in {v.field for v in err.violations}, err.violations


# --- accepted queries and their normalisation ---------------------------------------------------


def test_each_category_alone_is_accepted() -> None:
    cases = {
        "name": {"last_name": "Doe"},
        "identifier": {"ssn": "123-45-6789"},
        "address": {"street_name": "Main Street"},
        "incident": {"activity_number": "ACT-2019-0012345"},
    }
    for category, values in cases.items():
        query = validate(request(**{category: values}))
        assert query.categories == (category.upper(),)
        assert f"QUERY_CATEGORY_{query.categories[0]}" in subject_pb2.QueryCategory.keys()  # noqa: SIM118 (an enum wrapper, not a dict)


def test_all_categories_together_and_end_user_fields() -> None:
    req = request(
        name={
            "first_name": " José ",
            "middle_name": "  Luis",
            "last_name": "García  Márquez",
            "date_of_birth": "1980-02-29",
        },
        identifier={"passport_number": "x1234567", "passport_country": "mex"},
        address={
            "street_number": "12b",
            "street_name": "Main  St.",
            "city": "Phoenix",
            "state": "az",
            "postal_code": "85001",
        },
        incident={
            "activity_number": "act-2019-0012345",
            "activity_description": "Cargo theft, port of entry",
        },
    )
    req.end_user.ori = " az0070000 "
    req.client_request_id = "req-1"
    query = validate(req)
    assert query.categories == ("NAME", "IDENTIFIER", "ADDRESS", "INCIDENT")
    s = query.subject
    assert (s.name.first_name, s.name.middle_name, s.name.last_name) == ("José", "Luis", "García Márquez")
    assert s.name.date_of_birth == "1980-02-29"
    assert (s.identifier.passport_number, s.identifier.passport_country) == ("X1234567", "MEX")
    assert (s.address.street_number, s.address.street_name, s.address.state) == ("12B", "Main St.", "AZ")
    assert s.incident.activity_number == "ACT-2019-0012345"
    assert query.ori == "AZ0070000"
    assert query.user_id == "officer.0042"
    assert query.client_request_id == "req-1"
    assert query.purpose == subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
    assert "subject.name.date_of_birth" in query.fields
    assert all(f.startswith("subject.") for f in query.fields)


@pytest.mark.parametrize(
    ("field", "raw", "normalised"),
    [
        ("ssn", "123-45-6789", "123456789"),
        ("ssn", "123456789", "123456789"),
        ("alien_number", "A12345678", "A012345678"),
        ("alien_number", "a-123456789", "A123456789"),
        ("encounter_id", "enc-0000000042", "ENC-0000000042"),
        ("encounter_id", "ENC0000000042", "ENC-0000000042"),
        ("passport_number", "ab12345", "AB12345"),
        ("driver_license_number", "d123-4567-8901", "D12345678901"),
        ("driver_license_number", "W 1234", "W1234"),
    ],
)
def test_identifier_normalisation(field: str, raw: str, normalised: str) -> None:
    query = validate(request(identifier={field: raw}))
    assert getattr(query.subject.identifier, field) == normalised


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+44 20 7946 0000", "+442079460000"),
        ("(602) 555-0100", "+16025550100"),
        ("602.555.0100", "+16025550100"),
        ("1-602-555-0100", "+16025550100"),
    ],
)
def test_phone_normalisation(raw: str, normalised: str) -> None:
    assert validate(request(address={"phone_number": raw})).subject.address.phone_number == normalised


def test_zip_and_foreign_postal_code() -> None:
    assert validate(request(address={"postal_code": "85001-1234"})).subject.address.postal_code == "850011234"
    foreign = validate(
        request(address={"postal_code": "sw1a 1aa", "country": "gbr", "state": "Greater London"})
    )
    assert foreign.subject.address.postal_code == "SW1A 1AA"
    assert foreign.subject.address.country == "GBR"


def test_full_name_in_last_first_order_is_put_in_display_order() -> None:
    query = validate(request(name={"full_name": "de la Cruz,  María"}))
    assert query.subject.name.full_name == "María de la Cruz"


def test_names_with_apostrophes_hyphens_and_marks_are_accepted() -> None:
    query = validate(request(name={"first_name": "Zoë", "last_name": "O'Neil-Smith Jr."}))
    assert query.subject.name.last_name == "O'Neil-Smith Jr."


def test_whitespace_only_fields_are_absent() -> None:
    query = validate(request(name={"last_name": "Doe", "first_name": "   "}))
    assert query.subject.name.first_name == ""


def test_normalised_query_validates_to_itself() -> None:
    req = request(
        name={"full_name": "Doe, John", "date_of_birth": "1970-01-01"},
        identifier={"alien_number": "A-12345678"},
        address={"phone_number": "(602) 555-0100"},
        incident={"activity_number": "act 2019 0012345"},
    )
    once = validate(req).subject
    again = query_service_pb2.SearchRequest()
    again.CopyFrom(req)
    again.subject.CopyFrom(once)
    assert validate(again).subject == once


def test_federated_request_is_validated_the_same_way() -> None:
    req = federated_search_service_pb2.FederatedSearchServiceSearchRequest(
        purpose=subject_pb2.PURPOSE_NATIONAL_SECURITY,
        end_user=subject_pb2.EndUser(user_id="analyst", ori="DC0000000"),
    )
    req.subject.identifier.ssn = "123-45-6789"
    assert validate(req).subject.identifier.ssn == "123456789"
    req.subject.identifier.ssn = "000-45-6789"
    assert_refused(req, validation.MALFORMED_FIELD, "subject.identifier.ssn")


# --- refusals: structure --------------------------------------------------------------------------


def test_no_subject_is_an_empty_query() -> None:
    req = request()
    req.ClearField("subject")
    assert_refused(req, validation.EMPTY_QUERY, "subject")


def test_subject_without_category_is_an_empty_query() -> None:
    req = request()
    req.subject.SetInParent()
    assert_refused(req, validation.EMPTY_QUERY, "subject")


@pytest.mark.parametrize(
    ("category", "values", "field"),
    [
        ("name", {}, "subject.name"),
        ("name", {"date_of_birth": "1970-01-01"}, "subject.name"),
        ("name", {"first_name": "John"}, "subject.name.last_name"),
        ("name", {"middle_name": "Q"}, "subject.name.last_name"),
        ("identifier", {}, "subject.identifier"),
        ("address", {}, "subject.address"),
        ("address", {"city": "Phoenix", "state": "AZ"}, "subject.address"),
        ("address", {"street_number": "12", "postal_code": "85001"}, "subject.address.street_name"),
        ("incident", {}, "subject.incident.activity_number"),
        ("incident", {"activity_description": "theft"}, "subject.incident.activity_number"),
    ],
)
def test_missing_required_field(category: str, values: dict[str, str], field: str) -> None:
    assert_refused(request(**{category: values}), validation.MISSING_FIELD, field)


@pytest.mark.parametrize(
    ("category", "values", "field"),
    [
        ("name", {"full_name": "John Doe", "last_name": "Doe"}, "subject.name.full_name"),
        (
            "address",
            {"full_address": "1 Main St, Phoenix AZ", "city": "Phoenix"},
            "subject.address.full_address",
        ),
        (
            "identifier",
            {"ssn": "123-45-6789", "passport_country": "MEX"},
            "subject.identifier.passport_country",
        ),
        (
            "identifier",
            {"passport_number": "X1234567", "driver_license_state": "AZ"},
            "subject.identifier.driver_license_state",
        ),
    ],
)
def test_conflicting_fields(category: str, values: dict[str, str], field: str) -> None:
    assert_refused(request(**{category: values}), validation.CONFLICTING_FIELDS, field)


def test_two_identifiers_name_each_number() -> None:
    err = refusal(
        request(identifier={"ssn": "123-45-6789", "alien_number": "A123456789", "encounter_id": ""})
    )
    assert err.reason == validation.TOO_MANY_IDENTIFIERS
    assert {v.field for v in err.violations} == {"subject.identifier.ssn", "subject.identifier.alien_number"}


def test_missing_end_user() -> None:
    req = request(name={"last_name": "Doe"})
    req.ClearField("end_user")
    err = refusal(req)
    assert err.reason == validation.MISSING_FIELD
    assert {v.field for v in err.violations} == {"end_user.user_id", "end_user.ori"}


def test_all_violations_are_collected_one_per_field() -> None:
    req = request(
        name={"last_name": "Doe1", "date_of_birth": "1970-13-01"},
        identifier={"ssn": "666-45-6789", "alien_number": "A1"},
    )
    req.end_user.ori = "AZ00"
    err = refusal(req)
    fields = [v.field for v in err.violations]
    assert len(fields) == len(set(fields))
    assert set(fields) == {
        "subject.name.last_name",
        "subject.name.date_of_birth",
        "subject.identifier.ssn",
        "subject.identifier.alien_number",
        "end_user.ori",
    }
    assert err.reason == validation.TOO_MANY_IDENTIFIERS


# --- refusals: formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "field", "value"),
    [
        ("name", "date_of_birth", "1970-1-1"),
        ("name", "date_of_birth", "19700101"),
        ("name", "date_of_birth", "1970-02-30"),
        ("name", "date_of_birth", "2026-06-17"),
        ("name", "date_of_birth", "1899-12-31"),
        ("name", "date_of_birth", "1970-W01-1"),
        ("name", "last_name", "D0e"),
        ("name", "last_name", "Doe & Roe"),
        ("name", "last_name", "--"),
        ("name", "full_name", ", John"),
        ("identifier", "ssn", "000-12-3456"),
        ("identifier", "ssn", "666-12-3456"),
        ("identifier", "ssn", "912-12-3456"),
        ("identifier", "ssn", "123-00-3456"),
        ("identifier", "ssn", "123-45-0000"),
        ("identifier", "ssn", "123-456789"),
        ("identifier", "ssn", "12345678"),
        ("identifier", "ssn", "١٢٣٤٥٦٧٨٩"),
        ("identifier", "alien_number", "A1234567"),
        ("identifier", "alien_number", "A1234567890"),
        ("identifier", "alien_number", "B12345678"),
        ("identifier", "passport_number", "AB12"),
        ("identifier", "passport_number", "AB1234567890"),
        ("identifier", "passport_number", "AB-12345"),
        ("identifier", "encounter_id", "ENC-123"),
        ("identifier", "encounter_id", "EN-0000000042"),
        ("identifier", "driver_license_number", "D12"),
        ("identifier", "driver_license_number", "D1234567890123456"),
        ("address", "postal_code", "8500"),
        ("address", "postal_code", "850011"),
        ("address", "phone_number", "555-0100"),
        ("address", "phone_number", "+0 123 4567"),
        ("address", "phone_number", "call me"),
        ("address", "street_name", "!!!"),
        ("incident", "activity_number", "12345"),
        ("incident", "activity_number", "ACT-19-12"),
    ],
)
def test_malformed_field(category: str, field: str, value: str) -> None:
    values = {field: value}
    if category == "name" and field == "date_of_birth":
        values["last_name"] = "Doe"
    assert_refused(request(**{category: values}), validation.MALFORMED_FIELD, f"subject.{category}.{field}")


@pytest.mark.parametrize(
    ("owner", "field", "value"),
    [
        ({"driver_license_number": "D1234"}, "driver_license_state", "ZZ"),
        ({"driver_license_number": "D1234"}, "driver_license_state", "Arizona"),
        ({"passport_number": "X1234567"}, "passport_country", "MX"),
        ({"passport_number": "X1234567"}, "passport_country", "M3X"),
    ],
)
def test_malformed_issuer(owner: dict[str, str], field: str, value: str) -> None:
    assert_refused(
        request(identifier={**owner, field: value}), validation.MALFORMED_FIELD, f"subject.identifier.{field}"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("state", "ZZ"), ("country", "US"), ("country", "U5A")],
)
def test_malformed_address_codes(field: str, value: str) -> None:
    assert_refused(
        request(address={"street_name": "Main St", field: value}),
        validation.MALFORMED_FIELD,
        f"subject.address.{field}",
    )


def test_dob_one_day_ahead_is_tolerated_for_time_zones() -> None:
    assert validate(
        request(name={"last_name": "Doe", "date_of_birth": "2026-06-16"})
    ).subject.name.date_of_birth


@pytest.mark.parametrize(
    ("user_id", "ori", "field", "reason"),
    [
        ("", "AZ0070000", "end_user.user_id", validation.MISSING_FIELD),
        ("x" * 65, "AZ0070000", "end_user.user_id", validation.OVERSIZE_FIELD),
        ("bad\x07id", "AZ0070000", "end_user.user_id", validation.MALFORMED_FIELD),
        ("officer", "", "end_user.ori", validation.MISSING_FIELD),
        ("officer", "AZ00700001", "end_user.ori", validation.MALFORMED_FIELD),
        ("officer", "1Z0070000", "end_user.ori", validation.MALFORMED_FIELD),
        ("officer", "AZ007000-", "end_user.ori", validation.MALFORMED_FIELD),
    ],
)
def test_end_user_refusals(user_id: str, ori: str, field: str, reason: str) -> None:
    req = request(name={"last_name": "Doe"})
    req.end_user.user_id = user_id
    req.end_user.ori = ori
    assert_refused(req, reason, field)


def test_client_request_id_bounds() -> None:
    req = request(name={"last_name": "Doe"})
    req.client_request_id = "c" * 65
    assert_refused(req, validation.OVERSIZE_FIELD, "client_request_id")
    req.client_request_id = "c\u200b"
    assert_refused(req, validation.MALFORMED_FIELD, "client_request_id")


@pytest.mark.parametrize(
    ("category", "field", "cap"),
    [
        ("name", "last_name", 100),
        ("name", "first_name", 100),
        ("name", "full_name", 150),
        ("identifier", "ssn", 32),
        ("address", "full_address", 200),
        ("address", "street_name", 100),
        ("address", "city", 64),
        ("incident", "activity_description", 200),
        ("incident", "activity_number", 32),
    ],
)
def test_oversize_field(category: str, field: str, cap: int) -> None:
    values = {field: "a" * (cap + 1)}
    assert_refused(request(**{category: values}), validation.OVERSIZE_FIELD, f"subject.{category}.{field}")


def test_oversize_is_judged_before_content() -> None:
    assert_refused(
        request(name={"last_name": "*" * 101}), validation.OVERSIZE_FIELD, "subject.name.last_name"
    )


@pytest.mark.parametrize(
    ("category", "field", "value"),
    [
        ("name", "last_name", "Do\x00e"),
        ("name", "last_name", "Doe\t"),
        ("name", "last_name", "Do\u202ee"),
        ("name", "last_name", "Do\u200be"),
        ("address", "street_name", "Main\x1bSt"),
        ("incident", "activity_description", "theft\nfraud"),
    ],
)
def test_control_and_invisible_characters_are_refused(category: str, field: str, value: str) -> None:
    values = {field: value}
    if category == "incident":
        values["activity_number"] = "ACT-2019-0012345"
    assert_refused(request(**{category: values}), validation.MALFORMED_FIELD, f"subject.{category}.{field}")


# --- refusals: batches and wildcards (R-Q-2) -----------------------------------------------------


@pytest.mark.parametrize(
    ("category", "field", "value"),
    [
        ("name", "last_name", "Doe, Roe"),
        ("name", "last_name", "Doe;Roe"),
        ("name", "last_name", "Doe\nRoe"),
        ("name", "last_name", "Doe|Roe"),
        ("name", "first_name", "John/Jane"),
        ("name", "full_name", "Doe, John, Roe, Jane"),
        ("name", "full_name", "John Doe; Jane Roe"),
        ("identifier", "ssn", "123-45-6789,223-45-6789"),
        ("identifier", "ssn", "123-45-6789 223-45-6789"),
        ("identifier", "alien_number", "A123456789\nA223456789"),
        ("identifier", "passport_number", "X1234567;Y1234567"),
        ("identifier", "driver_license_number", "D1234 E5678"),
        ("address", "phone_number", "6025550100,6025550101"),
        ("address", "street_name", "Main St; Oak St"),
        ("incident", "activity_number", "ACT-2019-0012345,ACT-2019-1"),
    ],
)
def test_lists_in_one_field_are_a_batch(category: str, field: str, value: str) -> None:
    values = {field: value}
    if category == "name" and field == "first_name":
        values["last_name"] = "Doe"
    assert_refused(request(**{category: values}), validation.BATCH_QUERY, f"subject.{category}.{field}")


@pytest.mark.parametrize(
    ("category", "field", "value"),
    [
        ("name", "last_name", "Sm*"),
        ("name", "last_name", "Sm%"),
        ("name", "last_name", "Sm?th"),
        ("name", "last_name", "_"),
        ("name", "full_name", "J.. Doe"),
        ("identifier", "ssn", "123-45-*"),
        ("identifier", "passport_number", "X12345%"),
        ("address", "street_name", "Ma*"),
        ("address", "postal_code", "850%"),
        ("incident", "activity_number", "ACT-2019-*"),
    ],
)
def test_wildcards_are_refused(category: str, field: str, value: str) -> None:
    assert_refused(
        request(**{category: {field: value}}), validation.WILDCARD_QUERY, f"subject.{category}.{field}"
    )


def test_address_commas_are_not_a_batch() -> None:
    query = validate(request(address={"full_address": "12 Main St, Apt 4, Phoenix, AZ 85001"}))
    assert query.subject.address.full_address == "12 Main St, Apt 4, Phoenix, AZ 85001"


# --- unknown fields ------------------------------------------------------------------------------

_UNKNOWN_VARINT_FIELD_101 = bytes([0xA8, 0x06, 0x01])


def _with_unknown(message: Any) -> None:
    data = message.SerializeToString() + _UNKNOWN_VARINT_FIELD_101
    message.ParseFromString(data)


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("request", lambda r: r),
        ("subject", lambda r: r.subject),
        ("subject.name", lambda r: r.subject.name),
        ("subject.identifier", lambda r: r.subject.identifier),
        ("end_user", lambda r: r.end_user),
    ],
)
def test_unknown_fields_are_refused_where_they_are(path: str, target: Any) -> None:
    req = request(name={"last_name": "Doe"}, identifier={"ssn": "123-45-6789"})
    _with_unknown(target(req))
    err = refusal(req)
    assert err.reason == validation.UNKNOWN_FIELD
    assert [v.field for v in err.violations] == [path]
    assert "101" in err.violations[0].description


def test_refusal_messages_carry_no_query_values() -> None:
    req = request(
        name={"last_name": "Zyxwvut1", "date_of_birth": "1970-99-99"}, identifier={"ssn": "666-11-2222"}
    )
    err = refusal(req)
    text = " ".join([err.message, *(v.description for v in err.violations)])
    for value in ("Zyxwvut", "1970-99-99", "666", "2222"):
        assert value not in text


def test_normalise_ori() -> None:
    assert validation.normalise_ori(" az0070000") == "AZ0070000"
    assert validation.normalise_ori("AZ007") is None


# --- property: validation never crashes ----------------------------------------------------------

_HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "*",
        "_",
        "..",
        ",",
        ";",
        "\n",
        "\x00",
        "\u202e",
        "A" * 300,
        "Doe",
        "123-45-6789",
        "A123456789",
        "ENC-0000000042",
        "1970-01-01",
        "9999-99-99",
        "+16025550100",
        "AZ",
        "USA",
        "ACT-2019-0012345",
        "é",
        "٣",
    ]
)
_TEXT = st.one_of(st.text(max_size=40), _HOSTILE, st.text(alphabet="0123456789-ACENTZ ,*", max_size=20))

_FIELDS = {
    "name": [f.name for f in subject_pb2.NameCriteria.DESCRIPTOR.fields],
    "identifier": [f.name for f in subject_pb2.IdentifierCriteria.DESCRIPTOR.fields],
    "address": [f.name for f in subject_pb2.AddressCriteria.DESCRIPTOR.fields],
    "incident": [f.name for f in subject_pb2.IncidentCriteria.DESCRIPTOR.fields],
}


@st.composite
def search_requests(draw: st.DrawFn) -> query_service_pb2.SearchRequest:
    req = query_service_pb2.SearchRequest(
        purpose=cast(subject_pb2.Purpose.ValueType, draw(st.integers(-2, 8)))
    )
    for category, fields in _FIELDS.items():
        if draw(st.booleans()):
            getattr(req.subject, category).SetInParent()
            for field in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True)):
                setattr(getattr(req.subject, category), field, draw(_TEXT))
    if draw(st.booleans()):
        req.end_user.user_id = draw(_TEXT)
        req.end_user.ori = draw(st.one_of(_TEXT, st.just("AZ0070000")))
    req.client_request_id = draw(st.one_of(st.just(""), _TEXT))
    if draw(st.booleans()):
        data = req.SerializeToString() + draw(st.binary(max_size=12))
        parsed = query_service_pb2.SearchRequest()
        try:
            parsed.ParseFromString(data)
        except DecodeError:  # undecodable bytes never reach the validator
            return req
        return parsed
    return req


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(search_requests())
def test_validation_only_accepts_or_refuses(req: query_service_pb2.SearchRequest) -> None:
    outcome = _outcome(req)
    if isinstance(outcome, InvalidArgument):
        assert outcome.violations
        assert all(v.field for v in outcome.violations)
        assert outcome.to_status().code.name == "INVALID_ARGUMENT"
        return
    assert outcome.categories
    again = query_service_pb2.SearchRequest()
    again.CopyFrom(req)
    again.subject.CopyFrom(outcome.subject)
    again.end_user.ori = outcome.ori
    assert validate(again).subject == outcome.subject


def _outcome(req: query_service_pb2.SearchRequest) -> validation.ValidatedQuery | InvalidArgument:
    """The validated query or the InvalidArgument; any other exception propagates and fails the test."""
    try:
        return validate(req)
    except InvalidArgument as err:
        return err


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_accept_or_refuse(data: bytes) -> None:
    req = query_service_pb2.SearchRequest()
    try:
        req.ParseFromString(data)
    except DecodeError:  # undecodable bytes never reach the validator
        return
    assert isinstance(_outcome(req), validation.ValidatedQuery | InvalidArgument)
