"""Each source's embedded store (SQLite): schema, bulk build, and indexed look-ups.

A source file holds one row per record (the serialised ``SourceRecord``, without score
or matched fields) and five key tables, each a ``WITHOUT ROWID`` B-tree ordered by its
key so that every look-up is an index search, never a scan (``LOOKUPS`` lists the SQL;
the tests run ``EXPLAIN QUERY PLAN`` on each):

==============  =========================================  ==================================
table           key                                        query category
==============  =========================================  ==================================
name_keys       (family Metaphone, given Metaphone, DOB),  name (+ date of birth); second
                (family Metaphone, given Metaphone,        index for a name without date
                spelling) and (family Metaphone, DOB)      (exact spelling first), third for
                                                           family name + DOB (that date or
                                                           its day/month swap)
identifier_keys (type, normalised number)                  identifier
address_keys    (street key, ZIP) and (ZIP)                address
phone_keys      (E.164 number)                             address.phone_number
incident_keys   (activity number)                          incident
==============  =========================================  ==================================

A name without a date of birth is the one look-up whose matches grow with the data set: a
common name's Metaphone pair holds thousands of records at 1,000,000 persons. Its first
tier is therefore the two-level key (Metaphone pair, exact spelling): every record spelled
as asked scores the same top name similarity, so that tier stops at ``max_records + 1``
candidates (enough to answer and to know the answer is truncated); only when it has fewer
does the phonetic tier (spelling variants, swapped given and family names) fill up to the
usual bound. Look-up work for a common name thus stays near what the answer itself costs.

Building (``SourceWriter``) appends records and key rows to unsorted staging tables in a
side file with journaling and syncing off, then copies each key table into the final
file in key order and creates the secondary indexes last: fast, and compact. Readers
(``SourceStore``) open the file read-only with one connection per worker thread and a
modest page cache; the data set is never loaded into memory.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2
from leis_sim.matching import (
    dob_tiers,
    family_parts,
    given_parts,
    phonetic,
    postal_key,
    spelling,
    street_key,
)
from leis_sim.sources import matching
from leis_sim.synth.model import Name, PhotoSpec, RecordSpec

SCHEMA_VERSION = "3"
FLUSH_RECORDS = 20_000
READ_CACHE_KIB = 16 * 1024
MIN_CANDIDATES = 50
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

_KEY_TABLES: dict[str, tuple[str, str]] = {
    # name: (columns with types, primary key)
    "name_keys": (
        "last_key TEXT, first_key TEXT, dob TEXT, rec INTEGER, spelling TEXT",
        "last_key, first_key, dob, rec, spelling",
    ),
    "identifier_keys": ("kind INTEGER, value TEXT, rec INTEGER", "kind, value, rec"),
    "address_keys": ("street_key TEXT, postal_code TEXT, rec INTEGER", "street_key, postal_code, rec"),
    "phone_keys": ("phone TEXT, rec INTEGER", "phone, rec"),
    "incident_keys": ("activity_number TEXT, rec INTEGER", "activity_number, rec"),
    "record_keys": ("record_id TEXT, rec INTEGER", "record_id, rec"),
}
_SECONDARY_INDEXES = (
    "CREATE INDEX name_keys_by_spelling ON name_keys (last_key, first_key, spelling)",
    "CREATE INDEX name_keys_by_family_dob ON name_keys (last_key, dob)",
    "CREATE INDEX address_keys_by_postal ON address_keys (postal_code)",
)

# Every look-up the store runs; "{dobs}" expands to a list of placeholders.
LOOKUPS: dict[str, str] = {
    "identifier": "SELECT rec FROM identifier_keys WHERE kind = ? AND value = ? LIMIT ?",
    "name": "SELECT rec FROM name_keys WHERE last_key = ? AND first_key = ? LIMIT ?",
    "name_spelling": (
        "SELECT rec FROM name_keys WHERE last_key = ? AND first_key = ? AND spelling = ? LIMIT ?"
    ),
    "name_dob": "SELECT rec FROM name_keys WHERE last_key = ? AND first_key = ? AND dob IN ({dobs}) LIMIT ?",
    "family": "SELECT rec FROM name_keys WHERE last_key = ? LIMIT ?",
    "family_dob": "SELECT rec FROM name_keys WHERE last_key = ? AND dob IN ({dobs}) LIMIT ?",
    "street_postal": "SELECT rec FROM address_keys WHERE street_key = ? AND postal_code = ? LIMIT ?",
    "street": "SELECT rec FROM address_keys WHERE street_key = ? LIMIT ?",
    "postal": "SELECT rec FROM address_keys WHERE postal_code = ? LIMIT ?",
    "phone": "SELECT rec FROM phone_keys WHERE phone = ? LIMIT ?",
    "incident": "SELECT rec FROM incident_keys WHERE activity_number = ? LIMIT ?",
    "record_id": "SELECT rec FROM record_keys WHERE record_id = ? LIMIT ?",
    "records": "SELECT rec, payload FROM records WHERE rec IN ({recs})",
}

PHOTO_LOOKUP = "SELECT subject_id, photo_id, media_type, taken, image FROM photos WHERE subject_id IN ({ids})"


# (look-up kind, parameters, number of dates, candidate bound) -> whether the bound is reached
_Runner = Callable[[str, Sequence[object], int, int], bool]


class StoreError(Exception):
    """The store file is missing, unreadable or not a LEIS source store."""


# --------------------------------------------------------------------------- building


def _build_connection(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("PRAGMA temp_store = FILE")
    connection.execute("PRAGMA cache_size = -262144")
    connection.execute("PRAGMA page_size = 8192")
    return connection


def record_proto(spec: RecordSpec) -> source_pb.SourceRecord:
    """The ``SourceRecord`` a spec describes (no score or matched fields)."""
    person = spec.person
    record = source_pb.SourceRecord(
        record_id=spec.record_id,
        subject_id=spec.subject_id,
        name=_name_proto(person.name),
        aliases=[_name_proto(a) for a in person.aliases],
        date_of_birth=person.dob,
        addresses=[
            records_pb2.PostalAddress(
                street_number=a.street_number,
                street_name=a.street_name,
                secondary_unit=a.secondary_unit,
                city=a.city,
                state=a.state,
                country=a.country,
                postal_code=a.postal_code,
            )
            for a in person.addresses
        ],
        phone_numbers=list(person.phones),
        identifiers=[
            records_pb2.PersonIdentifier(type=i.type, value=i.value, issuer=i.issuer)  # type: ignore[arg-type]
            for i in person.identifiers
        ],
        country_of_birth=person.country_of_birth,
        place_of_birth=person.place_of_birth,
        subject_role=spec.role,  # type: ignore[arg-type]
        record_status=spec.status,  # type: ignore[arg-type]
        restrictions=list(spec.restrictions),  # type: ignore[arg-type]
        protected_classes=list(spec.protected_classes),  # type: ignore[arg-type]
        remarks=list(spec.remarks),
        person_subject=spec.person_subject,
    )
    if person.physical is not None:
        physical = person.physical
        record.physical_description.CopyFrom(
            records_pb2.PhysicalDescription(
                height_inches=physical.height_inches,
                weight_pounds=physical.weight_pounds,
                eye_color=physical.eye_color,
                hair_color=physical.hair_color,
            )
        )
    for incident in spec.incidents:
        proto = record.incidents.add(
            activity_number=incident.activity_number, activity_description=incident.description
        )
        proto.occurred_time.FromSeconds((incident.occurred.toordinal() - _EPOCH_ORDINAL) * 86400)
    return record


def _name_proto(name: Name) -> records_pb2.PersonName:
    return records_pb2.PersonName(
        first_name=name.first, middle_name=name.middle, last_name=name.last, full_name=name.full
    )


class SourceWriter:
    """Builds one source file: ``add`` records in any order, then ``finish``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.staging = path.with_name(path.name + ".staging")
        for stale in (path, self.staging):
            stale.unlink(missing_ok=True)
        self._db = _build_connection(path)
        self._db.execute("ATTACH DATABASE ? AS staging", (str(self.staging),))
        self._db.execute("PRAGMA staging.journal_mode = OFF")
        self._db.execute("PRAGMA staging.synchronous = OFF")
        self._db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        self._db.execute("CREATE TABLE records (rec INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        for table, (columns, _) in _KEY_TABLES.items():
            self._db.execute(f"CREATE TABLE staging.{table} ({columns})")
        self._rec = 0
        self._rows: dict[str, list[tuple[object, ...]]] = {t: [] for t in _KEY_TABLES}
        self._records: list[tuple[int, bytes]] = []
        self.record_count = 0

    def add(self, specs: Iterable[RecordSpec]) -> None:
        """Queue records (and their key rows) for writing."""
        for spec in specs:
            self._rec += 1
            rec = self._rec
            self._records.append((rec, record_proto(spec).SerializeToString()))
            self._rows["record_keys"].append((spec.record_id, rec))
            person = spec.person
            names = (person.name, *person.aliases)
            name_rows = self._rows["name_keys"]
            keys = {
                (*k, spelling(n.first, n.last))
                for n in names
                for k in matching.name_index_keys(n.first, n.last)
            }
            for last_key, first_key, spelled in keys:
                name_rows.append((last_key, first_key, person.dob, rec, spelled))
            for identifier in person.identifiers:
                self._rows["identifier_keys"].append((identifier.type, identifier.value, rec))
            for address in {(street_key(a.street_name), postal_key(a.postal_code)) for a in person.addresses}:
                self._rows["address_keys"].append((address[0], address[1], rec))
            for phone in set(person.phones):
                self._rows["phone_keys"].append((phone, rec))
            for incident in spec.incidents:
                self._rows["incident_keys"].append((incident.activity_number, rec))
        if len(self._records) >= FLUSH_RECORDS:
            self.flush()

    def flush(self) -> None:
        """Write what is queued, in one transaction."""
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO records (rec, payload) VALUES (?, ?)", self._records)
        for table, rows in self._rows.items():
            placeholders = ", ".join("?" * len(rows[0])) if rows else ""
            if rows:
                insert = f"INSERT INTO staging.{table} VALUES ({placeholders})"  # noqa: S608 - fixed names
                self._db.executemany(insert, rows)
            rows.clear()
        self._db.execute("COMMIT")
        self.record_count += len(self._records)
        self._records.clear()

    def finish(self, meta: dict[str, str]) -> None:
        """Sort the key tables into place, index them, record ``meta`` and close."""
        self.flush()
        self._db.execute("BEGIN")
        for table, (columns, primary_key) in _KEY_TABLES.items():
            self._db.execute(
                f"CREATE TABLE main.{table} ({columns}, PRIMARY KEY ({primary_key})) WITHOUT ROWID"
            )
            copy = f"INSERT OR IGNORE INTO main.{table} SELECT * FROM staging.{table} ORDER BY {primary_key}"  # noqa: S608
            self._db.execute(copy)
        for statement in _SECONDARY_INDEXES:
            self._db.execute(statement)
        meta = {**meta, "schema_version": SCHEMA_VERSION, "records": str(self.record_count)}
        self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
        self._db.execute("COMMIT")
        self._db.execute("DETACH DATABASE staging")
        self._db.close()
        self.staging.unlink(missing_ok=True)

    def abort(self) -> None:
        """Close and delete everything written so far."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        for path in (self.path, self.staging):
            path.unlink(missing_ok=True)


class PhotoWriter:
    """Builds the photo store file: ``add`` rendered photos, then ``finish``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self._db = _build_connection(path)
        self._db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        self._db.execute(
            "CREATE TABLE photos (subject_id TEXT NOT NULL, photo_id TEXT NOT NULL, media_type TEXT NOT NULL,"
            " taken TEXT NOT NULL, image BLOB NOT NULL)"
        )
        self.count = 0

    def add(self, rows: Sequence[tuple[PhotoSpec, str, bytes]]) -> None:
        """Write ``(spec, media type, image bytes)`` rows in one transaction."""
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO photos VALUES (?, ?, ?, ?, ?)",
            [(s.subject_id, s.photo_id, media, s.taken.isoformat(), image) for s, media, image in rows],
        )
        self._db.execute("COMMIT")
        self.count += len(rows)

    def finish(self, meta: dict[str, str]) -> None:
        """Index by subject id, record ``meta`` and close."""
        self._db.execute("BEGIN")
        self._db.execute("CREATE INDEX photos_by_subject ON photos (subject_id)")
        meta = {**meta, "schema_version": SCHEMA_VERSION, "photos": str(self.count)}
        self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
        self._db.execute("COMMIT")
        self._db.close()

    def abort(self) -> None:
        """Close and delete the file."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- reading


def _open_read_only(path: Path, cache_kib: int, *, any_version: bool = False) -> sqlite3.Connection:
    if not path.is_file():
        raise StoreError(f"{path}: no such store (create it with `leis sources seed`)")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        connection.execute(f"PRAGMA cache_size = -{cache_kib}")
        connection.execute("PRAGMA mmap_size = 0")
        connection.execute("PRAGMA query_only = ON")
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a readable LEIS source store ({exc})") from exc
    if not any_version and (row is None or row[0] != SCHEMA_VERSION):
        connection.close()
        raise StoreError(
            f"{path}: store schema version {row[0] if row else 'unknown'}, this build reads "
            f"{SCHEMA_VERSION} (rebuild it with `leis sources seed --force`)"
        )
    return connection


def read_meta(path: Path) -> dict[str, str]:
    """The ``meta`` table of a store file (persons, seed, counts, schema version)."""
    connection = _open_read_only(path, 1024, any_version=True)
    try:
        return dict(connection.execute("SELECT key, value FROM meta").fetchall())
    finally:
        connection.close()


class _Connections:
    """One read-only connection per thread, all closed together."""

    def __init__(self, path: Path, cache_kib: int) -> None:
        self.path = path
        self.cache_kib = cache_kib
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        _open_read_only(path, 1024).close()

    def get(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = _open_read_only(self.path, self.cache_kib)
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()


@dataclass(frozen=True)
class SearchResult:
    """Matching records, best first, and whether more matched than were returned."""

    records: list[source_pb.SourceRecord]
    truncated: bool


class SourceStore:
    """Read-only look-ups in one EID or TECS store file; safe to call from several threads."""

    def __init__(self, path: Path, cache_kib: int = READ_CACHE_KIB) -> None:
        self._connections = _Connections(path, cache_kib)

    def close(self) -> None:
        """Close every connection."""
        self._connections.close()

    def search(self, query: matching.Query, max_records: int) -> SearchResult:
        """Records matching ``query``, best first, at most ``max_records``."""
        db = self._connections.get()
        limit = max(MIN_CANDIDATES, 2 * max_records + 1)
        candidates: dict[int, None] = {}
        hit_limit = False

        def run(kind: str, params: Sequence[object], dobs: int = 0, bound: int = limit) -> bool:
            nonlocal hit_limit
            remaining = bound - len(candidates)
            if remaining <= 0:
                hit_limit = True
                return True
            sql = LOOKUPS[kind].format(dobs=", ".join("?" * dobs))
            rows = db.execute(sql, (*params, remaining)).fetchall()
            hit_limit = hit_limit or len(rows) >= remaining
            for (rec,) in rows:
                candidates[rec] = None
            return len(candidates) >= bound

        if query.identifier is not None and query.identifier.value:
            run("identifier", (query.identifier.type, query.identifier.value))
        if query.name is not None:
            self._name_lookups(query.name, run, limit, max_records + 1)
        if query.address is not None:
            address = query.address
            if address.phone:
                run("phone", (address.phone,))
            if address.street and address.postal_code:
                run("street_postal", (address.street, address.postal_code))
            elif address.street:
                run("street", (address.street,))
            elif address.postal_code:
                run("postal", (address.postal_code,))
        if query.incident is not None:
            run("incident", (query.incident.activity_number,))

        scored: list[tuple[float, str, source_pb.SourceRecord]] = []
        recs = list(candidates)
        for start in range(0, len(recs), 500):
            chunk = recs[start : start + 500]
            sql = LOOKUPS["records"].format(recs=", ".join("?" * len(chunk)))
            for _, payload in db.execute(sql, chunk):
                record = source_pb.SourceRecord.FromString(payload)
                match = matching.score_record(query, record)
                if match is None:
                    continue
                record.match_score = match.score
                record.matched_fields.extend(match.fields)
                scored.append((-match.score, record.record_id, record))
        scored.sort(key=lambda item: (item[0], item[1]))
        truncated = len(scored) > max_records or (hit_limit and len(scored) >= max_records)
        return SearchResult([record for _, _, record in scored[:max_records]], truncated)

    def records(
        self, record_ids: Sequence[str], query: matching.Query | None = None
    ) -> list[source_pb.SourceRecord]:
        """The records with these ids, in the order asked, scored against ``query`` when given
        (as ``search`` scores them); unknown ids are skipped."""
        db = self._connections.get()
        found: list[source_pb.SourceRecord] = []
        for record_id in record_ids:
            rows = db.execute(LOOKUPS["record_id"], (record_id, 1)).fetchall()
            if rows:
                sql = LOOKUPS["records"].format(recs="?")
                found.extend(
                    source_pb.SourceRecord.FromString(payload) for _, payload in db.execute(sql, rows[0])
                )
        if query is None:
            return found
        for record in found:
            match = matching.score_record(query, record)
            if match is not None:
                record.match_score = match.score
                record.matched_fields.extend(match.fields)
        return found

    @staticmethod
    def _name_lookups(name: matching.NameQuery, run: _Runner, limit: int, exact_bound: int) -> None:
        family_keys = list(dict.fromkeys(phonetic(p) for p in family_parts(name.last)))
        given_words = name.first.replace(" ", "")
        given_keys = (
            list(dict.fromkeys(phonetic(g) for g in given_parts(name.first))) if len(given_words) > 1 else []
        )
        pairs = [(f, g) for f in family_keys for g in given_keys] + [
            (g, f) for f in family_keys for g in given_keys
        ]
        if not name.dob:
            if given_keys:
                spelled = spelling(name.first, name.last)
                if run("name_spelling", (family_keys[0], given_keys[0], spelled), 0, exact_bound):
                    return
            for last_key, first_key in pairs:
                run("name", (last_key, first_key), 0, limit)
            if not given_keys:
                for family in family_keys:
                    run("family", (family,), 0, limit)
            return
        tiers = dob_tiers(name.dob)
        if not given_keys:
            # A family name alone is too weak for a tolerant date: the date must agree (or be swapped).
            for family in family_keys:
                run("family_dob", (family, *tiers[0]), len(tiers[0]), limit)
            return
        for tier in tiers:
            for last_key, first_key in pairs:
                run("name_dob", (last_key, first_key, *tier), len(tier), limit)


@dataclass(frozen=True)
class Photo:
    """One stored booking photo."""

    subject_id: str
    photo_id: str
    media_type: str
    taken: str
    image: bytes


class PhotoStore:
    """Read-only look-ups in the photo store file, by subject id only."""

    def __init__(self, path: Path, cache_kib: int = READ_CACHE_KIB) -> None:
        self._connections = _Connections(path, cache_kib)

    def close(self) -> None:
        """Close every connection."""
        self._connections.close()

    def photos(self, subject_ids: Sequence[str]) -> list[Photo]:
        """The photos of the given subjects, in the order asked for (then by photo id)."""
        if not subject_ids:
            return []
        db = self._connections.get()
        sql = PHOTO_LOOKUP.format(ids=", ".join("?" * len(subject_ids)))
        found = [Photo(*row) for row in db.execute(sql, list(subject_ids))]
        order = {subject_id: i for i, subject_id in enumerate(subject_ids)}
        return sorted(found, key=lambda p: (order[p.subject_id], p.photo_id))
