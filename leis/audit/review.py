"""The weekly review of unusual use (R-AUD-6), per agency and per user, as JSON and readable text.

Built from metadata only. A *request* is the closing event of a call
(RESPONSE_SENT or REFUSED). Per user and per agency: volume, off-hours requests
(before 07:00, from 19:00, or at weekends in the review time zone), refusals by
reason, rate-limit hits, the longest run of answered requests that disclosed
nothing (no-hit streak, a sign of fishing), and the volume against the user's own
weekly history (outlier when above mean + 3 standard deviations and twice the
mean). Auditors' content reads (AUDIT_READ) are listed too.

One pass over the period's events, holding tallies only: memory grows with the
number of agencies and users, never with the number of events. A report can be
cut into pages of agencies (``after_agency``, ``max_agencies``): the pass then
keeps tallies for the first ``max_agencies`` agencies after the cursor only.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from leis.audit.model import EventRow, utc_from_us
from leis.audit.store import AuditStore

WEEK_US = 7 * 86_400 * 1_000_000
REQUEST_TYPES = frozenset({"RESPONSE_SENT", "REFUSED"})
UNIDENTIFIED = "(unidentified)"


@dataclass(frozen=True)
class ReviewThresholds:
    """When a figure is flagged."""

    off_hours_min: int = 5
    off_hours_share: float = 0.25
    refusals_min: int = 5
    refusal_share: float = 0.2
    no_hit_streak: int = 10
    history_weeks: int = 8
    outlier_min_requests: int = 20
    work_start_hour: int = 7
    work_end_hour: int = 19


@dataclass(slots=True)
class _Tally:
    requests: int = 0
    answered: int = 0
    refused: int = 0
    off_hours: int = 0
    rate_limited: int = 0
    disclosed: int = 0
    refusal_reasons: Counter[str] = field(default_factory=Counter)
    streak: int = 0
    longest_no_hit: int = 0

    def add(self, event: EventRow, off_hours: bool) -> None:
        self.requests += 1
        self.off_hours += off_hours
        if event.event_type == "REFUSED":
            self.refused += 1
            self.refusal_reasons[event.reason or event.status_code or "UNKNOWN"] += 1
            if event.status_code == "RESOURCE_EXHAUSTED":
                self.rate_limited += 1
            return
        self.answered += 1
        self.disclosed += event.disclosed_count
        if event.disclosed_count == 0:
            self.streak += 1
            self.longest_no_hit = max(self.longest_no_hit, self.streak)
        else:
            self.streak = 0


def _flags(tally: _Tally, history: list[int], weeks: float, limits: ReviewThresholds) -> list[str]:
    flags = []
    if tally.off_hours >= limits.off_hours_min and tally.off_hours >= limits.off_hours_share * tally.requests:
        flags.append("OFF_HOURS")
    if tally.refused >= limits.refusals_min and tally.refused >= limits.refusal_share * tally.requests:
        flags.append("REFUSALS")
    if tally.rate_limited:
        flags.append("RATE_LIMITED")
    if tally.longest_no_hit >= limits.no_hit_streak:
        flags.append("NO_HIT_STREAK")
    weekly = tally.requests / weeks if weeks > 0 else float(tally.requests)
    active = [w for w in history if w]
    if not active:
        if tally.requests >= limits.outlier_min_requests:
            flags.append("NO_HISTORY")
    else:
        mean = statistics.fmean(history)
        spread = statistics.pstdev(history)
        if weekly >= limits.outlier_min_requests and weekly > mean + 3 * spread and weekly > 2 * mean:
            flags.append("VOLUME_OUTLIER")
    return flags


def _summary(tally: _Tally, history: list[int], weeks: float, limits: ReviewThresholds) -> dict[str, Any]:
    return {
        "requests": tally.requests,
        "answered": tally.answered,
        "refused": tally.refused,
        "refusal_reasons": dict(sorted(tally.refusal_reasons.items())),
        "rate_limit_hits": tally.rate_limited,
        "off_hours": tally.off_hours,
        "records_disclosed": tally.disclosed,
        "longest_no_hit_streak": tally.longest_no_hit,
        "history_weekly_mean": round(statistics.fmean(history), 2) if history else 0.0,
        "flags": _flags(tally, history, weeks, limits),
    }


def build_report(
    store: AuditStore,
    start_us: int,
    end_us: int,
    *,
    timezone: str = "UTC",
    limits: ReviewThresholds | None = None,
) -> dict[str, Any]:
    """The review of ``[start_us, end_us)`` as a JSON-ready dict (blocking)."""
    report, _ = build_report_page(store, start_us, end_us, timezone=timezone, limits=limits)
    return report


def build_report_page(  # noqa: PLR0915 - one pass over the events, kept in one frame
    store: AuditStore,
    start_us: int,
    end_us: int,
    *,
    timezone: str = "UTC",
    limits: ReviewThresholds | None = None,
    after_agency: str | None = None,
    max_agencies: int | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The review of the agencies after ``after_agency`` (at most ``max_agencies``), and the last
    agency of the page when more follow (else None). Event totals and content reads cover all."""
    limits = limits or ReviewThresholds()
    ceiling: str | None = None  # agencies from here on belong to a later page
    zone = ZoneInfo(timezone)
    history_start = start_us - limits.history_weeks * WEEK_US
    users: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    agencies: dict[str, _Tally] = defaultdict(_Tally)
    user_history: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * limits.history_weeks)
    agency_history: dict[str, list[int]] = defaultdict(lambda: [0] * limits.history_weeks)
    reads: Counter[str] = Counter()
    totals: Counter[str] = Counter()

    def on_page(agency: str) -> bool:
        nonlocal ceiling
        if (after_agency is not None and agency <= after_agency) or (
            ceiling is not None and agency >= ceiling
        ):
            return False
        if max_agencies is None or agency in agencies or agency in agency_history:
            return True
        known = agencies.keys() | agency_history.keys()
        if len(known) < max_agencies:
            return True
        evict = max(known | {agency})
        ceiling = evict
        if evict == agency:
            return False
        agencies.pop(evict, None)
        agency_history.pop(evict, None)
        for key in [k for k in users if k[0] == evict]:
            del users[key]
        for key in [k for k in user_history if k[0] == evict]:
            del user_history[key]
        return True

    for event in store.scan(history_start, end_us):
        if event.event_time_us < start_us:
            if event.event_type in REQUEST_TYPES:
                week = (event.event_time_us - history_start) // WEEK_US
                agency = event.agency_id or UNIDENTIFIED
                if not on_page(agency):
                    continue
                user_history[(agency, event.user_id)][week] += 1
                agency_history[agency][week] += 1
            continue
        totals[event.event_type] += 1
        if event.event_type == "AUDIT_READ":
            reads[event.cert_fingerprint or UNIDENTIFIED] += 1
        if event.event_type not in REQUEST_TYPES:
            continue
        agency = event.agency_id or UNIDENTIFIED
        if not on_page(agency):
            continue
        local = datetime.fromtimestamp(event.event_time_us / 1e6, tz=zone)
        off = local.weekday() >= 5 or not limits.work_start_hour <= local.hour < limits.work_end_hour
        users[(agency, event.user_id)].add(event, off)
        agencies[agency].add(event, off)
    weeks = (end_us - start_us) / WEEK_US
    per_agency: dict[str, Any] = {}
    for agency in sorted(agencies):
        entry = _summary(agencies[agency], agency_history.get(agency, []), weeks, limits)
        entry["users"] = {
            user: _summary(tally, user_history.get((agency, user), []), weeks, limits)
            for (owner, user), tally in sorted(users.items())
            if owner == agency
        }
        per_agency[agency] = entry
    flagged = [
        {"agency_id": agency, "user_id": user, "flags": info["flags"]}
        for agency, entry in per_agency.items()
        for user, info in entry["users"].items()
        if info["flags"]
    ]
    report = {
        "period": {
            "start": utc_from_us(start_us).isoformat(),
            "end": utc_from_us(end_us).isoformat(),
            "timezone": timezone,
            "history_weeks": limits.history_weeks,
        },
        "events_by_type": dict(sorted(totals.items())),
        "agencies": per_agency,
        "flagged_users": flagged,
        "content_reads_by_certificate": dict(sorted(reads.items())),
    }
    kept = agencies.keys() | agency_history.keys()
    return report, (max(kept) if ceiling is not None and kept else None)


def render_text(report: dict[str, Any]) -> str:
    """The report as a security officer reads it."""
    period = report["period"]
    lines = [
        f"LEIS audit review {period['start']} .. {period['end']} ({period['timezone']})",
        "",
        "Events: " + (", ".join(f"{k} {v}" for k, v in report["events_by_type"].items()) or "none"),
        "",
    ]
    flagged = report["flagged_users"]
    lines.append(f"Flagged users: {len(flagged)}")
    lines.extend(
        f"  ! {f['agency_id']} / {f['user_id'] or '(none)'}: {', '.join(f['flags'])}" for f in flagged
    )
    lines.append("")
    columns = ("req", "refused", "ratelim", "offhrs", "nohit", "hist/wk")
    header = f"  {'user':<24} " + " ".join(f"{c:>7}" for c in columns) + "  flags"
    for agency, entry in report["agencies"].items():
        lines.append(
            f"Agency {agency}: {entry['requests']} requests, {entry['refused']} refused, "
            f"{entry['rate_limit_hits']} rate-limited, {entry['off_hours']} off-hours, "
            f"{entry['records_disclosed']} records disclosed"
            + (f"  [{', '.join(entry['flags'])}]" if entry["flags"] else "")
        )
        if entry["refusal_reasons"]:
            reasons = ", ".join(f"{k} {v}" for k, v in entry["refusal_reasons"].items())
            lines.append(f"  refusals: {reasons}")
        lines.append(header)
        for user, info in entry["users"].items():
            lines.append(
                f"  {(user or '(none)')[:24]:<24} {info['requests']:>7} {info['refused']:>7} "
                f"{info['rate_limit_hits']:>7} {info['off_hours']:>7} {info['longest_no_hit_streak']:>7} "
                f"{info['history_weekly_mean']:>7}  {', '.join(info['flags'])}"
            )
        lines.append("")
    reads = report["content_reads_by_certificate"]
    lines.append(f"Content reads by auditors: {sum(reads.values())}")
    lines.extend(f"  {fingerprint[:16]}…: {count}" for fingerprint, count in reads.items())
    return "\n".join(lines) + "\n"


def parse_since(text: str, now: datetime) -> datetime:
    """``7d`` / ``12h`` / ``2w`` before ``now``, or an ISO-8601 date or time (UTC when naive)."""
    units = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
    if text[-1:] in units and text[:-1].isdigit():
        return now - int(text[:-1]) * units[text[-1]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r}: expected e.g. 7d, 12h, 2w or an ISO date") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
