"""Typed, frozen broker configuration, loaded once at start from ``config.toml``.

Every per-source deadline, retry policy, rate limit and bound lives here, not
in code (CONVENTIONS: fan-out deadlines and retryable codes are configuration).
The file's schema is declared by the models below (pydantic, strict, unknown keys
refused); a missing file means the documented defaults; a malformed one is refused
with a message naming the file, the table and the key. A new ``[broker]`` option
is one more field on ``BrokerSettings``.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from leis.common.paths import LeisHome

SOURCE_NAMES = ("eid", "tecs", "photos")
# Below the Linux ephemeral range (32768-60999), so an outgoing connection can never hold them.
DEFAULT_PORTS = {"broker": 7051, "eid": 7061, "tecs": 7062, "photos": 7063}

RetryableCode = Literal["UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED"]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


def _default_address(name: str) -> str:
    return f"127.0.0.1:{DEFAULT_PORTS[name]}"


class ConfigError(ValueError):
    """A configuration file is malformed; the message names the file and key."""


class _Schema(BaseModel):
    """Frozen, strict (no "3" for 3, no true for 1), unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SourceSettings(_Schema):
    """One ``[sources.<name>]`` table: how the broker reaches that source system."""

    address: str
    deadline_ms: PositiveInt = 1500
    max_attempts: Annotated[int, Field(gt=0, le=5)] = 2
    # TOML arrays arrive as lists; the items are still checked one by one.
    retryable_codes: Annotated[tuple[RetryableCode, ...], Field(strict=False)] = ("UNAVAILABLE",)
    max_records: PositiveInt = 100


class SourceConfig(SourceSettings):
    """How the broker reaches one source system, by name."""

    name: str

    def service_config_json(self) -> str:
        """The gRPC service config carrying this source's retry policy."""
        policy = {
            "methodConfig": [
                {
                    "name": [{"service": "leis.source.v1.SourceService"}],
                    "retryPolicy": {
                        "maxAttempts": self.max_attempts,
                        "initialBackoff": "0.02s",
                        "maxBackoff": "0.2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": list(self.retryable_codes),
                    },
                }
            ]
        }
        return json.dumps(policy)


class RateLimitConfig(_Schema):
    """The ``[rate_limits]`` table: token buckets per end user and per agency (R-Q-2, R-SEC-3)."""

    user_per_minute: PositiveFloat = 120.0
    user_burst: PositiveInt = 20
    agency_per_minute: PositiveFloat = 6000.0
    agency_burst: PositiveInt = 500


class AdmissionConfig(_Schema):
    """The ``[admission]`` table: bounds on calls in flight, checked in the chain so every refusal
    is audited (R-SEC-3).

    ``agency_concurrent_calls`` is an agency's bound unless its agreement sets
    ``max_concurrent_calls``; the broker-wide bound is ``[broker] max_concurrent_rpcs``.
    ``work_slots`` calls run at once, handed out fairly among the agencies; the others wait
    at most ``max_queue_seconds`` (or until their deadline is near), then are refused.
    ``core_concurrent_rpcs`` is gRPC core's own cap, far above both: it answers
    "Concurrent RPC limit exceeded!" with no audit event, so it is only the last resort.
    """

    agency_concurrent_calls: PositiveInt = 16
    work_slots: PositiveInt = 2
    max_queue_seconds: PositiveFloat = 5.0
    retry_after_seconds: PositiveFloat = 0.25
    core_concurrent_rpcs: PositiveInt = 4096


class BrokerSettings(_Schema):
    """The ``[broker]`` table."""

    listen: str = f"127.0.0.1:{DEFAULT_PORTS['broker']}"
    max_results: Annotated[int, Field(gt=0, le=100)] = 25
    max_request_bytes: PositiveInt = 64 * 1024
    max_concurrent_rpcs: PositiveInt = 256
    grace_seconds: PositiveFloat = 5.0
    audit_url: str = ""
    registry_poll_seconds: PositiveFloat = 1.0
    # "postgresql": the agreement registry published in the audit_url database (leis.shared), shared
    # by every replica; "file" (the default): agreements.toml in the LEIS home.
    registry_store: Literal["file", "postgresql"] = "file"
    outbound_deadline_ms: PositiveInt = 2000
    # Prometheus /metrics on 127.0.0.1; None (not expressible in the file) disables it, 0 picks a free port.
    metrics_port: Annotated[int, Field(ge=0)] | None = 9464
    metrics_host: str = "127.0.0.1"
    # Serve /metrics over TLS with the broker's certificate, clients verified against the CA.
    metrics_tls: bool = False
    # The LEXS-SR (SOAP over mTLS) endpoint, "host:port"; absent (the default) serves none.
    lexs_listen: str | None = None
    # How long after a Search disclosed a person its end user may fetch that data item again
    # (LEXS getDataItem, gRPC GetDataItem), re-fetched live from the sources (R-RET-1).
    lexs_data_item_window_hours: PositiveFloat = 24.0


class _Sources(_Schema):
    """The ``[sources]`` table: one table per source, each starting from its defaults."""

    eid: SourceSettings = SourceSettings(address=_default_address("eid"))
    tecs: SourceSettings = SourceSettings(address=_default_address("tecs"))
    photos: SourceSettings = SourceSettings(address=_default_address("photos"))


class _ConfigFile(_Schema):
    """The whole ``config.toml``."""

    broker: BrokerSettings = BrokerSettings()
    rate_limits: RateLimitConfig = RateLimitConfig()
    admission: AdmissionConfig = AdmissionConfig()
    sources: _Sources = _Sources()


class BrokerConfig(BrokerSettings):
    """Everything ``leis serve`` needs, resolved against the LEIS home directory."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    home: LeisHome
    rate_limits: RateLimitConfig = RateLimitConfig()
    admission: AdmissionConfig = AdmissionConfig()
    sources: tuple[SourceConfig, ...] = ()

    @property
    def pki_dir(self) -> Path:
        return self.home.pki

    @property
    def registry_path(self) -> Path:
        return self.home.agreements

    @property
    def resolved_audit_url(self) -> str:
        return self.audit_url or f"sqlite:///{self.home.audit_db}"

    def source(self, name: str) -> SourceConfig:
        """The configuration of one source by name."""
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"no source named {name!r} in the configuration")


def default_sources() -> tuple[SourceConfig, ...]:
    """The three development sources on their default loopback ports."""
    return tuple(SourceConfig(name=n, address=_default_address(n)) for n in SOURCE_NAMES)


def load_config(home: LeisHome, path: Path | None = None) -> BrokerConfig:
    """Load ``config.toml`` (defaults when absent) into a frozen ``BrokerConfig``."""
    path = path or home.config
    if not path.exists():
        return BrokerConfig(home=home, sources=default_sources())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        parsed = _ConfigFile.model_validate(_with_source_defaults(data))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_message(exc.errors())}") from None
    if parsed.admission.core_concurrent_rpcs <= parsed.broker.max_concurrent_rpcs:
        raise ConfigError(
            f"{path}: [admission] core_concurrent_rpcs must be above [broker] max_concurrent_rpcs "
            "(gRPC core's cap refuses without an audit event)"
        )
    tables = parsed.sources.model_dump()
    sources = tuple(SourceConfig(name=n, **tables[n]) for n in SOURCE_NAMES)
    return BrokerConfig(
        home=home,
        rate_limits=parsed.rate_limits,
        admission=parsed.admission,
        sources=sources,
        **parsed.broker.model_dump(),
    )


def _with_source_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The file's tables, each known ``[sources.<name>]`` starting from that source's address."""
    tables = data.get("sources")
    if not isinstance(tables, Mapping):
        return data
    filled = dict(tables)
    for name in SOURCE_NAMES:
        table = tables.get(name, {})
        if isinstance(table, Mapping):
            filled[name] = {"address": _default_address(name), **table}
    return {**data, "sources": filled}


_TYPE_NAMES = {
    "int_type": "int",
    "float_type": "float",
    "string_type": "str",
    "tuple_type": "list",
    "bool_type": "bool",
}


def _message(errors: list[ErrorDetails]) -> str:
    """One precise message for pydantic's errors: unknown tables first, then the first error."""
    unknown = sorted(
        str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1
    )
    if unknown:
        return f"unknown section(s) {unknown}"
    stray = sorted(
        str(e["loc"][1])
        for e in errors
        if e["type"] == "extra_forbidden" and len(e["loc"]) == 2 and e["loc"][0] == "sources"
    )
    if stray:
        return f"unknown source(s) {stray}"
    error = errors[0]
    loc, kind, value = error["loc"], error["type"], error["input"]
    table_depth = min(len(loc), 2 if loc[0] == "sources" else 1)
    table = "[" + ".".join(str(part) for part in loc[:table_depth]) + "]"
    if len(loc) == table_depth:
        return f"{table} must be a table"
    key = str(loc[table_depth])
    if kind == "extra_forbidden":
        return f"{table}: unknown key {key!r}"
    if kind == "literal_error":
        bad = [e["input"] for e in errors if e["type"] == "literal_error" and e["loc"][:-1] == loc[:-1]]
        return f"{table} {key}: {bad} not allowed"
    if kind in _TYPE_NAMES:
        return f"{table}: {key} must be {_TYPE_NAMES[kind]}, got {type(value).__name__}"
    if kind in ("greater_than", "greater_than_equal"):
        return f"{table}: {key} must be positive"
    if kind == "less_than_equal":
        return f"{table} {key} must be between 1 and {(error.get('ctx') or {})['le']}"
    return f"{table}: {key}: {error['msg']}"
