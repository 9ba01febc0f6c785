"""A partner Information Sharing Service calling LEIS — the code a partner engineer would copy.

Mutual TLS with the partner's client certificate; one subject and one stated
purpose per call; the end user's id and ORI in the request (R-ID-3). Refusals
arrive as ``grpc.RpcError`` whose rich details ``leis.errors.details_of`` decodes.

    client = PartnerClient.from_files("localhost:7051", "ca.crt", "agency-ndex.crt", "agency-ndex.key")
    response = client.search(
        subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz")),
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        user_id="det.smith",
        ori="CA0194200",
    )
"""

from __future__ import annotations

from pathlib import Path

import grpc

from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import records_pb2, subject_pb2


class PartnerClient:
    """A blocking client of ``leis.v1.QueryService`` over mutual TLS."""

    def __init__(
        self, address: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, timeout_seconds: float = 10.0
    ) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
        )
        self._channel = grpc.secure_channel(address, credentials)
        self._stub = query_grpc.QueryServiceStub(self._channel)
        self._timeout = timeout_seconds

    @classmethod
    def from_files(cls, address: str, ca: Path | str, cert: Path | str, key: Path | str) -> PartnerClient:
        """Build a client from PEM files."""
        return cls(address, Path(ca).read_bytes(), Path(cert).read_bytes(), Path(key).read_bytes())

    def search(
        self,
        subject: subject_pb2.SubjectQuery,
        *,
        purpose: subject_pb2.Purpose,
        user_id: str,
        ori: str,
        client_request_id: str = "",
    ) -> query_pb.SearchResponse:
        """Search DHS sources for one subject; raises ``grpc.RpcError`` on refusal."""
        request = query_pb.SearchRequest(
            subject=subject,
            purpose=purpose,
            end_user=subject_pb2.EndUser(user_id=user_id, ori=ori),
            client_request_id=client_request_id,
        )
        response: query_pb.SearchResponse = self._stub.Search(request, timeout=self._timeout)
        return response

    def capabilities(self) -> query_pb.GetCapabilitiesResponse:
        """What this partner's agreement allows, and which sources are up (R-Q-8)."""
        response: query_pb.GetCapabilitiesResponse = self._stub.GetCapabilities(
            query_pb.GetCapabilitiesRequest(), timeout=self._timeout
        )
        return response

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> PartnerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
