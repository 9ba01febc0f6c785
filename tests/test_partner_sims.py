"""Partner ISS simulators (issue 7 item 1; R-OUT-1, R-OUT-2, R-Q-4, R-Q-6, R-SEC-3, R-OBS-4).

Three simulators on loopback with real mTLS, queried through the generated stubs with the
broker's client certificate: showcase hits, no match, identifier / name / incident queries,
refusals (not the broker, malformed requests), every fault kind, the call log, and Nlets
refused. Plus pure tests of the synthetic data and the dev-mesh addresses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from leis.cli.partners import parse_faults
from leis.common.tls import BROKER_CLIENT_IDENTITY, agency_client_name, agency_identity, channel_credentials
from leis.registry.agreements import Direction, parse_registry, seed_registry_text
from leis_api import from_rpc_error
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.partner.v1 import partner_search_service_pb2_grpc as partner_grpc
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.partners import (
    DEFAULT_PARTNER_BASE_PORT,
    MALFORMED_RESPONSE,
    SHOWCASE_PERSONS,
    TWO_WAY_PARTNER_IDS,
    UNKNOWN_PERSON,
    Fault,
    PartnerConfigError,
    Person,
    RunningPartner,
    default_address,
    default_endpoints,
    start_partners,
    stop_partners,
)
from leis_sim.partners.data import generate_records, partner_cities
from leis_sim.partners.server import SERVICE_NAME

# The simulators are module-scoped, so their tests share the module event loop.
in_module_loop = pytest.mark.asyncio(loop_scope="module")

SERVED = ("ndex", "lasd", "arjis")
PERSONS = 300  # per partner: enough variety, fast to generate
MARISOL = SHOWCASE_PERSONS[0].person  # known to ndex, lasd, arjis
DARNELL = SHOWCASE_PERSONS[1].person  # known to ndex, tdex, azlink
FOUR_MB = 4 * 1024 * 1024


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def partners(pki_dir: Path) -> AsyncIterator[dict[str, RunningPartner]]:
    running = await start_partners(pki_dir, SERVED, persons=PERSONS)
    served = {p.agency_id: p for p in running if isinstance(p, RunningPartner)}
    try:
        assert tuple(served) == SERVED, "every partner here serves gRPC"
        yield served
    finally:
        await stop_partners(running, grace=None)


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with no fault and an empty call log."""
    if "partners" not in request.fixturenames:
        yield
        return
    running: dict[str, RunningPartner] = request.getfixturevalue("partners")
    for partner in running.values():
        partner.fault = Fault()
        partner.calls.clear()
    yield


def _channel(pki_dir: Path, partner: RunningPartner, cert: str = "broker-client") -> grpc.aio.Channel:
    return grpc.aio.secure_channel(
        partner.address,
        channel_credentials(pki_dir, cert),
        options=[("grpc.max_receive_message_length", FOUR_MB)],
    )


def _request(subject: subject_pb2.SubjectQuery) -> partner_pb.SearchRequest:
    return partner_pb.SearchRequest(
        subject=subject,
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        requesting_user=subject_pb2.EndUser(user_id="analyst.one", ori="DCICE0000"),
        request_id="req-0001",
    )


def _by_name(person: Person, *, dob: str | None = None) -> subject_pb2.SubjectQuery:
    return subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(
            first_name=person.first_name,
            last_name=person.last_name,
            date_of_birth=person.date_of_birth if dob is None else dob,
        )
    )


async def _search(
    pki_dir: Path,
    partner: RunningPartner,
    subject: subject_pb2.SubjectQuery,
    *,
    cert: str = "broker-client",
) -> partner_pb.SearchResponse:
    async with _channel(pki_dir, partner, cert) as channel:
        stub = partner_grpc.PartnerSearchServiceStub(channel)
        response: partner_pb.SearchResponse = await stub.Search(_request(subject), timeout=5)
        return response


async def _error(
    pki_dir: Path, partner: RunningPartner, subject: subject_pb2.SubjectQuery, *, cert: str = "broker-client"
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        await _search(pki_dir, partner, subject, cert=cert)
    return caught.value


def _names(response: partner_pb.SearchResponse) -> set[tuple[str, str]]:
    return {(r.name.first_name, r.name.last_name) for r in response.records}


# --------------------------------------------------------------------------- matching over gRPC


@in_module_loop
async def test_showcase_person_is_found_by_every_partner_that_knows_them(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    for agency_id in SERVED:
        response = await _search(pki_dir, partners[agency_id], _by_name(MARISOL))
        assert response.agency_id == agency_id
        assert _names(response) == {("Marisol", "Quintanilla")}
        kinds = {r.record_type for r in response.records}
        assert kinds == {
            records_pb2.PARTNER_RECORD_TYPE_INCIDENT,
            records_pb2.PARTNER_RECORD_TYPE_ARREST,
            records_pb2.PARTNER_RECORD_TYPE_BOOKING,
        }
        for record in response.records:
            assert 0.9 <= record.match_score <= 1.0
            assert record.date_of_birth == MARISOL.date_of_birth
            assert record.owning_ori.startswith("CA") or agency_id == "ndex"
            assert len(record.owning_ori) == 9
            assert record.event_time.seconds > 0


@in_module_loop
async def test_showcase_person_unknown_to_a_partner_and_unknown_person_match_nothing(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    assert not (await _search(pki_dir, partners["lasd"], _by_name(DARNELL))).records
    ssn = next(i.value for i in UNKNOWN_PERSON.identifiers if i.type == records_pb2.IDENTIFIER_TYPE_SSN)
    for partner in partners.values():
        assert not (await _search(pki_dir, partner, _by_name(UNKNOWN_PERSON))).records
        by_ssn = subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn=ssn))
        assert not (await _search(pki_dir, partner, by_ssn)).records
        by_full = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(full_name="Evangeline Thistlewood"))
        assert not (await _search(pki_dir, partner, by_full)).records


@in_module_loop
async def test_identifier_queries_match_exactly_after_normalisation(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    by_ssn = subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn="547-38-2291"))
    response = await _search(pki_dir, partners["arjis"], by_ssn)
    assert response.records
    assert _names(response) == {("Marisol", "Quintanilla")}
    assert all(r.match_score == 1.0 for r in response.records)
    assert all(
        any(i.type == records_pb2.IDENTIFIER_TYPE_SSN and i.value == "547382291" for i in r.identifiers)
        for r in response.records
    )
    licence = subject_pb2.IdentifierCriteria(driver_license_number="d482-1937", driver_license_state="CA")
    assert _names(await _search(pki_dir, partners["lasd"], subject_pb2.SubjectQuery(identifier=licence))) == {
        ("Marisol", "Quintanilla")
    }
    other_state = subject_pb2.IdentifierCriteria(driver_license_number="D4821937", driver_license_state="NV")
    assert not (
        await _search(pki_dir, partners["lasd"], subject_pb2.SubjectQuery(identifier=other_state))
    ).records


@in_module_loop
async def test_names_are_case_punctuation_and_typo_tolerant_and_dob_narrows(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    lasd = partners["lasd"]
    sloppy = subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(
            first_name="marisol", last_name="QUINTANILA", date_of_birth="1986-04-12"
        )
    )
    response = await _search(pki_dir, lasd, sloppy)
    assert _names(response) == {("Marisol", "Quintanilla")}
    assert all(0.0 < r.match_score < 1.0 for r in response.records)
    full = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(full_name="MARISOL I. QUINTANILLA"))
    assert _names(await _search(pki_dir, lasd, full)) == {("Marisol", "Quintanilla")}
    assert not (await _search(pki_dir, lasd, _by_name(MARISOL, dob="1986-04-13"))).records


@in_module_loop
async def test_incident_and_address_queries(pki_dir: Path, partners: dict[str, RunningPartner]) -> None:
    ndex = partners["ndex"]
    records = (await _search(pki_dir, ndex, _by_name(MARISOL))).records
    arrest = next(r for r in records if r.record_type == records_pb2.PARTNER_RECORD_TYPE_ARREST)
    by_activity = subject_pb2.SubjectQuery(
        incident=subject_pb2.IncidentCriteria(activity_number=arrest.activity_number.lower())
    )
    episode = (await _search(pki_dir, ndex, by_activity)).records
    assert len(episode) == 3
    assert {r.activity_number for r in episode} == {arrest.activity_number}
    combined = subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(last_name="Quintanilla"),
        incident=subject_pb2.IncidentCriteria(activity_number=arrest.activity_number),
    )
    assert len((await _search(pki_dir, ndex, combined)).records) == 3
    address = subject_pb2.SubjectQuery(
        address=subject_pb2.AddressCriteria(
            street_number="4127", street_name="alondra blvd", postal_code="90220"
        )
    )
    assert _names(await _search(pki_dir, ndex, address)) == {("Marisol", "Quintanilla")}


@in_module_loop
async def test_common_surname_is_capped_and_ranked(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    common = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(last_name="Smith"))
    response = await _search(pki_dir, partners["ndex"], common)
    assert 0 < len(response.records) <= 50
    scores = [r.match_score for r in response.records]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


# --------------------------------------------------------------------------- refusals


@in_module_loop
async def test_a_certificate_other_than_the_broker_is_refused(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    lasd = partners["lasd"]
    for cert in (agency_client_name("ndex"), "dhs-analyst"):
        error = await _error(pki_dir, lasd, _by_name(MARISOL), cert=cert)
        details = from_rpc_error(error)
        assert details.code == grpc.StatusCode.PERMISSION_DENIED
        assert details.reason_name == "CALLER_NOT_BROKER"
    assert lasd.calls.by_peer()[agency_identity("ndex")] == 1
    assert lasd.calls.by_code()[grpc.StatusCode.PERMISSION_DENIED] == 2
    assert lasd.calls.by_peer()[BROKER_CLIENT_IDENTITY] == 0


@in_module_loop
async def test_empty_and_malformed_requests_are_invalid_argument(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    arjis = partners["arjis"]
    for empty in (subject_pb2.SubjectQuery(), subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria())):
        details = from_rpc_error(await _error(pki_dir, arjis, empty))
        assert (details.code, details.reason_name) == (grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_QUERY")
    first_only = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Marisol"))
    details = from_rpc_error(await _error(pki_dir, arjis, first_only))
    assert (details.code, details.reason_name) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
    assert [v.field for v in details.field_violations] == ["subject.name.last_name"]
    two_numbers = subject_pb2.SubjectQuery(
        identifier=subject_pb2.IdentifierCriteria(ssn="547382291", passport_number="X1234567")
    )
    details = from_rpc_error(await _error(pki_dir, arjis, two_numbers))
    assert [v.field for v in details.field_violations] == ["subject.identifier"]


@in_module_loop
async def test_unknown_fields_and_missing_purpose_are_refused(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    ndex = partners["ndex"]
    valid = _request(_by_name(MARISOL)).SerializeToString()
    unknown_top = valid + b"\xa0\x06\x01"  # field 100, varint 1
    unknown_nested = partner_pb.SearchRequest(
        subject=subject_pb2.SubjectQuery.FromString(_by_name(MARISOL).SerializeToString() + b"\xf8\x01\x05"),
        purpose=subject_pb2.PURPOSE_NATIONAL_SECURITY,
        requesting_user=subject_pb2.EndUser(user_id="analyst.one", ori="DCICE0000"),
        request_id="req-0002",
    ).SerializeToString()
    no_purpose = partner_pb.SearchRequest.FromString(valid)
    no_purpose.purpose = subject_pb2.PURPOSE_UNSPECIFIED
    licensing = partner_pb.SearchRequest.FromString(valid)
    licensing.purpose = subject_pb2.PURPOSE_LICENSING
    async with _channel(pki_dir, ndex) as channel:
        raw = channel.unary_unary(f"/{SERVICE_NAME}/Search", None, None)
        outcomes = {}
        for label, payload in {
            "top": unknown_top,
            "nested": unknown_nested,
            "no_purpose": no_purpose.SerializeToString(),
            "licensing": licensing.SerializeToString(),
        }.items():
            with pytest.raises(grpc.RpcError) as caught:
                await raw(payload, timeout=5)
            outcomes[label] = from_rpc_error(caught.value)
    assert (outcomes["top"].code, outcomes["top"].reason_name) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNKNOWN_FIELD",
    )
    assert [v.field for v in outcomes["nested"].field_violations] == ["subject"]
    assert [v.field for v in outcomes["no_purpose"].field_violations] == ["purpose"]
    assert outcomes["licensing"].code == grpc.StatusCode.PERMISSION_DENIED


@in_module_loop
async def test_oversize_request_is_refused(pki_dir: Path, partners: dict[str, RunningPartner]) -> None:
    huge = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(last_name="x" * 100_000))
    error = await _error(pki_dir, partners["ndex"], huge)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# --------------------------------------------------------------------------- faults


@in_module_loop
async def test_error_rate_one_makes_the_partner_unavailable(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    lasd = partners["lasd"]
    lasd.fault = Fault(error_rate=1.0)
    for _ in range(3):
        details = from_rpc_error(await _error(pki_dir, lasd, _by_name(MARISOL)))
        assert (details.code, details.reason_name) == (grpc.StatusCode.UNAVAILABLE, "PARTNER_UNAVAILABLE")
    lasd.fault = Fault()
    assert (await _search(pki_dir, lasd, _by_name(MARISOL))).records


@in_module_loop
async def test_latency_is_observable_and_a_deadline_cuts_it(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    arjis = partners["arjis"]
    async with _channel(pki_dir, arjis) as channel:
        stub = partner_grpc.PartnerSearchServiceStub(channel)
        await stub.Search(_request(_by_name(MARISOL)), timeout=5)  # connection warmed up
        started = time.perf_counter()
        await stub.Search(_request(_by_name(MARISOL)), timeout=5)
        fast = time.perf_counter() - started
        arjis.fault = Fault(latency_ms=300)
        started = time.perf_counter()
        await stub.Search(_request(_by_name(MARISOL)), timeout=5)
        slow = time.perf_counter() - started
        with pytest.raises(grpc.RpcError) as caught:
            await stub.Search(_request(_by_name(MARISOL)), timeout=0.1)
    assert slow >= 0.3 > fast
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(50):
        if list(arjis.calls)[-1].code is not None:
            break
        await asyncio.sleep(0.02)
    assert list(arjis.calls)[-1].code == grpc.StatusCode.CANCELLED
    assert len(arjis.calls) == 4


@in_module_loop
async def test_malformed_garbage_fails_deserialization(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    """The blocking stub raises INTERNAL; the asyncio stub yields None, never a SearchResponse.

    grpc.aio logs "Exception deserializing message!" and returns None with status OK, so an
    asyncio caller (the broker) must treat a None response as a malformed answer.
    """
    ndex = partners["ndex"]
    ndex.fault = Fault(garbage="malformed")
    credentials = channel_credentials(pki_dir, "broker-client")
    with grpc.secure_channel(ndex.address, credentials) as blocking, pytest.raises(grpc.RpcError) as caught:
        await asyncio.to_thread(
            partner_grpc.PartnerSearchServiceStub(blocking).Search, _request(_by_name(MARISOL)), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    async with _channel(pki_dir, ndex) as channel:
        assert (
            await partner_grpc.PartnerSearchServiceStub(channel).Search(
                _request(_by_name(MARISOL)), timeout=5
            )
            is None
        )
        raw = await channel.unary_unary(f"/{SERVICE_NAME}/Search", None, None)(
            _request(_by_name(MARISOL)).SerializeToString(), timeout=5
        )
    assert raw == MALFORMED_RESPONSE
    with pytest.raises(DecodeError):
        partner_pb.SearchResponse.FromString(raw)


@in_module_loop
async def test_oversize_garbage_exceeds_a_4mb_receive_limit(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    lasd = partners["lasd"]
    lasd.fault = Fault(garbage="oversize")
    error = await _error(pki_dir, lasd, _by_name(MARISOL))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    lasd.fault = Fault()
    assert (await _search(pki_dir, lasd, _by_name(MARISOL))).records


@in_module_loop
async def test_wrong_agency_garbage_names_another_partner(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    arjis = partners["arjis"]
    arjis.fault = Fault(garbage="wrong_agency")
    response = await _search(pki_dir, arjis, _by_name(MARISOL))
    assert response.agency_id != "arjis"
    assert response.agency_id in TWO_WAY_PARTNER_IDS


# --------------------------------------------------------------------------- call log, health, reflection


@in_module_loop
async def test_call_log_counts_calls_per_partner_and_peer(
    pki_dir: Path, partners: dict[str, RunningPartner]
) -> None:
    for _ in range(3):
        await _search(pki_dir, partners["ndex"], _by_name(MARISOL))
    await _search(pki_dir, partners["lasd"], _by_name(DARNELL))
    assert len(partners["ndex"].calls) == 3
    assert partners["ndex"].calls.by_peer() == {BROKER_CLIENT_IDENTITY: 3}
    assert partners["ndex"].calls.by_code() == {grpc.StatusCode.OK: 3}
    assert [c.records for c in partners["ndex"].calls] == [4, 4, 4]
    assert len(partners["lasd"].calls) == 1
    assert len(partners["arjis"].calls) == 0


@in_module_loop
async def test_health_and_reflection(pki_dir: Path, partners: dict[str, RunningPartner]) -> None:
    async with _channel(pki_dir, partners["ndex"]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = [
            reply
            async for reply in reflect.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        ]
    names = {s.name for s in replies[0].list_services_response.service}
    assert SERVICE_NAME in names


# --------------------------------------------------------------------------- configuration


@in_module_loop
async def test_nlets_unknown_and_repeated_agencies_are_refused(pki_dir: Path) -> None:
    with pytest.raises(PartnerConfigError, match="one-way"):
        await start_partners(pki_dir, ["ndex", "nlets"])
    with pytest.raises(PartnerConfigError, match="unknown partner agency 'rogue'"):
        await start_partners(pki_dir, ["rogue"])
    with pytest.raises(PartnerConfigError, match="listed twice"):
        await start_partners(pki_dir, ["ndex", "ndex"])
    with pytest.raises(PartnerConfigError, match="not served: lasd"):
        await start_partners(pki_dir, ["ndex"], faults={"lasd": Fault(latency_ms=5)})


@in_module_loop
async def test_a_taken_port_is_refused(pki_dir: Path, partners: dict[str, RunningPartner]) -> None:
    taken = partners["ndex"].port  # ndex is first in seed order, so base_port=taken asks for it
    with pytest.raises(PartnerConfigError, match=f"cannot listen on 127.0.0.1:{taken}"):
        await start_partners(pki_dir, ["ndex"], base_port=taken, persons=0)


def test_fault_values_are_checked() -> None:
    with pytest.raises(PartnerConfigError, match="error_rate"):
        Fault(error_rate=1.5)
    with pytest.raises(PartnerConfigError, match="latency_ms"):
        Fault(latency_ms=-1)
    with pytest.raises(PartnerConfigError, match="garbage"):
        Fault(garbage="noise")  # type: ignore[arg-type]
    assert parse_faults(["lasd=250"], ["lasd=0.5", "ndex=1"], ["arjis=oversize"]) == {
        "lasd": Fault(latency_ms=250, error_rate=0.5),
        "ndex": Fault(error_rate=1.0),
        "arjis": Fault(garbage="oversize"),
    }
    for bad in (["lasd"], ["lasd=fast"], ["=5"]):
        with pytest.raises(PartnerConfigError):
            parse_faults(bad, [], [])
    with pytest.raises(PartnerConfigError, match="KIND"):
        parse_faults([], [], ["ndex=noise"])


def test_default_addresses_match_the_seed_registry() -> None:
    assert default_address("ndex") == f"localhost:{DEFAULT_PARTNER_BASE_PORT}"
    assert default_address("lasd") == "localhost:7079"
    registry = parse_registry(seed_registry_text().encode(), Path("seed_agreements.toml"))
    two_way = registry.partners(direction=Direction.TWO_WAY)
    assert tuple(a.agency_id for a in two_way) == TWO_WAY_PARTNER_IDS
    assert {a.agency_id: a.endpoint for a in two_way} == default_endpoints()
    assert [a.agency_id for a in registry.partners(direction=Direction.ONE_WAY)] == ["nlets"]
    with pytest.raises(PartnerConfigError, match="one-way"):
        default_address("nlets")


def test_synthetic_data_is_deterministic_and_local() -> None:
    first = generate_records("azlink")
    assert first == generate_records("azlink")
    assert first != generate_records("azlink", seed=7)
    assert 3000 <= len(first) <= 5000
    assert len({r.record_id for r in first}) == len(first)
    cities = {(city, state) for city, state, _ in partner_cities("azlink")}
    assert all(r.owning_ori.startswith("AZ") and len(r.owning_ori) == 9 for r in first)
    assert all((a.city, a.state) in cities for r in first[8:] for a in r.addresses)
    tdex = generate_records("tdex")
    assert {r.record_id[:3] for r in tdex} == {"TDX"}
    for showcase in SHOWCASE_PERSONS:
        for agency_id in TWO_WAY_PARTNER_IDS:
            present = any(r.person == showcase.person for r in generate_records(agency_id, persons=0))
            assert present == (agency_id in showcase.known_to)


def test_cli_serves_until_sigterm(pki_dir: Path) -> None:
    command = [sys.executable, "-m", "leis.cli", "partners", "serve", "--agency", "tdex", "--base-port", "0",
               "--host", "127.0.0.1", "--persons", "50", "--pki-dir", str(pki_dir)]  # fmt: skip
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("partner tdex listening on 127.0.0.1:")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
            assert process.stdout.read().strip() == "stopping partner simulators"
        finally:
            if process.poll() is None:
                process.kill()


def test_cli_refuses_nlets(pki_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "leis.cli",
            "partners",
            "serve",
            "--agency",
            "nlets",
            "--pki-dir",
            str(pki_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "one-way" in result.stderr
