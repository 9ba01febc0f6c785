"""Outbound federated search benchmark (issue 7 Performance).

Nine partner simulators in one process (``leis partners serve``) and the broker
(``leis serve``), both subprocesses on loopback with real mTLS; the load comes
from this process, closed loop. In one run:

(a) outbound search through the broker (DHS analyst certificate, full chain,
    audit of every message, tracing on), fanning out to the nine partners;
(b) the bare fan-out: a plain ``grpc.aio`` client here calling the same nine
    ``PartnerSearchService`` endpoints in parallel with the broker-client
    certificate, the same requests and deadline, no broker;
(c) (a) again with one partner slowed past the broker's per-partner deadline
    (partners restarted with ``--latency-ms <slow partner>=<ms>``).

Prints QPS, p50 and p99 of each, and the partner states seen in (c).

    python bench/bench_outbound.py [--seconds 10] [--concurrency 8] [--deadline-ms 500]
                                   [--slow-partner azlink] [--slow-ms 3000]

Targets: (a) >= 0.75x the QPS of (b); in (c) p99 <= deadline + 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mesh import PORTS, LoadResult, bench_mesh, closed_loop, prepare_home, rss_mb

from leis.broker.outbound import MAX_PARTNER_RESPONSE_BYTES
from leis.common.paths import LeisHome
from leis.common.tls import channel_credentials
from leis.pki.pins import key_pins
from leis.registry.agreements import pin_registry_text, seed_registry_text
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.partner.v1 import partner_search_service_pb2_grpc as partner_grpc
from leis_api.v1 import federated_search_service_pb2 as fed_pb
from leis_api.v1 import federated_search_service_pb2_grpc as fed_grpc
from leis_api.v1 import subject_pb2
from leis_sim.launcher import Mesh, Process, leis_argv
from leis_sim.partners.data import generate_records
from leis_sim.partners.profiles import TWO_WAY_PARTNER_IDS, default_address
from leis_sim.synth.partner_cast import SHOWCASE_PERSONS, UNKNOWN_PERSON, Person

ANALYST_ORI = "DCICE0000"
LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
# Below the Linux ephemeral range and away from the development defaults (7051, 7071-7079)
# and the broker benchmark (51051-51063), so the benchmarks can run beside a dev mesh.
PARTNER_BASE_PORT = 17171
BROKER_PORT = 17181
SOURCE_PERSONS = 200
T = TypeVar("T")  # the sources are not used by outbound search; prepare_home seeds a few

CONFIG = """
[broker]
listen = "127.0.0.1:{broker_port}"
max_concurrent_rpcs = 512
outbound_deadline_ms = {deadline_ms}
metrics_port = 0

[rate_limits]
user_per_minute = 10000000.0
user_burst = 1000000
agency_per_minute = 10000000.0
agency_burst = 1000000

[sources.eid]
address = "127.0.0.1:{eid_port}"
[sources.tecs]
address = "127.0.0.1:{tecs_port}"
[sources.photos]
address = "127.0.0.1:{photos_port}"
"""


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def configure(home: LeisHome, deadline_ms: int) -> None:
    """Broker config with the outbound deadline; registry endpoints at the simulators' ports."""
    write_atomically(
        home.config,
        CONFIG.format(
            broker_port=BROKER_PORT,
            deadline_ms=deadline_ms,
            eid_port=PORTS["eid"],
            tecs_port=PORTS["tecs"],
            photos_port=PORTS["photos"],
        ),
    )
    registry = pin_registry_text(seed_registry_text(), key_pins(home.pki)).text
    for agency_id in TWO_WAY_PARTNER_IDS:
        wanted = default_address(agency_id, host="127.0.0.1", base_port=PARTNER_BASE_PORT)
        seed = f'endpoint = "{default_address(agency_id)}"'
        if seed not in registry:
            raise SystemExit(f"seed registry has no {seed} line for {agency_id}")
        registry = registry.replace(seed, f'endpoint = "{wanted}"')
    write_atomically(home.agreements, registry)


def subjects() -> list[subject_pb2.SubjectQuery]:
    """Name + date-of-birth queries: the showcase persons, an unknown one, and persons the partners hold."""
    persons: list[Person] = [s.person for s in SHOWCASE_PERSONS] + [UNKNOWN_PERSON]
    for agency_id in ("ndex", "lasd", "linx-nw", "tdex"):
        records = generate_records(agency_id)
        persons += [r.person for r in records[:: max(1, len(records) // 6)]][:6]
    return [
        subject_pb2.SubjectQuery(
            name=subject_pb2.NameCriteria(
                first_name=p.first_name, last_name=p.last_name, date_of_birth=p.date_of_birth
            )
        )
        for p in persons
    ]


def add_partners(mesh: Mesh, home: LeisHome, slow: dict[str, int]) -> Process:
    """The simulators' process, health-checked on every partner port."""
    argv = leis_argv(
        "partners",
        "serve",
        "--host",
        "127.0.0.1",
        "--base-port",
        str(PARTNER_BASE_PORT),
        "--pki-dir",
        str(home.pki),
        *(f"--latency-ms={agency_id}={ms}" for agency_id, ms in slow.items()),
    )
    more_ports = [PARTNER_BASE_PORT + i for i in range(1, len(TWO_WAY_PARTNER_IDS))]
    return mesh.add("partners", argv, PARTNER_BASE_PORT, more_ports=more_ports)


class Load:
    """The two ways of asking the nine partners, over the same requests."""

    def __init__(self, home: LeisHome, queries: Sequence[subject_pb2.SubjectQuery], deadline_ms: int) -> None:
        self.deadline = deadline_ms / 1000
        self.states: Counter[tuple[str, str]] = Counter()
        analyst = channel_credentials(home.pki, "dhs-analyst")
        self._broker_channel = grpc.aio.secure_channel(f"localhost:{BROKER_PORT}", analyst)
        self._broker = fed_grpc.FederatedSearchServiceStub(self._broker_channel)
        broker_client = channel_credentials(home.pki, "broker-client")
        options = [("grpc.max_receive_message_length", MAX_PARTNER_RESPONSE_BYTES)]
        self._partner_channels = [
            grpc.aio.secure_channel(
                default_address(a, host="127.0.0.1", base_port=PARTNER_BASE_PORT),
                broker_client,
                options=options,
            )
            for a in TWO_WAY_PARTNER_IDS
        ]
        self._partners = [partner_grpc.PartnerSearchServiceStub(c) for c in self._partner_channels]
        self._analyst_requests = [
            fed_pb.FederatedSearchServiceSearchRequest(
                subject=q,
                purpose=LAW,
                end_user=subject_pb2.EndUser(user_id=f"bench.{i % 20}", ori=ANALYST_ORI),
            )
            for i, q in enumerate(queries)
        ]
        self._partner_requests = [
            partner_pb.SearchRequest(
                subject=q,
                purpose=LAW,
                requesting_user=subject_pb2.EndUser(user_id=f"bench.{i % 20}", ori=ANALYST_ORI),
                request_id=f"bench-{i}",
            )
            for i, q in enumerate(queries)
        ]

    async def through_broker(self, i: int) -> fed_pb.FederatedSearchServiceSearchResponse:
        request = self._analyst_requests[i % len(self._analyst_requests)]
        response: fed_pb.FederatedSearchServiceSearchResponse = await self._broker.Search(request, timeout=10)
        for partner in response.partners:
            state = fed_pb.PartnerState.Name(partner.state).removeprefix("PARTNER_STATE_")
            self.states[(partner.agency_id, state)] += 1
        return response

    async def bare_fan_out(self, i: int) -> int:
        """The nine partner calls in parallel; the number of records they returned."""
        request = self._partner_requests[i % len(self._partner_requests)]
        replies: list[partner_pb.SearchResponse] = await asyncio.gather(
            *(stub.Search(request, timeout=self.deadline) for stub in self._partners)
        )
        return sum(len(r.records) for r in replies)

    async def settle(self, expect_timed_out: set[str], seconds: float = 30.0) -> None:
        """Search until every partner answers as expected (channels connected, simulators warm)."""
        deadline = time.monotonic() + seconds
        while True:
            response = await self.through_broker(0)
            states = {p.agency_id: p.state for p in response.partners}
            timed_out = {a for a, s in states.items() if s == fed_pb.PARTNER_STATE_TIMED_OUT}
            healthy = {
                a
                for a, s in states.items()
                if s in (fed_pb.PARTNER_STATE_ANSWERED, fed_pb.PARTNER_STATE_NO_MATCH)
            }
            if timed_out == expect_timed_out and healthy == set(TWO_WAY_PARTNER_IDS) - expect_timed_out:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"partners never settled: {sorted(states.items())}")
            await asyncio.sleep(0.2)
        if not expect_timed_out:
            await self.bare_fan_out(0)
        self.states.clear()

    async def close(self) -> None:
        await self._broker_channel.close(None)
        await asyncio.gather(*(c.close(None) for c in self._partner_channels))


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (``None``: this process)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(
    label: str, call: Callable[[int], Awaitable[object]], args: argparse.Namespace, pids: dict[str, int]
) -> LoadResult:
    """One closed loop; prints its figures and each process's CPU use over the loop (warm-up included)."""
    processes: dict[str, int | None] = {**pids, "bench client": None}
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    started = time.monotonic()
    result = await closed_loop(label, call, args.concurrency, args.seconds)
    elapsed = time.monotonic() - started
    used = {name: cpu_seconds(pid) - before[name] for name, pid in processes.items()}
    print(result.line(), flush=True)
    print(
        "    CPU: " + ", ".join(f"{name} {100 * cpu / elapsed:.0f}%" for name, cpu in used.items()),
        flush=True,
    )
    return result


async def healthy_run(
    home: LeisHome,
    queries: Sequence[subject_pb2.SubjectQuery],
    args: argparse.Namespace,
    pids: dict[str, int],
) -> tuple[LoadResult, LoadResult]:
    load = Load(home, queries, args.deadline_ms)
    try:
        await load.settle(set())
        broker = await measured("(a) outbound via broker", load.through_broker, args, pids)
        bare = await measured(
            "(b) bare fan-out, 9 partners", load.bare_fan_out, args, {"partners": pids["partners"]}
        )
    finally:
        await load.close()
    return broker, bare


async def slow_run(
    home: LeisHome,
    queries: Sequence[subject_pb2.SubjectQuery],
    args: argparse.Namespace,
    pids: dict[str, int],
) -> tuple[LoadResult, Counter[tuple[str, str]]]:
    load = Load(home, queries, args.deadline_ms)
    try:
        await load.settle({args.slow_partner})
        slowed = await measured(
            f"(c) via broker, {args.slow_partner} +{args.slow_ms} ms", load.through_broker, args, pids
        )
    finally:
        await load.close()
    return slowed, load.states


def run_phase(home: LeisHome, slow: dict[str, int], body: Callable[[dict[str, int]], T]) -> T:
    """Start partners (with ``slow`` latencies) and the broker, run ``body(pids)``, stop both."""
    with bench_mesh(home) as mesh:
        partners = add_partners(mesh, home, slow)
        broker = mesh.add("broker", leis_argv("serve"), BROKER_PORT)
        mesh.start_healthy()
        result = body({"broker": broker.pid, "partners": partners.pid})
        print(
            f"    RSS: broker {rss_mb(broker.pid):.0f} MB, partners {rss_mb(partners.pid):.0f} MB",
            flush=True,
        )
    time.sleep(0.5)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".leis-bench/outbound"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--deadline-ms", type=int, default=500, help="broker [broker] outbound_deadline_ms")
    parser.add_argument("--slow-partner", default="azlink", choices=TWO_WAY_PARTNER_IDS)
    parser.add_argument("--slow-ms", type=int, default=3000, help="added latency of the slow partner in (c)")
    args = parser.parse_args()
    if args.slow_ms <= args.deadline_ms:
        parser.error("--slow-ms must exceed --deadline-ms (the slow partner must miss its deadline)")
    home = prepare_home(args.home, SOURCE_PERSONS)
    configure(home, args.deadline_ms)
    queries = subjects()
    print(
        f"{len(queries)} distinct name+DOB queries to {len(TWO_WAY_PARTNER_IDS)} partners; "
        f"concurrency {args.concurrency}, {args.seconds:.0f} s per run; "
        f"outbound deadline {args.deadline_ms} ms; {os.cpu_count()} CPUs",
        flush=True,
    )
    broker, bare = run_phase(home, {}, lambda pids: asyncio.run(healthy_run(home, queries, args, pids)))
    slowed, states = run_phase(
        home,
        {args.slow_partner: args.slow_ms},
        lambda pids: asyncio.run(slow_run(home, queries, args, pids)),
    )
    slow_states: Counter[str] = Counter()
    other_states: Counter[str] = Counter()
    for (agency_id, state), count in states.items():
        (slow_states if agency_id == args.slow_partner else other_states)[state] += count
    print(f"    (c) partner states: {args.slow_partner} {dict(slow_states)}; the others {dict(other_states)}")
    ratio = broker.qps / bare.qps
    bound = args.deadline_ms + 50
    print(
        f"broker/bare QPS {ratio:.2f}x (target >= 0.75x: {'met' if ratio >= 0.75 else 'MISSED'}); "
        f"p99 broker {broker.percentile(99):.1f} ms vs bare {bare.percentile(99):.1f} ms"
    )
    p99 = slowed.percentile(99)
    print(
        f"slow partner: p99 {p99:.1f} ms, bound {bound} ms (deadline + 50): "
        f"{'met' if p99 <= bound else 'MISSED'}"
    )
    print(
        json.dumps(
            {
                "bench": "outbound",
                "qps_ratio": round(ratio, 3),
                "p99_ratio": round(broker.percentile(99) / bare.percentile(99), 3),
                "broker_qps": round(broker.qps, 1),
                "bare_qps": round(bare.qps, 1),
                "slow_partner_p99_ms": round(p99, 2),
                "slow_partner_bound_ms": bound,
            }
        )
    )


if __name__ == "__main__":
    main()
