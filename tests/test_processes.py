"""The mesh as separate operating-system processes: traces, PII canary, crash safety, audit CLI.

Each source (EID, TECS, photo store) and the broker runs as its own
``python -m leis.cli …`` process with ``LEIS_HOME`` pointing at a temporary home,
over real mTLS, exactly as an operator starts them. The tests prove, across
process boundaries:

- one partner query is one trace through four processes (issue 6, R-OBS-1, R-OBS-3);
- distinctive canary names, numbers, dates of birth and addresses reach no span,
  log line or metric (R-OBS-2);
- ``kill -9`` of the broker under load loses no audit event of any response a client
  received, and the chain still verifies and continues after a restart (R-AUD-2, R-AUD-4);
- ``leis audit verify|report|export|verify-export`` work on this real traffic (R-AUD-6).

The kill test stops the broker; it runs last and restarts it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from spanstore import all_spans_text

from leis.audit import EventRow, open_store, resolve_keys, verify_store
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT, agency_client_name
from leis.common.tracestore import TraceStoreError
from leis.ops.traces import StoredSpan, read_trace
from leis_api import LeisApiError, LeisClient
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.launcher import STOP_TIMEOUT_SECONDS, Mesh, leis_argv
from leis_sim.synth.showcase import showcase

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
NDEX_ORI = "WVFBI9900"
SOURCES = ("eid", "tecs", "photos")
SERVICES = {"broker": "leis-broker", **{name: f"leis-source-{name}" for name in SOURCES}}
CLI_TIMEOUT_SECONDS = 30.0
SPAN_WAIT_SECONDS = 10.0

CONFIG = """
[broker]
listen = "127.0.0.1:{broker}"
metrics_port = {metrics}
grace_seconds = 2.0
registry_poll_seconds = 0.5

[rate_limits]
user_per_minute = 6000000.0
user_burst = 100000
agency_per_minute = 6000000.0
agency_burst = 100000

[sources.eid]
address = "127.0.0.1:{eid}"
[sources.tecs]
address = "127.0.0.1:{tecs}"
[sources.photos]
address = "127.0.0.1:{photos}"
"""

SUSPECT = showcase("closed_suspect")
SUSPECT_SSN = SUSPECT.identifier(records_pb2.IDENTIFIER_TYPE_SSN)

# Distinctive synthetic values sent through the mesh by the canary test (R-OBS-2).
CANARY_FIRST = "Zzyzxqwerty"
CANARY_LAST = "Canarius"
CANARY_DOB = "1923-09-17"
CANARY_BAD_DOB = "1911-13-45"
CANARY_SSN = "078-05-1120"
CANARY_STREET = "4242 Canaryfield Rd"
CANARY_ADDRESS = f"{CANARY_STREET}, Quillmoor, OR 97999"
CANARY_PHONE = "+15415550177"
CANARY_ACTIVITY = "ACT-2031-4242424"
CANARY_DESCRIPTION = "Quillmoor canaryfield warehouse"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ProcessMesh(Mesh):
    """Sources and broker as separate processes sharing one LEIS home."""

    home: LeisHome = field(kw_only=True)
    metrics_port: int = field(kw_only=True)

    @property
    def address(self) -> str:
        return f"localhost:{self.processes['broker'].port}"

    def partner(self, agency_id: str = "ndex") -> LeisClient:
        name = agency_client_name(agency_id)
        pki = self.home.pki
        return LeisClient(self.address, ca=pki / CA_CERT, cert=pki / f"{name}.crt", key=pki / f"{name}.key")

    def leis(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one ``leis`` command against this home."""
        return subprocess.run(
            leis_argv(*args),
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )

    def scrape_metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text: str = reply.read().decode()
            return text


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[ProcessMesh]:
    """A LEIS home (session PKI and source data linked in) and the four processes running on it."""
    home = LeisHome(tmp_path_factory.mktemp("process-mesh"))
    home.pki.symlink_to(pki_dir)
    home.sources.mkdir()
    for name in SOURCES:
        (home.sources / f"{name}.db").symlink_to(source_data / f"{name}.db")
    home.agreements.write_text(seed_registry)
    ports = {name: _free_port() for name in ("broker", *SOURCES)}
    env = {**os.environ, "LEIS_HOME": str(home.root), "LEIS_LOG_LEVEL": "DEBUG"}
    built = ProcessMesh(home.pki, home.root / "logs", env, home=home, metrics_port=_free_port())
    home.config.write_text(CONFIG.format(metrics=built.metrics_port, **ports))
    for name in SOURCES:
        built.add(
            name, leis_argv("sources", "serve", "--source", name, "--port", str(ports[name])), ports[name]
        )
    built.add("broker", leis_argv("serve"), ports["broker"])
    with built:
        built.start_healthy()
        yield built


def _search(
    client: LeisClient, subject: subject_pb2.SubjectQuery, user_id: str = "det.e2e"
) -> query_pb.SearchResponse:
    return client.search(subject, purpose=LAW, user_id=user_id, ori=NDEX_ORI)


def wait_for_spans(
    mesh: ProcessMesh, trace_id: str, complete: Callable[[list[StoredSpan]], bool]
) -> list[StoredSpan]:
    """Poll the shared trace store until the trace is complete (each process batches its spans)."""
    deadline = time.monotonic() + SPAN_WAIT_SECONDS
    spans: list[StoredSpan] = []
    while time.monotonic() < deadline:
        try:
            spans = read_trace(mesh.home.traces_db, trace_id)
        except TraceStoreError:
            spans = []
        if complete(spans):
            return spans
        time.sleep(0.1)
    got = sorted((s.service, s.kind, s.name) for s in spans)
    raise AssertionError(f"trace {trace_id} incomplete after {SPAN_WAIT_SECONDS} s: {got}")


def _has_every_hop(spans: list[StoredSpan]) -> bool:
    services = {s.service for s in spans}
    if not set(SERVICES.values()) <= services:
        return False
    clients = [s for s in spans if s.kind == "CLIENT"]
    servers = {s.parent_span_id for s in spans if s.kind == "SERVER"}
    return all(c.span_id in servers for c in clients) and any(
        s.service == SERVICES["broker"] and s.kind == "SERVER" for s in spans
    )


# --------------------------------------------------------------------------- 1. one trace, four processes


def test_one_query_is_one_trace_across_four_processes(mesh: ProcessMesh) -> None:
    """Issue 6 "Done when": parent links, one client span per source call, each source's
    server span in the same trace, and ``leis trace show`` prints the tree (R-OBS-1, R-OBS-3)."""
    with mesh.partner() as client:
        response = _search(client, SUSPECT.name_query())
    assert response.persons, "the showcase suspect is released to NDEx"
    trace_id = response.trace_id
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)

    spans = wait_for_spans(mesh, trace_id, _has_every_hop)
    by_id = {s.span_id: s for s in spans}
    assert {s.trace_id for s in spans} == {trace_id}
    assert {s.service for s in spans} == set(SERVICES.values())

    # The broker's server span is the root: the partner client sent no traceparent.
    roots = [s for s in spans if s.parent_span_id is None]
    assert len(roots) == 1
    root = roots[0]
    assert (root.service, root.kind, root.name) == (
        SERVICES["broker"],
        "SERVER",
        "leis.v1.QueryService/Search",
    )
    assert root.attributes["leis.agency_id"] == "ndex"
    assert root.status_name == "OK"

    def ancestors(span: StoredSpan) -> list[str]:
        chain = []
        while span.parent_span_id is not None:
            span = by_id[span.parent_span_id]
            chain.append(span.span_id)
        return chain

    clients = [s for s in spans if s.kind == "CLIENT"]
    assert sorted(str(c.attributes["leis.source"]) for c in clients) == sorted(SOURCES)
    for source in SOURCES:
        (call,) = [c for c in clients if c.attributes["leis.source"] == source]
        assert call.service == SERVICES["broker"]
        assert root.span_id in ancestors(call)
        assert call.status_name == "OK"
        (served,) = [s for s in spans if s.kind == "SERVER" and s.parent_span_id == call.span_id]
        assert served.service == SERVICES[source]
        assert served.attributes["leis.source"] == source
        assert served.name == call.name
        assert call.start_ns <= served.start_ns <= served.end_ns <= call.end_ns + 5_000_000
    assert all(s.span_id in by_id or s.parent_span_id is None for s in spans)
    assert all(s.parent_span_id is None or s.parent_span_id in by_id for s in spans)

    shown = mesh.leis("trace", "show", trace_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"trace {trace_id}  {len(spans)} spans  4 services" in out
    rows = [
        row
        for row in out.splitlines()[2:]
        if re.match(r"\s*\d+\.\d{2}\s+\d+\.\d{2}\s+OK\s", row)  # offset, duration, status
    ]
    assert len(rows) == len(spans)
    columns = {re.search(r"[.#]{30}", row).start() for row in rows}  # type: ignore[union-attr]
    assert len(columns) == 1, "the waterfall column is aligned whatever the service names"
    depth = {}
    for row in rows:
        match = re.search(r"[.#]{30}  ( *)(\S+)", row)
        assert match is not None, row
        service = row.split()[3]
        kind = "client" if "[client]" in row else "server" if "[server]" in row else "internal"
        depth[service, kind, len(match.group(1)) // 2] = row
    assert (SERVICES["broker"], "server", 0) in depth
    assert (SERVICES["broker"], "client", 1) in depth
    for source in SOURCES:
        assert (SERVICES[source], "server", 2) in depth, out


# --------------------------------------------------------------------------- 2. PII canary


def _canary_queries() -> list[tuple[subject_pb2.SubjectQuery, subject_pb2.Purpose.ValueType]]:
    name = subject_pb2.NameCriteria(first_name=CANARY_FIRST, last_name=CANARY_LAST, date_of_birth=CANARY_DOB)
    return [
        (subject_pb2.SubjectQuery(name=name), LAW),
        (
            subject_pb2.SubjectQuery(
                name=subject_pb2.NameCriteria(full_name=f"{CANARY_FIRST} {CANARY_LAST}"),
                identifier=subject_pb2.IdentifierCriteria(ssn=CANARY_SSN),
            ),
            LAW,
        ),
        (
            subject_pb2.SubjectQuery(
                address=subject_pb2.AddressCriteria(full_address=CANARY_ADDRESS, phone_number=CANARY_PHONE)
            ),
            LAW,
        ),
        (
            subject_pb2.SubjectQuery(
                address=subject_pb2.AddressCriteria(
                    street_number="4242", street_name="Canaryfield Rd", city="Quillmoor", state="OR"
                ),
                incident=subject_pb2.IncidentCriteria(
                    activity_number=CANARY_ACTIVITY, activity_description=CANARY_DESCRIPTION
                ),
            ),
            LAW,
        ),
        # Refused paths: a malformed date of birth, and a purpose the PIA forbids.
        (
            subject_pb2.SubjectQuery(
                name=subject_pb2.NameCriteria(
                    first_name=CANARY_FIRST, last_name=CANARY_LAST, date_of_birth=CANARY_BAD_DOB
                )
            ),
            LAW,
        ),
        (subject_pb2.SubjectQuery(name=name), subject_pb2.PURPOSE_LICENSING),
        # Real hits, so released data flows through every hop.
        (SUSPECT.name_query(), LAW),
        (subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn=SUSPECT_SSN)), LAW),
    ]


def _forbidden_strings() -> list[str]:
    """The canaries and the released showcase person's PII, in the forms they could take."""
    address = SUSPECT.person.addresses[0]
    ssn_dashed = f"{SUSPECT_SSN[:3]}-{SUSPECT_SSN[3:5]}-{SUSPECT_SSN[5:]}"
    return [
        CANARY_FIRST,
        CANARY_LAST,
        CANARY_DOB,
        CANARY_DOB.replace("-", ""),
        CANARY_BAD_DOB,
        CANARY_SSN,
        CANARY_SSN.replace("-", ""),
        "Canaryfield",
        "Quillmoor",
        CANARY_PHONE,
        CANARY_PHONE.removeprefix("+1"),
        CANARY_ACTIVITY,
        SUSPECT.person.name.first,
        SUSPECT.person.name.last,
        SUSPECT.person.dob,
        SUSPECT_SSN,
        ssn_dashed,
        address.street_name,
        *(phone.removeprefix("+1") for phone in SUSPECT.person.phones),
    ]


def test_pii_canary_reaches_no_span_log_or_metric(mesh: ProcessMesh) -> None:
    """R-OBS-2 across processes: every span in the shared store, every output line of the four
    processes (DEBUG logging) and the broker's /metrics scrape are free of the canaries."""
    outcomes: list[grpc.StatusCode] = []
    trace_ids: list[str] = []
    with mesh.partner() as client:
        for subject, purpose in _canary_queries():
            try:
                response = client.search(subject, purpose=purpose, user_id="det.canary", ori=NDEX_ORI)
            except LeisApiError as exc:
                outcomes.append(exc.code)
                continue
            outcomes.append(grpc.StatusCode.OK)
            trace_ids.append(response.trace_id)
            if subject.HasField("identifier") and subject.identifier.ssn == SUSPECT_SSN:
                assert response.persons, "the showcase suspect is found by SSN"
                released = response.persons[0]
                assert released.name.last_name == SUSPECT.person.name.last  # PII did flow to the partner
    assert grpc.StatusCode.INVALID_ARGUMENT in outcomes
    assert grpc.StatusCode.PERMISSION_DENIED in outcomes
    assert outcomes.count(grpc.StatusCode.OK) >= 5

    for trace_id in trace_ids:
        wait_for_spans(mesh, trace_id, lambda spans: any(s.parent_span_id is None for s in spans))
    metrics = mesh.scrape_metrics()
    assert "leis_requests_total" in metrics
    assert "leis_source_duration_seconds_bucket" in metrics

    haystacks = {
        "spans": all_spans_text(mesh.home.traces_db),
        "metrics": metrics,
        **{f"output of {name}": mesh.output(name) for name in mesh.processes},
    }
    assert '"service":"leis-broker"' in haystacks["output of broker"]  # JSON logs on stderr
    leaks = [
        (where, canary)
        for where, text in haystacks.items()
        for canary in _forbidden_strings()
        if canary.lower() in text.lower()
    ]
    assert leaks == []


def test_every_process_logs_json_lines_with_trace_ids(mesh: ProcessMesh) -> None:
    """Issue 6 item 5: each process writes structured JSON to stderr, one object per line,
    and a source's log line about a call carries that call's trace id."""
    with mesh.partner() as client:
        trace_id = _search(client, SUSPECT.name_query(), user_id="det.logs").trace_id
    deadline = time.monotonic() + SPAN_WAIT_SECONDS
    for name, process in mesh.processes.items():
        while True:
            lines = [line for line in process.stderr_path.read_text().splitlines() if line.strip()]
            entries = [json.loads(line) for line in lines]
            traced = {entry.get("trace_id") for entry in entries}
            if name == "broker" or trace_id in traced or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert entries, name
        assert {entry["service"] for entry in entries} == {SERVICES[name]}
        assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
        assert any("listening on" in entry["message"] for entry in entries), name
        if name != "broker":
            assert trace_id in traced, name


# --------------------------------------------------------------------------- 4. audit CLI on real traffic


def test_audit_cli_on_real_traffic(mesh: ProcessMesh, tmp_path: Path) -> None:
    """R-AUD-4, R-AUD-6: verify, weekly report and signed per-agency export of this module's traffic."""
    with mesh.partner() as client:
        _search(client, SUSPECT.name_query(), user_id="det.report")
    verified = mesh.leis("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "audit log intact" in verified.stdout

    report = mesh.leis("audit", "report", "--since", "1d", "--json")
    assert report.returncode == 0, report.stderr
    text = report.stdout
    assert "ndex" in text
    assert "det.report" in text
    json.loads(text)
    readable = mesh.leis("audit", "report", "--since", "1d")
    assert readable.returncode == 0, readable.stderr
    assert "ndex" in readable.stdout

    export = tmp_path / "ndex-export.json"
    exported = mesh.leis("audit", "export", "--agency", "ndex", "-o", str(export))
    assert exported.returncode == 0, exported.stderr
    count = int(re.search(r"exported (\d+) events", exported.stdout).group(1))  # type: ignore[union-attr]
    assert count >= 2
    checked = mesh.leis("audit", "verify-export", str(export))
    assert checked.returncode == 0, checked.stderr
    assert f"export valid: {count} events of agency ndex" in checked.stdout
    assert "a trusted key" in checked.stdout

    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(export.read_bytes().replace(b'"ndex"', b'"nlets"', 1))
    refused = mesh.leis("audit", "verify-export", str(tampered))
    assert refused.returncode == 1
    assert "EXPORT INVALID" in refused.stderr


# --------------------------------------------------------------------------- 3. kill -9 under load (last)


@dataclass
class Received:
    """What a client got back: the acknowledgement to look for in the audit log."""

    audit_reference: str
    trace_id: str


def _load(
    mesh: ProcessMesh, worker: int, stop: threading.Event, received: list[Received], errors: list[str]
) -> None:
    subjects = [
        SUSPECT.name_query(),
        showcase("tolerant_name").name_query(),
        showcase("open_suspect").name_query(),
    ]
    with mesh.partner() as client:
        n = 0
        while not stop.is_set():
            try:
                response = _search(client, subjects[n % len(subjects)], user_id=f"det.load{worker}")
            except LeisApiError as exc:
                errors.append(exc.code.name)
                if exc.code is grpc.StatusCode.UNAVAILABLE:
                    return
                continue
            received.append(Received(response.audit_reference, response.trace_id))
            n += 1


def _audit_rows(home: LeisHome) -> tuple[list[EventRow], bool]:
    """Every audit event and whether the log verifies, read offline with the home's keys."""
    store = open_store(home.audit_db, create=False)
    try:
        keys = resolve_keys(store, home.audit_db, create_key_file=False)
        report = verify_store(store, keys)
        rows = list(store.scan(0, 2**62))
    finally:
        store.close()
    return rows, report.intact


def test_kill_9_under_load_loses_no_acknowledged_event(mesh: ProcessMesh) -> None:
    """Issue 5 "Done when" (R-AUD-2): every response a client received has its QUERY_RECEIVED and
    RESPONSE_SENT events after SIGKILL; the chain verifies and a restarted broker continues it."""
    stop = threading.Event()
    received: list[Received] = []
    errors: list[str] = []
    workers = [
        threading.Thread(target=_load, args=(mesh, i, stop, received, errors), daemon=True) for i in range(8)
    ]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.5)
        before_kill = len(received)
        broker = mesh.processes["broker"].popen
        assert broker is not None
        os.kill(broker.pid, signal.SIGKILL)
        assert broker.wait(timeout=STOP_TIMEOUT_SECONDS) == -signal.SIGKILL
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
    assert not any(worker.is_alive() for worker in workers)
    assert before_kill >= 16, f"too little load before the kill ({before_kill} responses)"
    assert set(errors) <= {"UNAVAILABLE"}, errors

    rows, intact = _audit_rows(mesh.home)
    assert intact
    received_ids = {row.event_id: row for row in rows if row.event_type == "QUERY_RECEIVED"}
    responses = {row.parent_event_id: row for row in rows if row.event_type == "RESPONSE_SENT"}
    missing = [
        r for r in received if r.audit_reference not in received_ids or r.audit_reference not in responses
    ]
    assert missing == [], f"{len(missing)} of {len(received)} acknowledged responses lost"
    for ack in received:
        assert received_ids[ack.audit_reference].trace_id == ack.trace_id
        assert responses[ack.audit_reference].trace_id == ack.trace_id
        assert responses[ack.audit_reference].outcome == "OK"

    verified = mesh.leis("audit", "verify")
    assert verified.returncode == 0, verified.stderr

    # A restarted broker continues the same chain from its durable head.
    mesh.start(["broker"])
    mesh.wait_healthy(["broker"])
    with mesh.partner() as client:
        after = _search(client, SUSPECT.name_query(), user_id="det.restart")
    again = mesh.leis("audit", "verify")
    assert again.returncode == 0, again.stderr
    rows, intact = _audit_rows(mesh.home)
    assert intact
    assert after.audit_reference in {row.event_id for row in rows}
