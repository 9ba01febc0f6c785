"""Source stores: seeding (atomic, refuses to overwrite), index use of every look-up, searches, photos."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from leis_api.source.v1.source_service_pb2 import SUBJECT_ROLE_ARRESTEE as ARRESTEE
from leis_api.source.v1.source_service_pb2 import SourceRecord
from leis_api.v1 import subject_pb2
from leis_sim.sources import matching
from leis_sim.sources.seed import seed_sources, source_paths
from leis_sim.sources.store import (
    LOOKUPS,
    MIN_CANDIDATES,
    PHOTO_LOOKUP,
    PhotoStore,
    SourceStore,
    SourceWriter,
    StoreError,
    read_meta,
)
from leis_sim.synth.model import Name, PersonView, RecordSpec
from leis_sim.synth.showcase import COMMON_NAME_COUNT, showcase

PERSONS = 1500


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sources")
    seed_sources(directory, PERSONS, seed=11, progress=False)
    return directory


@pytest.fixture(scope="module")
def eid(data_dir: Path) -> Iterator[SourceStore]:
    store = SourceStore(data_dir / "eid.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def tecs(data_dir: Path) -> Iterator[SourceStore]:
    store = SourceStore(data_dir / "tecs.db")
    yield store
    store.close()


def _search(
    store: SourceStore, max_records: int = 100, **categories: object
) -> list[tuple[str, float, list[str]]]:
    query = matching.normalize_query(subject_pb2.SubjectQuery(**categories))  # type: ignore[arg-type]
    result = store.search(query, max_records)
    return [(r.record_id, r.match_score, list(r.matched_fields)) for r in result.records]


def test_seed_writes_three_files_with_meta_and_no_leftovers(data_dir: Path) -> None:
    paths = source_paths(data_dir)
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(p.name for p in paths.values())
    meta = read_meta(paths["eid"])
    assert meta["persons"] == str(PERSONS)
    assert meta["seed"] == "11"
    assert int(meta["records"]) > PERSONS
    assert int(read_meta(paths["photos"])["photos"]) > 100


def test_seed_refuses_to_overwrite_without_force(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match="--force"):
        seed_sources(data_dir, 10, progress=False)
    report = seed_sources(tmp_path, 10, progress=False)
    before = report.sizes["eid"]
    report = seed_sources(tmp_path, 50, progress=False, force=True)
    assert report.sizes["eid"] > before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eid.db", "photos.db", "tecs.db"]


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="leis sources seed"):
        SourceStore(tmp_path / "eid.db")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a readable"):
        SourceStore(tmp_path / "junk.db")


@pytest.mark.parametrize("kind", sorted(LOOKUPS))
def test_every_lookup_uses_an_index(data_dir: Path, kind: str) -> None:
    sql = LOOKUPS[kind].format(dobs="?, ?, ?", recs="?, ?, ?")
    with sqlite3.connect(data_dir / "eid.db") as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", [1] * sql.count("?"))]
    assert plan
    assert all(step.startswith("SEARCH") or step.startswith("USING") for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


def test_photo_lookup_uses_an_index(data_dir: Path) -> None:
    sql = PHOTO_LOOKUP.format(ids="?, ?")
    with sqlite3.connect(data_dir / "photos.db") as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ["a", "b"])]
    assert all(step.startswith("SEARCH") for step in plan), plan


def test_identifier_search_scores_one_first(eid: SourceStore) -> None:
    person = showcase("closed_suspect")
    hits = _search(eid, identifier=subject_pb2.IdentifierCriteria(ssn="521-47-3386"))
    assert hits == [(person.record("eid").record_id, 1.0, ["identifier.ssn"])]
    hits = _search(eid, identifier=subject_pb2.IdentifierCriteria(encounter_id="ENC-9900000001"))
    assert hits[0][2] == ["identifier.encounter_id"]


def test_tolerant_name_search_finds_both_spellings(eid: SourceStore, tecs: SourceStore) -> None:
    person = showcase("tolerant_name")
    for store, source in ((eid, "eid"), (tecs, "tecs")):
        hits = _search(store, name=subject_pb2.NameCriteria(first_name="Muhammad", last_name="Alrashid"))
        assert hits[0][0] == person.record(source).record_id
        assert 0.7 < hits[0][1] < 1.0
        assert "name.last_name" in hits[0][2]


def test_name_and_dob_search_ranks_the_exact_person_first(tecs: SourceStore) -> None:
    person = showcase("common_name_05")
    hits = _search(
        tecs, name=subject_pb2.NameCriteria(full_name="Samuel Pettigrew", date_of_birth=person.person.dob)
    )
    assert hits[0][0] == person.record("tecs").record_id
    assert "name.date_of_birth" in hits[0][2]
    assert len(hits) < COMMON_NAME_COUNT


def test_common_name_without_dob_is_bounded_and_truncated(tecs: SourceStore) -> None:
    query = matching.normalize_query(
        subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Samuel", last_name="Pettigrew"))
    )
    result = tecs.search(query, 25)
    assert len(result.records) == 25
    assert result.truncated
    assert len(tecs.search(query, 100).records) >= COMMON_NAME_COUNT


def test_address_phone_and_incident_searches(eid: SourceStore, tecs: SourceStore) -> None:
    person = showcase("incident_address")
    tecs_id = person.record("tecs").record_id
    hits = _search(
        tecs, address=subject_pb2.AddressCriteria(full_address="1420 Larchmont Ave Apt 3B, Tucson, AZ 85719")
    )
    assert hits[0][0] == tecs_id
    assert hits[0][2] == ["address.full_address"]
    hits = _search(
        tecs, address=subject_pb2.AddressCriteria(street_name="Larchmont Avenue", postal_code="85719")
    )
    assert hits[0][0] == tecs_id
    hits = _search(eid, address=subject_pb2.AddressCriteria(phone_number="(520) 555-0142"))
    assert hits == [(person.record("eid").record_id, 0.9, ["address.phone_number"])]
    hits = _search(tecs, incident=subject_pb2.IncidentCriteria(activity_number="ACT-2019-9000001"))
    roles = {record_id for record_id, _, _ in hits}
    expected = {showcase(k).records[-1].record_id for k in ("tecs_victim", "tecs_witness")}
    assert expected | {showcase("closed_suspect").record("tecs").record_id} == roles


def test_search_without_a_hit_is_empty(eid: SourceStore) -> None:
    assert _search(eid, name=subject_pb2.NameCriteria(first_name="Evangeline", last_name="Thistlewood")) == []
    assert _search(eid, identifier=subject_pb2.IdentifierCriteria(ssn="123-45-6789")) == []


def test_photos_by_subject_id(data_dir: Path) -> None:
    store = PhotoStore(data_dir / "photos.db")
    try:
        subject = showcase("closed_suspect").record("eid").subject_id
        photos = store.photos([subject, "EID-S-9999999999"])
        assert [p.subject_id for p in photos] == [subject]
        assert photos[0].image[:3] == b"\xff\xd8\xff"
        assert 1000 < len(photos[0].image) < 10_000
        assert photos[0].media_type == "image/jpeg"
        assert store.photos([]) == []
    finally:
        store.close()


def test_exact_dates_of_birth_are_fetched_before_unknown_ones(tmp_path: Path) -> None:
    # More same-name records with an unknown date than the candidate bound: the one with
    # the asked date must still be found (dates are fetched best tier first).
    name = Name("Ottilie", "", "Brackenridge")
    writer = SourceWriter(tmp_path / "tiers.db")
    specs = [
        RecordSpec(f"EID-R-{i:010d}", f"EID-S-{i:010d}", PersonView(name=name, dob=""), ARRESTEE)
        for i in range(1, 3 * MIN_CANDIDATES)
    ]
    specs.append(
        RecordSpec("EID-R-0000009999", "EID-S-0000009999", PersonView(name=name, dob="1971-05-04"), ARRESTEE)
    )
    writer.add(specs)
    writer.finish({})
    store = SourceStore(tmp_path / "tiers.db")
    try:
        for dob in ("1971-05-04", "1971-04-05"):
            query = matching.normalize_query(
                subject_pb2.SubjectQuery(
                    name=subject_pb2.NameCriteria(
                        first_name="Ottilie", last_name="Brackenridge", date_of_birth=dob
                    )
                )
            )
            result = store.search(query, 1)
            assert result.records[0].record_id == "EID-R-0000009999", dob
            assert result.truncated
    finally:
        store.close()


def _name_store(path: Path, names: list[Name]) -> SourceStore:
    writer = SourceWriter(path)
    writer.add(
        RecordSpec(f"EID-R-{i:010d}", f"EID-S-{i:010d}", PersonView(name=name, dob=""), ARRESTEE)
        for i, name in enumerate(names, 1)
    )
    writer.finish({})
    return SourceStore(path)


def _name_only(first: str, last: str) -> matching.Query:
    return matching.normalize_query(
        subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name=first, last_name=last))
    )


def test_a_common_name_without_dob_fetches_only_what_the_answer_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Far more exact spellings than the candidate bound, and variants of the same Metaphone
    # pair: only max_records + 1 candidates are scored, all spelled as asked.
    names = [Name("Ottilie", "", "Brackenridge")] * (3 * MIN_CANDIDATES)
    names += [Name("Otilie", "", "Brackenridge"), Name("Ottilie", "", "Brakenridge")]
    store = _name_store(tmp_path / "common.db", names)
    scored: list[str] = []
    score = matching.score_record

    def counting(query: matching.Query, record: SourceRecord) -> matching.Match | None:
        scored.append(record.record_id)
        return score(query, record)

    monkeypatch.setattr(matching, "score_record", counting)
    try:
        result = store.search(_name_only("Ottilie", "Brackenridge"), 5)
    finally:
        store.close()
    assert len(scored) == 6
    assert len(result.records) == 5
    assert result.truncated
    assert {(r.name.first_name, r.name.last_name) for r in result.records} == {("Ottilie", "Brackenridge")}


def test_a_rare_spelling_without_dob_still_finds_its_variants(tmp_path: Path) -> None:
    names = [
        Name("Ottilie", "", "Brackenridge"),
        Name("Otilie", "", "Brackenridge"),
        Name("Ottilie", "", "Brakenridge"),
        Name("Brackenridge", "", "Ottilie"),
    ]
    store = _name_store(tmp_path / "rare.db", names)
    try:
        result = store.search(_name_only("Ottilie", "Brackenridge"), 25)
    finally:
        store.close()
    assert not result.truncated
    assert len(result.records) == 4
    assert result.records[0].record_id == "EID-R-0000000001"
    assert result.records[0].match_score > max(r.match_score for r in result.records[1:])


def test_a_store_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    store = _name_store(tmp_path / "old.db", [Name("Ottilie", "", "Brackenridge")])
    store.close()
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 1"):
        SourceStore(tmp_path / "old.db")
