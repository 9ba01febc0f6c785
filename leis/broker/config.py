"""Typed, frozen broker configuration, loaded once at start from ``config.toml``.

Every per-source deadline, retry policy, rate limit and bound lives here, not
in code (CONVENTIONS: fan-out deadlines and retryable codes are configuration).
A missing file means the documented defaults; a malformed one is refused with
a message naming the key.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from leis.common.paths import LeisHome

SOURCE_NAMES = ("eid", "tecs", "photos")
# Below the Linux ephemeral range (32768-60999), so an outgoing connection can never hold them.
DEFAULT_PORTS = {"broker": 7051, "eid": 7061, "tecs": 7062, "photos": 7063}
# Keys where 0 means something ("pick a free port").
ZERO_ALLOWED = frozenset({"metrics_port"})
RETRYABLE_CHOICES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED"})


class ConfigError(ValueError):
    """A configuration file is malformed; the message names the file and key."""


@dataclass(frozen=True)
class SourceConfig:
    """How the broker reaches one source system."""

    name: str
    address: str
    deadline_ms: int = 1500
    max_attempts: int = 2
    retryable_codes: tuple[str, ...] = ("UNAVAILABLE",)
    max_records: int = 100

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


@dataclass(frozen=True)
class RateLimitConfig:
    """Token-bucket rate limits per end user and per agency (R-Q-2, R-SEC-3)."""

    user_per_minute: float = 120.0
    user_burst: int = 20
    agency_per_minute: float = 6000.0
    agency_burst: int = 500


@dataclass(frozen=True)
class AdmissionConfig:
    """Bounds on calls in flight, checked in the chain so every refusal is audited (R-SEC-3).

    ``agency_concurrent_calls`` is an agency's bound unless its agreement sets
    ``max_concurrent_calls``; the broker-wide bound is ``[broker] max_concurrent_rpcs``.
    ``core_concurrent_rpcs`` is gRPC core's own cap, far above both: it answers
    "Concurrent RPC limit exceeded!" with no audit event, so it is only the last resort.
    """

    agency_concurrent_calls: int = 16
    retry_after_seconds: float = 0.25
    core_concurrent_rpcs: int = 4096


@dataclass(frozen=True)
class BrokerConfig:
    """Everything ``leis serve`` needs, resolved against the LEIS home directory."""

    home: LeisHome
    listen: str = f"127.0.0.1:{DEFAULT_PORTS['broker']}"
    max_results: int = 25
    max_request_bytes: int = 64 * 1024
    max_concurrent_rpcs: int = 256
    grace_seconds: float = 5.0
    audit_url: str = ""
    registry_poll_seconds: float = 1.0
    outbound_deadline_ms: int = 2000
    # Prometheus /metrics on 127.0.0.1; None disables it, 0 picks a free port.
    metrics_port: int | None = 9464
    metrics_host: str = "127.0.0.1"
    # Serve /metrics over TLS with the broker's certificate, clients verified against the CA.
    metrics_tls: bool = False
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
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
    return tuple(SourceConfig(name=n, address=f"127.0.0.1:{DEFAULT_PORTS[n]}") for n in SOURCE_NAMES)


def load_config(home: LeisHome, path: Path | None = None) -> BrokerConfig:
    """Load ``config.toml`` (defaults when absent) into a frozen ``BrokerConfig``."""
    path = path or home.config
    config = BrokerConfig(home=home, sources=default_sources())
    if not path.exists():
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return _apply(config, data, path)


def _apply(config: BrokerConfig, data: dict[str, Any], path: Path) -> BrokerConfig:
    unknown = set(data) - {"broker", "rate_limits", "admission", "sources"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}")
    broker = data.get("broker", {})
    allowed = {
        "listen": str,
        "max_results": int,
        "max_request_bytes": int,
        "max_concurrent_rpcs": int,
        "grace_seconds": float,
        "audit_url": str,
        "registry_poll_seconds": float,
        "outbound_deadline_ms": int,
        "metrics_port": int,
        "metrics_host": str,
        "metrics_tls": bool,
    }
    updates = _typed(broker, allowed, f"{path}: [broker]")
    if "max_results" in updates and not 1 <= updates["max_results"] <= 100:
        raise ConfigError(f"{path}: [broker] max_results must be between 1 and 100")
    config = replace(config, **updates)
    if "rate_limits" in data:
        limits = _typed(
            data["rate_limits"],
            {"user_per_minute": float, "user_burst": int, "agency_per_minute": float, "agency_burst": int},
            f"{path}: [rate_limits]",
        )
        config = replace(config, rate_limits=replace(config.rate_limits, **limits))
    if "admission" in data:
        admission = _typed(
            data["admission"],
            {"agency_concurrent_calls": int, "retry_after_seconds": float, "core_concurrent_rpcs": int},
            f"{path}: [admission]",
        )
        config = replace(config, admission=replace(config.admission, **admission))
    if config.admission.core_concurrent_rpcs <= config.max_concurrent_rpcs:
        raise ConfigError(
            f"{path}: [admission] core_concurrent_rpcs must be above [broker] max_concurrent_rpcs "
            "(gRPC core's cap refuses without an audit event)"
        )
    if "sources" in data:
        sources = []
        for name in SOURCE_NAMES:
            base = config.source(name)
            table = data["sources"].get(name, {})
            values = _typed(
                table,
                {
                    "address": str,
                    "deadline_ms": int,
                    "max_attempts": int,
                    "retryable_codes": list,
                    "max_records": int,
                },
                f"{path}: [sources.{name}]",
            )
            if "retryable_codes" in values:
                codes = tuple(values["retryable_codes"])
                bad = [c for c in codes if c not in RETRYABLE_CHOICES]
                if bad:
                    raise ConfigError(f"{path}: [sources.{name}] retryable_codes: {bad} not allowed")
                values["retryable_codes"] = codes
            if not 1 <= values.get("max_attempts", base.max_attempts) <= 5:
                raise ConfigError(f"{path}: [sources.{name}] max_attempts must be between 1 and 5")
            sources.append(replace(base, **values))
        extra = set(data["sources"]) - set(SOURCE_NAMES)
        if extra:
            raise ConfigError(f"{path}: unknown source(s) {sorted(extra)}")
        config = replace(config, sources=tuple(sources))
    return config


def _typed(table: Any, allowed: dict[str, type], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    out: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}")
        kind = allowed[key]
        value = float(raw) if kind is float and isinstance(raw, int) and not isinstance(raw, bool) else raw
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {type(value).__name__}")
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (value < 0 or (value == 0 and key not in ZERO_ALLOWED))
        ):
            raise ConfigError(f"{where}: {key} must be positive")
        out[key] = value
    return out
