"""``config.toml``: defaults, overrides, and one precise message per malformed file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leis.broker.config import ConfigError, default_sources, load_config
from leis.common.paths import LeisHome


@pytest.fixture
def home(tmp_path: Path) -> LeisHome:
    return LeisHome(tmp_path)


def _load(home: LeisHome, text: str) -> object:
    home.config.write_text(text, encoding="utf-8")
    return load_config(home)


def test_missing_file_means_the_documented_defaults(home: LeisHome) -> None:
    config = load_config(home)
    assert (config.listen, config.max_results, config.metrics_port) == ("127.0.0.1:7051", 25, 9464)
    assert config.sources == default_sources()
    assert [s.address for s in config.sources] == ["127.0.0.1:7061", "127.0.0.1:7062", "127.0.0.1:7063"]
    assert config.resolved_audit_url == f"sqlite:///{home.audit_db}"


def test_overrides_keep_every_other_default(home: LeisHome) -> None:
    home.config.write_text(
        "[broker]\ngrace_seconds = 2\nmetrics_port = 0\nmax_results = 100\n"
        "[rate_limits]\nuser_burst = 7\n"
        "[sources.tecs]\ndeadline_ms = 10\nretryable_codes = ['ABORTED', 'UNAVAILABLE']\nmax_attempts = 5\n",
        encoding="utf-8",
    )
    config = load_config(home)
    assert (config.grace_seconds, config.metrics_port, config.max_results) == (2.0, 0, 100)
    assert isinstance(config.grace_seconds, float)
    assert (config.rate_limits.user_burst, config.rate_limits.user_per_minute) == (7, 120.0)
    eid, tecs, photos = config.sources
    assert (eid, photos) == (default_sources()[0], default_sources()[2])
    assert (tecs.name, tecs.address, tecs.deadline_ms, tecs.max_records) == (
        "tecs",
        "127.0.0.1:7062",
        10,
        100,
    )
    assert tecs.retryable_codes == ("ABORTED", "UNAVAILABLE")
    retry = json.loads(tecs.service_config_json())["methodConfig"][0]["retryPolicy"]
    assert (retry["maxAttempts"], retry["retryableStatusCodes"]) == (5, ["ABORTED", "UNAVAILABLE"])
    assert config.source("tecs") is tecs
    with pytest.raises(ConfigError, match="no source named 'lexs'"):
        config.source("lexs")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[x]\n[y]\n[broker]\nmax_results = 0", "unknown section(s) ['x', 'y']"),
        ("broker = 3", "[broker] must be a table"),
        ("[broker]\nbogus = 1", "[broker]: unknown key 'bogus'"),
        ("[broker]\nmax_results = '3'", "[broker]: max_results must be int, got str"),
        ("[broker]\nmax_results = 2.5", "[broker]: max_results must be int, got float"),
        ("[broker]\ngrace_seconds = 'x'", "[broker]: grace_seconds must be float, got str"),
        ("[broker]\nlisten = 7051", "[broker]: listen must be str, got int"),
        ("[broker]\nmax_results = 0", "[broker]: max_results must be positive"),
        ("[broker]\nmax_results = 101", "[broker] max_results must be between 1 and 100"),
        ("[broker]\nmetrics_port = -1", "[broker]: metrics_port must be positive"),
        ("[broker]\noutbound_deadline_ms = 0", "[broker]: outbound_deadline_ms must be positive"),
        ("[rate_limits]\nuser_burst = true", "[rate_limits]: user_burst must be int, got bool"),
        ("[rate_limits]\nagency_per_minute = 0.0", "[rate_limits]: agency_per_minute must be positive"),
        ("sources = 3", "[sources] must be a table"),
        ("[sources]\neid = 3", "[sources.eid] must be a table"),
        ("[sources.rogue]\n[sources.lexs]", "unknown source(s) ['lexs', 'rogue']"),
        ("[sources.eid]\nname = 'tecs'", "[sources.eid]: unknown key 'name'"),
        ("[sources.eid]\nmax_attempts = 6", "[sources.eid] max_attempts must be between 1 and 5"),
        ("[sources.eid]\nmax_attempts = 0", "[sources.eid]: max_attempts must be positive"),
        (
            "[sources.eid]\nretryable_codes = 'UNAVAILABLE'",
            "[sources.eid]: retryable_codes must be list, got str",
        ),
        (
            "[sources.photos]\nretryable_codes = ['X', 'UNAVAILABLE', 'Y']",
            "[sources.photos] retryable_codes: ['X', 'Y'] not allowed",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_table_and_key(home: LeisHome, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(home, text)
    assert str(refused.value) == f"{home.config}: {message}"


def test_unreadable_toml_is_refused(home: LeisHome) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(home, "[broker\n")
