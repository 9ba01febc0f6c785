"""Source-side matching (R-Q-6): normalisation, index keys, tolerant names, scores. Pure functions.

The shared parts (``leis_sim.matching``: phonetic, street, postal, phone and date-of-birth keys)
are checked here too, through the source policy that uses them.
"""

from __future__ import annotations

import pytest

from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim import matching as shared
from leis_sim.sources import matching


def _record(**fields: object) -> source_pb.SourceRecord:
    return source_pb.SourceRecord(**fields)  # type: ignore[arg-type]


def _name(first: str, last: str, middle: str = "") -> records_pb2.PersonName:
    return records_pb2.PersonName(first_name=first, middle_name=middle, last_name=last)


def _query(**categories: object) -> matching.Query:
    return matching.normalize_query(subject_pb2.SubjectQuery(**categories))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stored", "queried"),
    [
        ("Al-Rashid", "alrashid"),
        ("Al Rashid", "AL-RASHID"),
        ("Hernández", "Hernandez"),
        ("O'Neil", "ONEIL"),
        ("Mohammed", "Muhammad"),
        ("Catherine", "Katherine"),
        ("Aleksandr", "Alexander"),
    ],
)
def test_variants_share_the_phonetic_index_key(stored: str, queried: str) -> None:
    assert shared.phonetic(shared.compact(stored)) == shared.phonetic(shared.compact(queried))


def test_a_double_family_name_is_indexed_under_each_word() -> None:
    keys = matching.name_index_keys("José", "García López")
    families = {family for family, _ in keys}
    assert shared.phonetic("GARCIA") in families
    assert shared.phonetic("LOPEZ") in families
    assert shared.phonetic("GARCIALOPEZ") in families


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("Maria de la Cruz", ("Maria", "", "de la Cruz")),
        ("Mohammed Al Rashid", ("Mohammed", "", "Al Rashid")),
        ("Juan Carlos Garcia", ("Juan", "Carlos", "Garcia")),
        ("Garcia, Juan Carlos", ("Juan", "Carlos", "Garcia")),
        ("Pettigrew", ("", "", "Pettigrew")),
    ],
)
def test_full_names_split_with_family_particles(full: str, expected: tuple[str, str, str]) -> None:
    assert matching.split_full_name(full) == expected


def test_address_and_phone_normalisation() -> None:
    assert shared.street_key("N Larchmont Avenue") == shared.street_key("Larchmont Ave") == "LARCHMONT"
    assert shared.postal_key("85719-1234") == "85719"
    assert shared.phone_key("(520) 555-0142") == "+15205550142"
    assert shared.phone_key("+52 33 1234 5678") == "+523312345678"
    parsed = matching.parse_full_address("1420 Larchmont Avenue # 3B, Tucson, AZ 85719-0001")
    assert parsed == ("1420", "LARCHMONT AVENUE", "3B", "TUCSON", "AZ", "85719")


def test_identifier_values_are_normalised() -> None:
    assert matching.identifier_value(records_pb2.IDENTIFIER_TYPE_SSN, "521-47-3386") == "521473386"
    assert matching.identifier_value(records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER, "a12345678") == "A012345678"
    assert (
        matching.identifier_value(records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID, "enc0000000042")
        == "ENC-0000000042"
    )
    assert (
        matching.identifier_value(records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER, "d84-216 075")
        == "D84216075"
    )


def test_dob_candidates_cover_swaps_single_digit_typos_and_unknown() -> None:
    candidates = [c for tier in shared.dob_tiers("1984-03-17") for c in tier]
    assert candidates[0] == "1984-03-17"
    assert "1984-03-18" in candidates
    assert "1994-03-17" in candidates
    assert "" in candidates
    assert "1984-17-03" not in candidates  # not a date
    assert "1984-12-03" in shared.dob_tiers("1984-03-12")[0]
    assert all(c == "" or len(c) == 10 for c in candidates)
    exact, typos, unknown = shared.dob_tiers("1984-03-12")
    assert exact == ["1984-03-12", "1984-12-03"]
    assert "1984-03-13" in typos
    assert unknown == [""]


@pytest.mark.parametrize(
    ("record_dob", "factor"),
    [("1984-03-17", 1.0), ("", 0.85), ("1984-03-18", 0.75), ("1991-01-01", 0.35)],
)
def test_dob_factor(record_dob: str, factor: float) -> None:
    assert shared.dob_factor("1984-03-17", record_dob)[0] == factor
    assert shared.dob_factor("1984-03-12", "1984-12-03")[0] == 0.88


def test_an_exact_identifier_scores_one_and_names_the_field() -> None:
    record = _record(
        identifiers=[records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value="521473386")]
    )
    match = matching.score_record(
        _query(identifier=subject_pb2.IdentifierCriteria(ssn="521-47-3386")), record
    )
    assert match == matching.Match(1.0, ("identifier.ssn",))
    assert (
        matching.score_record(_query(identifier=subject_pb2.IdentifierCriteria(ssn="521-47-3387")), record)
        is None
    )


def test_passport_issuer_must_agree_when_both_are_known() -> None:
    passport = records_pb2.PersonIdentifier(
        type=records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER, value="G41870552", issuer="MEX"
    )
    record = _record(identifiers=[passport])
    same = _query(
        identifier=subject_pb2.IdentifierCriteria(passport_number="g41870552", passport_country="MEX")
    )
    other = _query(
        identifier=subject_pb2.IdentifierCriteria(passport_number="G41870552", passport_country="GTM")
    )
    assert matching.score_record(same, record) is not None
    assert matching.score_record(other, record) is None


def test_tolerant_name_match_scores_below_exact_and_dob_raises_it() -> None:
    record = _record(name=_name("Mohammed", "Al-Rashid"), date_of_birth="1980-02-14")
    exact = matching.score_record(
        _query(
            name=subject_pb2.NameCriteria(
                first_name="Mohammed", last_name="Al-Rashid", date_of_birth="1980-02-14"
            )
        ),
        record,
    )
    tolerant = matching.score_record(
        _query(name=subject_pb2.NameCriteria(first_name="Muhammad", last_name="Alrashid")), record
    )
    with_dob = matching.score_record(
        _query(
            name=subject_pb2.NameCriteria(
                first_name="Muhammad", last_name="Alrashid", date_of_birth="1980-02-14"
            )
        ),
        record,
    )
    assert exact is not None
    assert tolerant is not None
    assert with_dob is not None
    assert exact.score == matching.NON_IDENTIFIER_CAP
    assert 0.8 < tolerant.score < with_dob.score < exact.score
    assert "name.last_name" in tolerant.fields
    assert "name.date_of_birth" in with_dob.fields


def test_dob_mismatch_lowers_the_score_a_lot() -> None:
    record = _record(name=_name("Harriet", "Pembrook"), date_of_birth="1972-08-09")
    good = matching.score_record(
        _query(
            name=subject_pb2.NameCriteria(
                first_name="Harriet", last_name="Pembrook", date_of_birth="1972-08-09"
            )
        ),
        record,
    )
    bad = matching.score_record(
        _query(
            name=subject_pb2.NameCriteria(
                first_name="Harriet", last_name="Pembrook", date_of_birth="1990-01-01"
            )
        ),
        record,
    )
    assert good is not None
    assert bad is not None
    assert bad.score < good.score / 2


def test_aliases_and_swapped_names_match() -> None:
    record = _record(name=_name("Maria", "Lopez"), aliases=[_name("Maria", "Garcia")])
    alias = matching.score_record(
        _query(name=subject_pb2.NameCriteria(first_name="Maria", last_name="Garcia")), record
    )
    swapped = matching.score_record(
        _query(name=subject_pb2.NameCriteria(first_name="Lopez", last_name="Maria")), record
    )
    assert alias is not None
    assert swapped is not None
    assert swapped.score < alias.score


def test_different_names_do_not_match() -> None:
    record = _record(name=_name("Harriet", "Pembrook"))
    assert (
        matching.score_record(
            _query(name=subject_pb2.NameCriteria(first_name="Harriet", last_name="Smith")), record
        )
        is None
    )
    assert (
        matching.score_record(
            _query(name=subject_pb2.NameCriteria(first_name="Tom", last_name="Pembrook")), record
        )
        is None
    )


def test_address_phone_and_incident_matches_name_their_fields() -> None:
    record = _record(
        addresses=[
            records_pb2.PostalAddress(
                street_number="1420",
                street_name="Larchmont Ave",
                secondary_unit="Apt 3B",
                city="Tucson",
                state="AZ",
                country="USA",
                postal_code="85719",
            )
        ],
        phone_numbers=["+15205550142"],
        incidents=[
            source_pb.Incident(activity_number="ACT-2019-9000002", activity_description="Bulk cash smuggling")
        ],
    )
    address = matching.score_record(
        _query(
            address=subject_pb2.AddressCriteria(
                street_number="1420", street_name="Larchmont Avenue", postal_code="85719"
            )
        ),
        record,
    )
    assert address is not None
    assert set(address.fields) == {"address.street_number", "address.street_name", "address.postal_code"}
    phone = matching.score_record(
        _query(address=subject_pb2.AddressCriteria(phone_number="520-555-0142")), record
    )
    assert phone is not None
    assert phone.fields == ("address.phone_number",)
    incident = matching.score_record(
        _query(
            incident=subject_pb2.IncidentCriteria(
                activity_number="ACT-2019-9000002", activity_description="cash smuggling"
            )
        ),
        record,
    )
    assert incident is not None
    assert incident.fields == ("incident.activity_number", "incident.activity_description")
    narrowed_out = matching.score_record(
        _query(
            incident=subject_pb2.IncidentCriteria(
                activity_number="ACT-2019-9000002", activity_description="weapons export"
            )
        ),
        record,
    )
    assert narrowed_out is None


def test_a_contradicting_identifier_lowers_a_name_match() -> None:
    record = _record(
        name=_name("Harriet", "Pembrook"),
        identifiers=[records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value="523640918")],
    )
    name = subject_pb2.NameCriteria(first_name="Harriet", last_name="Pembrook")
    alone = matching.score_record(_query(name=name), record)
    contradicted = matching.score_record(
        _query(name=name, identifier=subject_pb2.IdentifierCriteria(ssn="123-45-6789")), record
    )
    unknown = matching.score_record(
        _query(name=name, identifier=subject_pb2.IdentifierCriteria(alien_number="A123456789")), record
    )
    assert alone is not None
    assert contradicted is not None
    assert unknown is not None
    assert contradicted.score < alone.score == unknown.score
