"""Synthetic data generator: determinism, identifier formats, annotation mix, overlap, showcase (issue 3)."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date

import pytest

from leis.common import normalize
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2
from leis_sim import matching as shared
from leis_sim.sources import matching
from leis_sim.sources.store import record_proto
from leis_sim.synth import identifiers as ids
from leis_sim.synth.model import RecordSpec, WorldEntry
from leis_sim.synth.names import all_surnames
from leis_sim.synth.showcase import (
    COMMON_NAME_COUNT,
    REMARKS_MARKER,
    SHOWCASE,
    demo_subjects,
    reserved_numbers,
    showcase,
)
from leis_sim.synth.world import generate

PERSONS = 2000


@pytest.fixture(scope="module")
def world() -> list[WorldEntry]:
    return list(generate(PERSONS, seed=7))


def _records(world: list[WorldEntry], source: str) -> list[RecordSpec]:
    return [r for e in world for r in (e.eid if source == "eid" else e.tecs)]


def _digest(entries: list[WorldEntry]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        for spec in (*entry.eid, *entry.tecs):
            digest.update(record_proto(spec).SerializeToString(deterministic=True))
        for photo in entry.photos:
            digest.update(repr(photo).encode())
    return digest.hexdigest()


def test_same_seed_same_data_and_other_seed_other_data(world: list[WorldEntry]) -> None:
    assert _digest(list(generate(PERSONS, seed=7))) == _digest(world)
    assert _digest(list(generate(PERSONS, seed=8))) != _digest(world)


def test_a_smaller_data_set_is_a_prefix_of_a_larger_one(world: list[WorldEntry]) -> None:
    small = list(generate(500, seed=7))
    assert _digest(small) == _digest(world[: len(small)])


def test_each_source_holds_about_the_requested_number_of_subjects(world: list[WorldEntry]) -> None:
    eid_subjects = {r.subject_id for r in _records(world, "eid")}
    tecs_subjects = {r.subject_id for r in _records(world, "tecs")}
    assert 0.9 * PERSONS < len(eid_subjects) < 1.1 * PERSONS + len(SHOWCASE)
    assert 0.9 * PERSONS < len(tecs_subjects) < 1.1 * PERSONS + len(SHOWCASE)


def test_every_identifier_has_its_real_format(world: list[WorldEntry]) -> None:
    seen: Counter[int] = Counter()
    for spec in (*_records(world, "eid"), *_records(world, "tecs")):
        for identifier in spec.person.identifiers:
            seen[identifier.type] += 1
            value = identifier.value
            if identifier.type == records_pb2.IDENTIFIER_TYPE_SSN:
                assert ids.is_valid_ssn(value), value
                assert normalize.ssn(value) == value
            elif identifier.type == records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER:
                assert ids.ALIEN_RE.fullmatch(value), value
                assert normalize.alien_number(value) == value
            elif identifier.type == records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER:
                assert ids.PASSPORT_RE.fullmatch(value), value
                assert len(identifier.issuer) == 3
                assert identifier.issuer.isupper()
            elif identifier.type == records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID:
                assert ids.ENCOUNTER_RE.fullmatch(value), value
                assert normalize.encounter_id(value) == value
            elif identifier.type == records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER:
                assert ids.dl_regex(identifier.issuer).fullmatch(value), (identifier.issuer, value)
                assert normalize.driver_license_number(value) == value
            else:
                pytest.fail(f"unexpected identifier type {identifier.type}")
        for phone in spec.person.phones:
            assert ids.PHONE_RE.fullmatch(phone), phone
            if phone.startswith("+1"):
                assert ids.US_PHONE_RE.fullmatch(phone), phone
        for address in spec.person.addresses:
            assert len(address.country) == 3
            if address.country == "USA":
                assert ids.ZIP_RE.fullmatch(address.postal_code), address.postal_code
                assert len(address.state) == 2
        for incident in spec.incidents:
            assert ids.ACTIVITY_RE.fullmatch(incident.activity_number), incident.activity_number
        if spec.person.dob:
            assert normalize.iso_date(spec.person.dob) is not None
        assert ids.SUBJECT_ID_RE.fullmatch(spec.subject_id)
        assert ids.RECORD_ID_RE.fullmatch(spec.record_id)
    assert set(seen) == set(matching.IDENTIFIER_FIELDS)


def test_ssn_rules_refuse_never_issued_ranges() -> None:
    for bad in ("000123456", "666123456", "900123456", "123001234", "123450000", "12345678"):
        assert not ids.is_valid_ssn(bad)
    assert ids.is_valid_ssn("123456789")


def test_numbers_are_unique_per_subject_within_a_source(world: list[WorldEntry]) -> None:
    for source in ("eid", "tecs"):
        owners: dict[tuple[int, str, str], set[str]] = {}
        for spec in _records(world, source):
            for identifier in spec.person.identifiers:
                key = (identifier.type, identifier.value, identifier.issuer)
                owners.setdefault(key, set()).add(spec.subject_id)
        shared = {key: subjects for key, subjects in owners.items() if len(subjects) > 1}
        assert not shared


def test_every_annotation_is_in_the_random_mix(world: list[WorldEntry]) -> None:
    random_tecs = [r for r in _records(world, "tecs") if int(r.subject_id[-10:]) > 1000]
    random_eid = [r for r in _records(world, "eid") if int(r.subject_id[-10:]) > 1000]
    roles = Counter(r.role for r in random_tecs)
    assert roles[source_pb.SUBJECT_ROLE_SUSPECT] > roles[source_pb.SUBJECT_ROLE_VICTIM] > 0
    assert roles[source_pb.SUBJECT_ROLE_WITNESS] > 0
    statuses = Counter(r.status for r in random_tecs)
    assert statuses[source_pb.RECORD_STATUS_OPEN] > 0
    assert statuses[source_pb.RECORD_STATUS_CLOSED] > statuses[source_pb.RECORD_STATUS_OPEN]
    restrictions = Counter(c for r in random_tecs for c in r.restrictions)
    assert set(restrictions) == set(source_pb.RestrictionCategory.values()) - {0}
    protected = Counter(c for r in random_eid for c in r.protected_classes)
    assert set(protected) == set(source_pb.ProtectedClass.values()) - {0}
    assert sum(1 for r in random_tecs if r.remarks) > len(random_tecs) // 3
    assert sum(1 for r in random_eid if r.remarks) > 0
    eid_roles = Counter(r.role for r in random_eid)
    assert eid_roles[source_pb.SUBJECT_ROLE_ARRESTEE] > 0
    assert eid_roles[source_pb.SUBJECT_ROLE_ENCOUNTER_SUBJECT] > 0
    assert any(not r.person_subject for r in random_eid)
    assert all(r.person.physical is not None for r in random_eid)
    assert all(r.person.physical is None for r in random_tecs)
    incidents = Counter(i.activity_number for r in random_tecs for i in r.incidents)
    assert max(incidents.values()) > 1, "some incidents name several people"
    assert any(len(r.person.aliases) for r in random_eid)
    assert {a.country for r in random_eid for a in r.person.addresses} - {"USA"}
    assert any(any(not ch.isascii() for ch in r.person.name.full) for r in random_eid)


def test_booking_photos_for_a_share_of_subjects(world: list[WorldEntry]) -> None:
    photos = [p for e in world for p in e.photos]
    eid_subjects = {r.subject_id for r in _records(world, "eid")}
    tecs_subjects = {r.subject_id for r in _records(world, "tecs")}
    with_photo = {p.subject_id for p in photos}
    assert with_photo <= eid_subjects | tecs_subjects
    assert 0.05 < len(with_photo & eid_subjects) / len(eid_subjects) < 0.5
    assert 0.02 < len(with_photo & tecs_subjects) / len(tecs_subjects) < 0.3
    assert len({p.photo_id for p in photos}) == len(photos)


def test_the_same_person_is_in_both_sources_with_variation_but_linkable(world: list[WorldEntry]) -> None:
    both = [e for e in world if e.eid and e.tecs][len(SHOWCASE) :]
    eid_count = sum(1 for e in world if e.eid)
    share = len(both) / eid_count
    assert 0.3 < share < 0.4, share
    differs = linkable = 0
    for entry in both:
        eid, tecs = entry.eid[0].person, entry.tecs[0].person
        if (eid.name, eid.dob, eid.addresses) != (tecs.name, tecs.dob, tecs.addresses):
            differs += 1
        shared_number = {(i.type, i.value) for i in eid.identifiers} & {
            (i.type, i.value) for i in tecs.identifiers
        }
        same_name_dob = (
            bool(eid.dob)
            and normalize.name_key(eid.name.first, eid.name.last)
            == normalize.name_key(tecs.name.first, tecs.name.last)
            and eid.dob == tecs.dob
        )
        linkable += bool(shared_number or same_name_dob)
    assert differs / len(both) > 0.4
    assert linkable / len(both) > 0.85


def test_showcase_persons_are_present_with_their_annotations(world: list[WorldEntry]) -> None:
    by_record = {r.record_id: r for s in ("eid", "tecs") for r in _records(world, s)}
    for person in SHOWCASE:
        for record in person.records:
            spec = by_record[record.record_id]
            assert spec.subject_id == record.subject_id
            assert spec.role == record.role
            assert spec.status == record.status
            assert spec.restrictions == record.restrictions
            assert spec.protected_classes == record.protected_classes
            assert spec.person.dob == person.person.dob
    suspect = showcase("closed_suspect")
    assert all(REMARKS_MARKER in r.remarks[0] for r in suspect.records)
    photos = {p.subject_id for e in world for p in e.photos}
    assert suspect.record("eid").subject_id in photos
    assert showcase("protected_asylum_seeker").record("eid").subject_id in photos
    classes = {c for p in SHOWCASE for r in p.records for c in r.protected_classes}
    assert classes == set(source_pb.ProtectedClass.values()) - {0}
    categories = {c for p in SHOWCASE for r in p.records for c in r.restrictions}
    assert categories == set(source_pb.RestrictionCategory.values()) - {0}
    common = [p for p in SHOWCASE if p.key.startswith("common_name_")]
    assert len(common) == COMMON_NAME_COUNT > 30
    assert len({p.person.dob for p in common}) == COMMON_NAME_COUNT


def test_random_persons_never_collide_with_the_showcase(world: list[WorldEntry]) -> None:
    showcase_keys = {shared.phonetic(p) for s in SHOWCASE for p in shared.family_parts(s.person.name.last)}
    pool_keys = {shared.phonetic(p) for name in all_surnames() for p in shared.family_parts(name)}
    assert not showcase_keys & pool_keys
    reserved = reserved_numbers()
    showcase_subjects = {r.subject_id for s in SHOWCASE for r in s.records}
    for spec in (*_records(world, "eid"), *_records(world, "tecs")):
        if spec.subject_id in showcase_subjects:
            continue
        assert not {i.value for i in spec.person.identifiers} & reserved
        assert not any(i.activity_number.split("-")[2].startswith("9") for i in spec.incidents)
        assert not any("5550" in p[5:9] for p in spec.person.phones if p.startswith("+1"))


def test_reserved_numbers_are_not_handed_out() -> None:
    taken = ids.NumberSource(seed=1).ssn(5)
    source = ids.NumberSource(seed=1, reserved=[taken])
    assert source.ssn(5) != taken
    assert ids.is_valid_ssn(source.ssn(5))
    assert all(source.ssn(i) != taken for i in range(5000))
    assert len({source.ssn(i) for i in range(5000)}) == 5000


def test_incident_dates_follow_the_date_of_birth(world: list[WorldEntry]) -> None:
    for spec in _records(world, "tecs")[:500]:
        for incident in spec.incidents:
            assert date(2005, 1, 1) <= incident.occurred <= date(2024, 12, 31)


def test_demo_subjects_name_showcase_persons() -> None:
    subjects = demo_subjects()
    assert subjects["protected"].query.name.last_name == "Warsame"
    assert subjects["outbound"].query.name.last_name
