"""Which data item a caller may fetch again: the audit log's word on what it was disclosed (R-RET-1).

A data item id is ``<audit reference>/<result id>``: the ``QUERY_RECEIVED`` event of a
``Search`` and the person it answered with. Nothing disclosed is kept to serve it again; the
audit log already records, for that search, the end user and agency who asked, what they
asked (the ``QUERY_RECEIVED`` content) and which source records made up each released person
(the ``RESPONSE_SENT`` content). An item is fetchable when that search was made by the same
agency and end user within the configured window and its response released that person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError

from leis.audit import AuditLog, EventRow, SearchFilter
from leis.audit.store import Cursor
from leis.common.errors import DATA_ITEM_NOT_DISCLOSED, InvalidArgument, NotFound
from leis.rules.validation import validate_search
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import subject_pb2

SEARCH_METHOD = "/leis.v1.QueryService/Search"
_PAGE = 200


@dataclass(frozen=True)
class DisclosedItem:
    """One person a search released: its source records and the subject that search asked."""

    record_ids: tuple[str, ...]
    subject: subject_pb2.SubjectQuery


def not_disclosed() -> NotFound:
    """The one refusal for every item that cannot be fetched: it says nothing of which check failed."""
    return NotFound(
        DATA_ITEM_NOT_DISCLOSED,
        "no such data item was disclosed to this end user of this agency within the retrieval window",
    )


class DisclosedItems:
    """Looks data items up in the audit log, for one agency's end user, within ``window``."""

    def __init__(
        self,
        audit_log: AuditLog,
        window: timedelta,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._log = audit_log
        self._window = window
        self._now = now

    async def find(self, data_item_id: str, *, agency_id: str, user_id: str) -> DisclosedItem:
        """The disclosed item, or ``NotFound`` (``DATA_ITEM_NOT_DISCLOSED``)."""
        reference, _, result_id = data_item_id.partition("/")
        earliest_us = int((self._now() - self._window).timestamp() * 1_000_000)
        opened = await self._log.get_event(reference)
        if opened is None:
            raise not_disclosed()
        asked, asked_content = opened
        if (
            asked.event_type != "QUERY_RECEIVED"
            or asked.method != SEARCH_METHOD
            or asked.agency_id != agency_id
            or asked.user_id != user_id
            or asked.event_time_us < earliest_us
        ):
            raise not_disclosed()
        sent = await self._response_to(asked)
        if sent is None:
            raise not_disclosed()
        found = await self._log.get_event(sent.event_id)
        persons: list[dict[str, Any]] = found[1].get("persons", []) if found is not None else []
        record_ids: list[str] = next(
            (p.get("record_ids", []) for p in persons if p.get("result_id") == result_id), []
        )
        if not record_ids:
            raise not_disclosed()
        return DisclosedItem(tuple(str(r) for r in record_ids), _subject(asked_content))

    async def _response_to(self, asked: EventRow) -> EventRow | None:
        """The ``RESPONSE_SENT`` event closing ``asked`` (same agency and user, recorded after it)."""
        filters = SearchFilter(
            user_id=asked.user_id,
            agency_id=asked.agency_id,
            event_type="RESPONSE_SENT",
            start_us=asked.event_time_us,
        )
        after: Cursor | None = None
        while True:
            rows = await self._log.search(filters, after, _PAGE)
            for row in rows:
                if row.parent_event_id == asked.event_id:
                    return row
            if len(rows) < _PAGE:
                return None
            last = rows[-1]
            after = Cursor(last.event_time_us, last.chain_id, last.seq)


def _subject(content: dict[str, Any]) -> subject_pb2.SubjectQuery:
    """The subject the disclosing search asked, as validation normalised it then."""
    request = query_pb.SearchRequest()
    try:
        ParseDict(content.get("request", {}), request, ignore_unknown_fields=True)
        return validate_search(request).subject
    except (ParseError, InvalidArgument) as error:
        raise not_disclosed() from error
