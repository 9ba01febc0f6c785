"""Weekly review, per-agency export and the ``leis audit`` command line (R-AUD-4..6)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_audit_kit import CANARY_NAME, fill, open_log, record

from leis.audit import AuditKeys, EventRow
from leis.audit.export import verify_export
from leis.audit.review import WEEK_US, build_report, parse_since, render_text
from leis.cli import main

HOUR_US = 3_600 * 1_000_000


def _flagged(text: str, who: str) -> str:
    """The flags the text report gives ``who`` (``agency / user``). The traffic is generated
    now, so the flags also hold OFF_HOURS when the tests run outside working hours."""
    lines = [line for line in text.splitlines() if line.startswith(f"  ! {who}: ")]
    assert len(lines) == 1, text
    return lines[0]


async def _traffic(path: Path, keys: AuditKeys) -> None:
    """Generated traffic: a fishing user, a refused and rate-limited one, an ordinary agency."""
    log = await open_log(path, keys, every=16)
    try:
        await fill(log, 12, user_id="fisher", disclosed_count=0, disclosed_record_ids=())
        refused = {"event_type": "REFUSED", "outcome": "REFUSED", "user_id": "pusher", "disclosed_count": 0}
        await fill(log, 3, status_code="RESOURCE_EXHAUSTED", reason="USER_RATE_LIMITED", **refused)
        await fill(log, 5, status_code="PERMISSION_DENIED", reason="PURPOSE_NOT_PERMITTED", **refused)
        await fill(log, 6, agency_id="nypd", ori="NY0000000")
        await log.append(record(1, event_type="QUERY_RECEIVED", direction="INBOUND", agency_id=""))
    finally:
        await log.close()


def test_report_flags_unusual_use_on_generated_traffic(tmp_path: Path) -> None:
    keys = AuditKeys.generate()
    asyncio.run(_traffic(tmp_path / "audit.db", keys))
    from leis.audit.sqlite import SqliteAuditStore

    store = SqliteAuditStore(tmp_path / "audit.db")
    try:
        now = int(datetime.now(UTC).timestamp() * 1e6)
        report = build_report(store, now - WEEK_US, now + HOUR_US)
    finally:
        store.close()
    ndex = report["agencies"]["ndex"]
    assert ndex["requests"] == 20
    assert ndex["refusal_reasons"] == {"PURPOSE_NOT_PERMITTED": 5, "USER_RATE_LIMITED": 3}
    assert ndex["users"]["fisher"]["longest_no_hit_streak"] == 12
    assert "NO_HIT_STREAK" in ndex["users"]["fisher"]["flags"]
    assert {"RATE_LIMITED", "REFUSALS"} <= set(ndex["users"]["pusher"]["flags"])
    assert ndex["users"]["pusher"]["rate_limit_hits"] == 3
    assert report["agencies"]["nypd"]["users"]["officer-1"]["flags"] == []
    assert report["events_by_type"] == {"QUERY_RECEIVED": 1, "REFUSED": 8, "RESPONSE_SENT": 18}
    text = render_text(report)
    assert "NO_HIT_STREAK" in _flagged(text, "ndex / fisher")
    assert "Agency nypd: 6 requests" in text
    assert CANARY_NAME not in text
    assert CANARY_NAME not in json.dumps(report)


class _Events:
    """A store stand-in that yields synthetic events (times chosen by the test)."""

    def __init__(self, events: list[EventRow]) -> None:
        self.events = sorted(events, key=lambda e: e.event_time_us)

    def scan(self, start_us: int, end_us: int, agency_id: str = "") -> Iterator[EventRow]:
        return iter([e for e in self.events if start_us <= e.event_time_us < end_us])


def _event(at: datetime, user: str) -> EventRow:
    return EventRow(
        event_id="e",
        chain_id="c",
        seq=1,
        event_time_us=int(at.timestamp() * 1e6),
        event_type="RESPONSE_SENT",
        direction="OUTBOUND",
        method="m",
        agency_id="ndex",
        ori="",
        user_id=user,
        cert_fingerprint="",
        purpose="",
        outcome="OK",
        status_code="OK",
        reason="",
        trace_id="",
        query_categories=(),
        disclosed_count=1,
        source_systems=(),
        disclosed_record_ids=(),
        released_fields=(),
        parent_event_id="",
        key_id="k",
        content_digest=b"",
        prev_hash=b"",
        hash=b"",
    )


def test_report_finds_off_hours_use_and_volume_outliers() -> None:
    start = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
    start_us = int(start.timestamp() * 1e6)
    events: list[EventRow] = []
    for week in range(1, 9):  # steady history: 10 a week at 10:00 on weekdays
        for n in range(10):
            at = start.replace(hour=10).timestamp() - week * 7 * 86400 + (n % 5) * 86400
            events.append(_event(datetime.fromtimestamp(at, tz=UTC), "steady"))
            events.append(_event(datetime.fromtimestamp(at, tz=UTC), "surge"))
    for n in range(10):
        events.append(_event(start.replace(hour=10, minute=n), "steady"))
    for n in range(120):
        events.append(_event(start.replace(hour=11, minute=0, second=n % 60, microsecond=n), "surge"))
    for n in range(6):
        events.append(_event(start.replace(hour=2, minute=n), "night"))
    report = build_report(_Events(events), start_us, start_us + WEEK_US)  # type: ignore[arg-type]
    users = report["agencies"]["ndex"]["users"]
    assert users["steady"]["flags"] == []
    assert users["steady"]["history_weekly_mean"] == 10.0
    assert users["surge"]["flags"] == ["VOLUME_OUTLIER"]
    assert users["night"]["flags"] == ["OFF_HOURS"]
    assert users["night"]["off_hours"] == 6
    shifted = build_report(_Events(events), start_us, start_us + WEEK_US, timezone="Asia/Tokyo")  # type: ignore[arg-type]
    assert shifted["agencies"]["ndex"]["users"]["night"]["off_hours"] == 0  # 11:00 in Tokyo


def test_parse_since() -> None:
    now = datetime(2025, 3, 10, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2025, 3, 3, tzinfo=UTC)
    assert parse_since("12h", now) == datetime(2025, 3, 9, 12, tzinfo=UTC)
    assert parse_since("2025-01-01", now) == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"expected e\.g\. 7d"):
        parse_since("last tuesday", now)


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, list[str]]:
    keys = AuditKeys.generate()
    keys.write(tmp_path / "audit.key")
    asyncio.run(_traffic(tmp_path / "audit.db", keys))
    return tmp_path, ["--home", str(tmp_path), "--url", f"sqlite:///{tmp_path / 'audit.db'}"]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_verify_names_the_first_broken_event(
    logged: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, common = logged
    # The writer keeps the witness beside the log (issue 11); verify reads it without a flag.
    status, out, _ = _cli(capsys, "audit", "verify", *common)
    assert status == 0
    assert "audit log intact: 27 events in 1 chain(s)" in out
    assert f"witness {root / 'audit-witness.jsonl'}: checked" in out
    witnessed = [json.loads(line) for line in (root / "audit-witness.jsonl").read_text().splitlines()[1:]]
    assert witnessed[-1]["seq"] == 27
    assert witnessed[-1]["closing"] is True
    status, out, _ = _cli(capsys, "audit", "verify", *common, "--json")
    assert json.loads(out)["intact"] is True

    import sqlite3

    conn = sqlite3.connect(root / "audit.db")
    conn.execute("DROP TRIGGER audit_event_append_only")
    conn.execute("UPDATE audit_event SET user_id = 'nobody' WHERE seq = 5")
    conn.commit()
    conn.close()
    status, _, err = _cli(capsys, "audit", "verify", *common)
    assert status == 1
    assert "BROKEN: chain broker-1 seq 5 (event " in err
    assert "hash mismatch" in err


def test_cli_search_report_export_and_verify_export(
    logged: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, common = logged
    status, out, _ = _cli(
        capsys, "audit", "search", *common, "--user", "pusher", "--type", "REFUSED", "--limit", "3"
    )
    assert status == 0
    assert len(out.splitlines()) == 3
    assert all("REFUSED" in line and "user=pusher" in line for line in out.splitlines())

    status, out, _ = _cli(capsys, "audit", "report", *common, "--since", "7d")
    assert status == 0
    assert "NO_HIT_STREAK" in _flagged(out, "ndex / fisher")
    status, out, _ = _cli(capsys, "audit", "report", *common, "--since", "7d", "--json")
    assert json.loads(out)["agencies"]["nypd"]["requests"] == 6

    streamed = root / "nypd.jsonl"
    status, out, _ = _cli(capsys, "audit", "export", *common, "--agency", "nypd", "-o", str(streamed))
    assert (status, out.strip()) == (0, f"exported 6 events of agency nypd to {streamed}")
    lines = streamed.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[0])["format"] == "leis-audit-export/2"
    assert len(lines) == 8  # header, six events, signed trailer
    status, out, _ = _cli(capsys, "audit", "verify-export", str(streamed), "--home", str(root))
    assert (status, "export valid: 6 events of agency nypd" in out) == (0, True)
    for tampered, problem in (
        (lines[:2] + lines[3:], "do not match the trailer"),  # an event dropped
        (lines[:-1], "no signed trailer"),  # cut short
        ([*lines[:3], lines[3].replace(b'"nypd"', b'"ndex"'), *lines[4:]], "altered"),
        ([lines[0].replace(b'"nypd"', b'"ndex"'), *lines[1:]], "another agency"),
    ):
        streamed.write_bytes(b"".join(tampered))
        status, _, err = _cli(capsys, "audit", "verify-export", str(streamed), "--home", str(root))
        assert (status, problem in err) == (1, True), err

    bundle = root / "nypd.json"
    status, out, _ = _cli(
        capsys, "audit", "export", *common, "--agency", "nypd", "--format", "1", "-o", str(bundle)
    )
    assert (status, out.strip()) == (0, f"exported 6 events of agency nypd to {bundle}")
    assert CANARY_NAME not in bundle.read_text()
    status, out, _ = _cli(capsys, "audit", "verify-export", str(bundle), "--home", str(root))
    assert status == 0
    assert "export valid: 6 events of agency nypd" in out
    assert "a trusted key" in out

    original_text = bundle.read_text()
    data: dict[str, Any] = json.loads(original_text)
    data["events"][2]["disclosed_record_ids"] = ["eid:999"]
    bundle.write_text(json.dumps(data))
    status, _, err = _cli(capsys, "audit", "verify-export", str(bundle), "--home", str(root))
    assert status == 1
    assert "event #3" in err
    assert "altered" in err

    data = json.loads(original_text)
    del data["events"][0]  # drop an event and fix the count: only the signature catches it
    data["event_count"] -= 1
    check = verify_export(json.dumps(data).encode())
    assert not check.ok
    assert "signature does not match" in check.problem
    untrusted = verify_export(original_text.encode(), AuditKeys.generate().trusted)
    assert (untrusted.ok, "not trusted" in untrusted.problem) == (False, True)
    assert verify_export(original_text.encode()).ok  # embedded key, for an out-of-band comparison


def test_cli_purge_dry_run_and_bad_input(
    logged: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, common = logged
    (root / "audit.toml").write_text(
        '[audit]\nretention_days = 30\n\n[[audit.legal_hold]]\nagency_id = "ndex"\n'
    )
    status, out, _ = _cli(capsys, "audit", "purge", *common, "--dry-run")
    assert (status, out.splitlines()[0]) == (0, "would purge 0 events older than 30 days in 0 gap(s)")
    status, out, _ = _cli(capsys, "audit", "purge", *common)
    assert status == 0
    assert "recorded as PURGE event" in out

    (root / "audit.toml").write_text("[audit]\n[[audit.legal_hold]]\nagency_id = 'a'\nuser_id = 'b'\n")
    status, _, err = _cli(capsys, "audit", "purge", *common)
    assert status == 2
    assert "name exactly one of agency_id, user_id, event_id, trace_id" in err
    (root / "audit.toml").write_text("[audit]\nretention = 3\n")
    status, _, err = _cli(capsys, "audit", "verify", *common)
    assert (status, "unknown key 'retention'" in err) == (2, True)
    (root / "audit.toml").unlink()

    status, _, err = _cli(
        capsys, "audit", "verify", "--home", str(root), "--url", f"sqlite:///{root / 'none.db'}"
    )
    assert (status, "no audit database here" in err) == (2, True)
    status, _, err = _cli(capsys, "audit", "report", *common, "--since", "soon")
    assert (status, "expected e.g. 7d" in err) == (2, True)
    status, _, err = _cli(capsys, "audit", "verify-export", str(root / "missing.json"))
    assert (status, "cannot read" in err) == (2, True)
    status, out, _ = _cli(
        capsys, "audit", "init-key", "--home", str(root), "--key-file", str(root / "new.key")
    )
    assert status == 0
    status, _, err = _cli(
        capsys, "audit", "init-key", "--home", str(root), "--key-file", str(root / "new.key")
    )
    assert (status, "refusing to overwrite" in err) == (2, True)
