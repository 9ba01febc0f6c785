"""Readable text renderings of LEIS responses and refusals, for the ``leis`` commands and the demo."""

from __future__ import annotations

from leis_api.errors import LeisApiError
from leis_api.v1 import federated_search_service_pb2 as fed_pb
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import records_pb2


def _name(name: records_pb2.PersonName) -> str:
    return name.full_name or " ".join(p for p in (name.first_name, name.middle_name, name.last_name) if p)


def _address(address: records_pb2.PostalAddress) -> str:
    street = " ".join(p for p in (address.street_number, address.street_name, address.secondary_unit) if p)
    return ", ".join(
        p for p in (street, address.city, address.state, address.postal_code, address.country) if p
    )


def format_search_response(response: query_pb.SearchResponse) -> str:
    """A readable rendering of a search response: persons, sources, notice."""
    lines = [f"audit reference {response.audit_reference}   trace {response.trace_id}"]
    states = ", ".join(
        f"{records_pb2.SourceSystem.Name(s.source).removeprefix('SOURCE_SYSTEM_')}="
        f"{query_pb.SourceState.Name(s.state).removeprefix('SOURCE_STATE_')}"
        for s in response.source_statuses
    )
    lines.append(f"sources: {states}")
    if not response.persons:
        lines.append("no releasable person matched")
    for person in response.persons:
        sources = ", ".join(
            f"{records_pb2.SourceSystem.Name(r.source).removeprefix('SOURCE_SYSTEM_')}:{r.record_id}"
            for r in person.sources
        )
        lines.append(
            f"- {person.result_id}  {_name(person.name)}  score {person.match_score:.2f}  [{sources}]"
        )
        if person.date_of_birth:
            lines.append(f"    date of birth: {person.date_of_birth}")
        for address in person.addresses:
            lines.append(f"    address: {_address(address)}")
        phys = person.physical_description
        if phys.height_inches or phys.weight_pounds or phys.eye_color or phys.hair_color:
            lines.append(
                f"    height {phys.height_inches} in, weight {phys.weight_pounds} lb, "
                f"eyes {phys.eye_color or '?'}, hair {phys.hair_color or '?'}"
            )
        if person.country_of_birth or person.place_of_birth:
            lines.append(
                f"    born: {', '.join(p for p in (person.place_of_birth, person.country_of_birth) if p)}"
            )
        for ident in person.matched_identifiers:
            kind = records_pb2.IdentifierType.Name(ident.type).removeprefix("IDENTIFIER_TYPE_")
            lines.append(f"    matched identifier: {kind} {ident.value}")
        if person.booking_photos:
            lines.append(f"    booking photos: {len(person.booking_photos)}")
        lines.append(f"    matched on: {', '.join(person.matched_fields)}")
    if response.narrow_query_required:
        lines.append("more persons matched than may be returned: narrow the query")
    notice = response.notice
    lines.append(notice.obtained_via)
    lines.append(f"LESC: {notice.lesc_instruction}")
    lines.extend(f"caveat: {text}" for text in notice.caveat_texts)
    return "\n".join(lines)


def format_federated_response(response: fed_pb.FederatedSearchServiceSearchResponse) -> str:
    """Per-partner statuses and records, readably."""
    lines = [f"audit reference {response.audit_reference}   trace {response.trace_id}"]
    for partner in response.partners:
        state = fed_pb.PartnerState.Name(partner.state).removeprefix("PARTNER_STATE_")
        lines.append(f"- {partner.agency_name} ({partner.agency_id}): {state}, {partner.latency_ms} ms")
        for record in partner.records:
            kind = records_pb2.PartnerRecordType.Name(record.record_type).removeprefix("PARTNER_RECORD_TYPE_")
            name = record.name.full_name or f"{record.name.first_name} {record.name.last_name}".strip()
            when = record.event_time.ToDatetime().date().isoformat() if record.HasField("event_time") else "?"
            lines.append(
                f"    {kind:<8} {record.record_id}  {name}  dob {record.date_of_birth or '?'}  "
                f"{when}  {record.offense}  (ORI {record.owning_ori}, score {record.match_score:.2f})"
            )
    lines.append("Partner records are displayed only; LEIS stores none of them.")
    return "\n".join(lines)


def format_refusal(error: LeisApiError) -> str:
    """A refusal: status, reason and message, then each field violation and the retry delay."""
    lines = [f"refused: {error.code.name} {error.reason_name}: {error.message}"]
    lines.extend(f"  field {v.field}: {v.description}" for v in error.field_violations)
    if error.retry_delay is not None:
        lines.append(f"  retry after {error.retry_delay.total_seconds():.1f} s")
    return "\n".join(lines)
