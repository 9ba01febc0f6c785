"""A DHS analyst system (AFI) searching the two-way partners through LEIS (R-OUT-1, R-OUT-2).

client = AnalystClient.from_files("localhost:7051", "ca.crt", "dhs-analyst.crt", "dhs-analyst.key")
response = client.search(subject, purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
                         user_id="analyst.jones", ori="DCICE0000")
print(format_federated_response(response))
"""

from __future__ import annotations

from pathlib import Path

import grpc

from leis_api.v1 import federated_search_service_pb2 as fed_pb
from leis_api.v1 import federated_search_service_pb2_grpc as fed_grpc
from leis_api.v1 import records_pb2, subject_pb2


class AnalystClient:
    """A blocking client of ``leis.v1.FederatedSearchService`` over mutual TLS."""

    def __init__(
        self, address: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, timeout_seconds: float = 15.0
    ) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
        )
        self._channel = grpc.secure_channel(address, credentials)
        self._stub = fed_grpc.FederatedSearchServiceStub(self._channel)
        self._timeout = timeout_seconds

    @classmethod
    def from_files(cls, address: str, ca: Path | str, cert: Path | str, key: Path | str) -> AnalystClient:
        """Build a client from PEM files."""
        return cls(address, Path(ca).read_bytes(), Path(cert).read_bytes(), Path(key).read_bytes())

    def search(
        self,
        subject: subject_pb2.SubjectQuery,
        *,
        purpose: subject_pb2.Purpose,
        user_id: str,
        ori: str,
    ) -> fed_pb.FederatedSearchServiceSearchResponse:
        """Search every two-way partner for one subject; raises ``grpc.RpcError`` on refusal."""
        request = fed_pb.FederatedSearchServiceSearchRequest(
            subject=subject, purpose=purpose, end_user=subject_pb2.EndUser(user_id=user_id, ori=ori)
        )
        response: fed_pb.FederatedSearchServiceSearchResponse = self._stub.Search(
            request, timeout=self._timeout
        )
        return response

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> AnalystClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
