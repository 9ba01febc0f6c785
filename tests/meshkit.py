"""A whole LEIS mesh on loopback for end-to-end tests: the three sources, partner
simulators and the broker, served from one background event loop, with real mTLS.

Tests drive it through the real client (``leis_api.LeisClient``), exactly as a
partner system or analyst would. Every source and partner call the
broker makes is counted on the broker's side, so a test can prove that a refused
call never reached a source (R-Q-4, R-AUD-2).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc

from leis.audit import AuditLog, open_audit_log
from leis.broker.config import AdmissionConfig, BrokerConfig, RateLimitConfig, SourceConfig
from leis.broker.server import Broker, start_broker
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT, CertFiles, agency_client_name
from leis.common.tracing import tracer_provider
from leis_api import LeisClient

T = TypeVar("T")


class CountingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Counts the calls the broker makes to one source or partner."""

    def __init__(self, counter: Counter[str], name: str) -> None:
        self._counter = counter
        self._name = name

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        self._counter[self._name] += 1
        return await continuation(client_call_details, request)


class Mesh:
    """Sources + broker in a background loop; stop() always tears everything down."""

    def __init__(
        self,
        root: Path,
        pki_dir: Path,
        data_dir: Path,
        registry_text: str,
        *,
        max_results: int = 25,
        rate_limits: RateLimitConfig | None = None,
        source_deadline_ms: int = 1500,
        audit_url: str | None = None,
        partner_faults: dict[str, Any] | None = None,
        with_partners: bool = False,
        registry_poll_seconds: float = 0.2,
        outbound_deadline_ms: int = 2000,
        source_faults: dict[str, dict[str, Any]] | None = None,
        lexs: bool = False,
        lexs_partners: Sequence[str] = (),
        admission: AdmissionConfig | None = None,
        max_concurrent_rpcs: int | None = None,
    ) -> None:
        self.root = root
        self.pki_dir = pki_dir
        self.data_dir = data_dir
        root.mkdir(parents=True, exist_ok=True)
        (root / "pki").symlink_to(pki_dir)
        self.home = LeisHome(root)
        self.home.agreements.write_text(registry_text)
        self.calls: Counter[str] = Counter()
        self._max_results = max_results
        # Generous by default so tests are not throttled; the rate-limit tests pass their own.
        self._rate_limits = rate_limits or RateLimitConfig(user_per_minute=60_000.0, user_burst=10_000)
        self._source_deadline_ms = source_deadline_ms
        self._audit_url = audit_url or f"sqlite:///{root / 'audit.db'}"
        self._with_partners = with_partners
        self._partner_faults = partner_faults or {}
        self._registry_poll_seconds = registry_poll_seconds
        self._outbound_deadline_ms = outbound_deadline_ms
        self._source_faults = source_faults or {}
        self._lexs = lexs
        self._lexs_partners = tuple(lexs_partners)
        self._admission = admission or AdmissionConfig()
        self._max_concurrent_rpcs = (
            max_concurrent_rpcs or BrokerConfig.model_fields["max_concurrent_rpcs"].default
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="leis-mesh", daemon=True)
        self.sources: dict[str, Any] = {}
        self.partners: list[Any] = []
        self.broker: Broker | None = None
        self.audit_log: AuditLog | None = None
        # Sources and partners share one provider here (one process); all write the mesh's trace store.
        self.source_tracing = tracer_provider(
            "leis-sources", store_path=self.home.traces_db, schedule_delay_millis=50
        )

    # ------------------------------------------------------------------ lifecycle

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the mesh loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def start(self) -> Mesh:
        self._thread.start()
        try:
            self.call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        from leis_sim.sources.server import start_source

        for name in ("eid", "tecs", "photos"):
            self.sources[name] = await start_source(
                name,
                self.data_dir / f"{name}.db",
                self.pki_dir,
                tracer=self.source_tracing.get_tracer(f"leis.source.{name}"),
                **self._source_faults.get(name, {}),
            )
        if self._with_partners:
            from leis_sim.partners.fleet import start_partners

            self.partners = await start_partners(
                self.pki_dir,
                faults=self._partner_faults,
                tracer=self.source_tracing.get_tracer("leis.partners"),
                lexs=self._lexs_partners,
            )
            registry = self.home.agreements.read_text()
            for partner in self.partners:
                protocol = '\nprotocol = "lexs-sr"' if partner.agency_id in self._lexs_partners else ""
                registry = registry.replace(
                    f'endpoint = "localhost:{_default_port(partner.agency_id)}"',
                    f'endpoint = "127.0.0.1:{partner.port}"{protocol}',
                )
            self.home.agreements.write_text(registry)
        self.audit_log = await open_audit_log(self._audit_url)
        config = BrokerConfig(
            home=self.home,
            listen="127.0.0.1:0",
            max_results=self._max_results,
            rate_limits=self._rate_limits,
            admission=self._admission,
            max_concurrent_rpcs=self._max_concurrent_rpcs,
            registry_poll_seconds=self._registry_poll_seconds,
            metrics_port=0,
            outbound_deadline_ms=self._outbound_deadline_ms,
            lexs_listen="127.0.0.1:0" if self._lexs else None,
            sources=tuple(
                SourceConfig(
                    name=name, address=f"127.0.0.1:{source.port}", deadline_ms=self._source_deadline_ms
                )
                for name, source in self.sources.items()
            ),
        )
        self.broker = await start_broker(
            config,
            audit_log=self.audit_log,
            client_interceptors=lambda name: (
                cast(grpc.aio.ClientInterceptor, CountingInterceptor(self.calls, name)),
            ),
        )

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self.call(self._stop(), timeout=30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        self._loop.close()

    async def _stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
        for source in self.sources.values():
            await source.stop(0)
        if self.partners:
            from leis_sim.partners.fleet import stop_partners

            await stop_partners(self.partners)
        self.source_tracing.shutdown()
        # Whatever is still in flight (a slow simulated partner's handler) ends here, on the mesh
        # loop, rather than being destroyed pending when the loop closes.
        leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    # ------------------------------------------------------------------ clients

    @property
    def address(self) -> str:
        assert self.broker is not None
        return f"localhost:{self.broker.port}"

    def partner(self, agency_id: str) -> LeisClient:
        """A partner client with the agency's certificate from the PKI."""
        return self.client(agency_client_name(agency_id))

    def partner_with(self, cert: CertFiles) -> LeisClient:
        """A partner client with an arbitrary (possibly bad) certificate."""
        return LeisClient(self.address, ca=self.pki_dir / CA_CERT, cert=cert.cert, key=cert.key)

    def analyst(self, name: str = "dhs-analyst") -> LeisClient:
        """An analyst client (``federated_search``) with the named certificate from the PKI."""
        return self.client(name)

    def client(self, name: str) -> LeisClient:
        """A client with the PKI certificate ``<name>.crt``."""
        return self.partner_with(CertFiles(self.pki_dir / f"{name}.crt", self.pki_dir / f"{name}.key"))

    def source_calls(self) -> int:
        """Calls the broker made to the three sources so far."""
        return sum(self.calls[name] for name in ("eid", "tecs", "photos"))


def _default_port(agency_id: str) -> int:
    from leis_sim.partners.profiles import DEFAULT_PARTNER_BASE_PORT, TWO_WAY_PARTNER_IDS

    return DEFAULT_PARTNER_BASE_PORT + TWO_WAY_PARTNER_IDS.index(agency_id)


def registry_with(base: str, extra: Sequence[str]) -> str:
    """The seed registry text plus extra ``[[agreement]]`` tables (test agencies)."""
    return base + "\n" + "\n".join(extra)


def agreement_table(
    agency_id: str,
    *,
    status: str = "ACTIVE",
    effective_from: str = "2019-01-01",
    effective_until: str | None = None,
    direction: str = "TWO_WAY",
    oris: Sequence[str] = ("TX0000001",),
    purposes: Sequence[str] = ("CRIMINAL_LAW_ENFORCEMENT",),
    rate_limit_per_minute: int | None = None,
    max_concurrent_calls: int | None = None,
    pinned_key: str | None = None,
) -> str:
    """One ``[[agreement]]`` table for a test agency (certificate ``<id>.iss.leis.example``),
    pinned to ``pinned_key`` (the SPKI SHA-256 of its certificate; unpinned agreements serve no one)."""
    lines = [
        "[[agreement]]",
        f'id = "{agency_id}"',
        f'name = "Test agency {agency_id}"',
        'role = "PARTNER"',
        f'direction = "{direction}"',
        f'status = "{status}"',
        f"effective_from = {effective_from}",
    ]
    if effective_until:
        lines.append(f"effective_until = {effective_until}")
    if rate_limit_per_minute:
        lines.append(f"rate_limit_per_minute = {rate_limit_per_minute}")
    if max_concurrent_calls:
        lines.append(f"max_concurrent_calls = {max_concurrent_calls}")
    if pinned_key:
        lines.append(f'pinned_keys = [{{ spki_sha256 = "{pinned_key}" }}]')
    lines += [
        "version = 1",
        f'cert_identity = "{agency_id}.iss.leis.example"',
        "permitted_oris = [" + ", ".join(f'"{o}"' for o in oris) + "]",
        "permitted_purposes = [" + ", ".join(f'"{p}"' for p in purposes) + "]",
        f'release_profile = "{"STANDARD" if direction == "TWO_WAY" else "ONE_WAY"}"',
        "",
    ]
    return "\n".join(lines)


__all__ = ["CountingInterceptor", "Mesh", "agreement_table", "registry_with"]
