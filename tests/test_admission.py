"""Fair admission end to end (R-SEC-3): a flooding agency is refused, audited, and slows only itself.

The flooder sends many concurrent searches and garbage; the sources answer slowly, so its
calls hold their slots. Beyond its agreement's ``max_concurrent_calls`` it is refused
``RESOURCE_EXHAUSTED AGENCY_CONCURRENCY_LIMITED`` with a ``RetryInfo``, each refusal recorded,
while a bystander agency's calls are all served. Garbage spends the sender's rate budget.
Beyond the broker-wide bound calls are refused ``BROKER_CONCURRENCY_LIMITED``, audited too,
instead of gRPC core's unaudited "Concurrent RPC limit exceeded!".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from meshkit import Mesh, agreement_table, registry_with

from leis.audit.store import SearchFilter
from leis.broker.config import AdmissionConfig, ConfigError, load_config
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT, CertFiles, identity_from_pem
from leis.pki.ca import issue_client_certificate
from leis_api import from_rpc_error
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import subject_pb2

NAME_QUERY = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz"))
LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
ORI = "TX0000001"
AGENCIES = {
    "flooder": {"max_concurrent_calls": 4},
    "garbler": {"rate_limit_per_minute": 4},  # burst 1
    "greedy": {"max_concurrent_calls": 40},  # above the broker-wide bound on purpose
}
BROKER_BOUND = 12


@pytest.fixture(scope="module")
def certs(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    out = tmp_path_factory.mktemp("admission-certs")
    return {
        a: issue_client_certificate(pki_dir, f"agency-{a}", f"{a}.iss.leis.example", out_dir=out)
        for a in AGENCIES
    }


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
    pki_dir: Path,
    source_data: Path,
    seed_registry: str,
    certs: dict[str, CertFiles],
) -> Iterator[Mesh]:
    tables = [
        agreement_table(
            agency,
            pinned_key=identity_from_pem(certs[agency].cert.read_bytes()).spki_sha256,
            **options,  # type: ignore[arg-type]
        )
        for agency, options in AGENCIES.items()
    ]
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh-admission"),
        pki_dir,
        source_data,
        registry_with(seed_registry, tables),
        source_faults={"eid": {"latency_ms": 300}},  # every search holds its slot a while
        # A flood beyond its bound is served at its pace (bound / retry delay): every queued call
        # gets its turn well within the queue's bound.
        admission=AdmissionConfig(agency_concurrent_calls=8, retry_after_seconds=0.5, max_queue_seconds=30),
        max_concurrent_rpcs=BROKER_BOUND,
    )
    mesh.start()
    yield mesh
    mesh.stop()


def _channel(mesh: Mesh, files: CertFiles) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        (mesh.pki_dir / CA_CERT).read_bytes(), files.key.read_bytes(), files.cert.read_bytes()
    )
    return grpc.secure_channel(mesh.address, credentials)


def _request(user: str) -> bytes:
    return query_pb.SearchRequest(
        subject=NAME_QUERY, purpose=LAW, end_user=subject_pb2.EndUser(user_id=user, ori=ORI)
    ).SerializeToString()


def _flood(
    mesh: Mesh, files: CertFiles, payloads: list[bytes]
) -> list[tuple[grpc.StatusCode, str, float | None]]:
    """Send every payload at once on one connection: (code, reason, retry delay) of each."""
    with _channel(mesh, files) as channel:
        search = channel.unary_unary(
            "/leis.v1.QueryService/Search", request_serializer=None, response_deserializer=None
        )
        futures = [search.future(payload, timeout=20) for payload in payloads]
        outcomes: list[tuple[grpc.StatusCode, str, float | None]] = []
        for future in futures:
            try:
                future.result()
                outcomes.append((grpc.StatusCode.OK, "", None))
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                delay = error.retry_delay.total_seconds() if error.retry_delay is not None else None
                outcomes.append((error.code, error.reason_name, delay))
    return outcomes


def _refusals(mesh: Mesh, agency_id: str) -> Counter[str]:
    assert mesh.audit_log is not None
    rows = mesh.call(
        mesh.audit_log.search(SearchFilter(agency_id=agency_id, event_type="REFUSED"), None, 1000)
    )
    return Counter(row.reason for row in rows)


def test_flooding_agency_is_refused_and_audited_while_a_bystander_is_served(
    mesh: Mesh, certs: dict[str, CertFiles]
) -> None:
    payloads = [_request(f"u.flood{i}") for i in range(40)] + [b"\xff\x01garbage"] * 10
    with ThreadPoolExecutor(1) as pool:
        flood = pool.submit(_flood, mesh, certs["flooder"], payloads)
        bystander = []
        with mesh.partner("ndex") as client:
            for i in range(6):
                reply = client.search(NAME_QUERY, purpose=LAW, user_id=f"u.by{i}", ori="WVFBI9900")
                bystander.append(reply.audit_reference)
        outcomes = flood.result(timeout=60)
    assert all(bystander)  # every bystander call served
    codes = Counter(code for code, _, _ in outcomes)
    assert codes[grpc.StatusCode.OK] >= 1
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= 20
    assert grpc.StatusCode.INTERNAL not in codes
    assert grpc.StatusCode.UNKNOWN not in codes
    limited = [
        (reason, retry) for code, reason, retry in outcomes if code == grpc.StatusCode.RESOURCE_EXHAUSTED
    ]
    assert {reason for reason, _ in limited} == {"AGENCY_CONCURRENCY_LIMITED"}
    assert all(retry == pytest.approx(0.5) for _, retry in limited)
    recorded = _refusals(mesh, "flooder")
    assert recorded["AGENCY_CONCURRENCY_LIMITED"] == len(limited)
    assert _refusals(mesh, "ndex") == Counter()


def test_garbage_spends_the_senders_rate_budget(mesh: Mesh, certs: dict[str, CertFiles]) -> None:
    outcomes = _flood(mesh, certs["garbler"], [b"\xff\x01garbage"])
    assert outcomes[0][:2] == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
    code, reason, retry = _flood(mesh, certs["garbler"], [_request("u.valid")])[0]
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "AGENCY_RATE_LIMITED")
    assert retry is not None
    assert retry > 0
    assert _refusals(mesh, "garbler") == Counter({"MALFORMED_REQUEST": 1, "AGENCY_RATE_LIMITED": 1})


def test_the_broker_wide_bound_is_enforced_in_the_chain_and_audited(
    mesh: Mesh, certs: dict[str, CertFiles]
) -> None:
    outcomes = _flood(mesh, certs["greedy"], [_request(f"u.greedy{i}") for i in range(30)])
    reasons = Counter(reason for code, reason, _ in outcomes if code != grpc.StatusCode.OK)
    assert set(reasons) == {"BROKER_CONCURRENCY_LIMITED"}
    assert sum(1 for code, _, _ in outcomes if code == grpc.StatusCode.OK) <= BROKER_BOUND
    assert _refusals(mesh, "greedy")["BROKER_CONCURRENCY_LIMITED"] == reasons["BROKER_CONCURRENCY_LIMITED"]


def test_admission_and_metrics_configuration(tmp_path: Path) -> None:
    home = LeisHome(tmp_path)
    assert load_config(home).admission == AdmissionConfig(
        agency_concurrent_calls=16, retry_after_seconds=0.25, core_concurrent_rpcs=4096
    )
    home.config.write_text(
        "[broker]\nmax_concurrent_rpcs = 300\nmetrics_tls = true\n"
        "[admission]\nagency_concurrent_calls = 8\nretry_after_seconds = 1\ncore_concurrent_rpcs = 1000\n"
    )
    config = load_config(home)
    assert (config.max_concurrent_rpcs, config.metrics_tls, config.metrics_host) == (300, True, "127.0.0.1")
    assert config.admission == AdmissionConfig(
        agency_concurrent_calls=8, retry_after_seconds=1.0, core_concurrent_rpcs=1000
    )
    home.config.write_text("[broker]\nmax_concurrent_rpcs = 5000\n")
    with pytest.raises(ConfigError, match="core_concurrent_rpcs must be above"):
        load_config(home)
    home.config.write_text("[admission]\nagency_concurrent_calls = 0\n")
    with pytest.raises(ConfigError, match="agency_concurrent_calls must be positive"):
        load_config(home)
    home.config.write_text('[broker]\nmetrics_tls = "yes"\n')
    with pytest.raises(ConfigError, match="metrics_tls must be bool"):
        load_config(home)
