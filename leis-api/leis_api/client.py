"""A small LEIS client for partner systems and DHS analysts, blocking (``LeisClient``) and asyncio
(``AsyncLeisClient``).

Mutual TLS with the caller's client certificate; one subject and one stated purpose per
call; the end user's id and ORI in the request (R-ID-3). A refusal raises the typed
exception of ``leis_api.errors`` (``PermissionDenied``, ``InvalidArgument``…), chained to the
``grpc.RpcError`` it came from::

    async with AsyncLeisClient("localhost:7051", ca="ca.crt", cert="agency-ndex.crt",
                               key="agency-ndex.key") as client:
        response = await client.search(
            SubjectQuery(name=NameCriteria(first_name="Ana", last_name="Ruiz")),
            purpose=PURPOSE_CRIMINAL_LAW_ENFORCEMENT, user_id="det.smith", ori="CA0194200",
        )

``search`` and ``capabilities`` call ``leis.v1.QueryService`` (partners);
``federated_search`` calls ``leis.v1.FederatedSearchService`` (DHS analysts, R-OUT-1).
Each method takes a ``deadline`` in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc

from leis_api.errors import from_rpc_error
from leis_api.v1 import federated_search_service_pb2 as fed_pb
from leis_api.v1 import federated_search_service_pb2_grpc as fed_grpc
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2

PemSource = bytes | str | os.PathLike[str]
"""PEM contents (``bytes``) or the path of a PEM file."""

SEARCH_TIMEOUT_SECONDS = 10.0
FEDERATED_TIMEOUT_SECONDS = 15.0


def _pem(source: PemSource) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def _credentials(ca: PemSource, cert: PemSource, key: PemSource) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(ca), private_key=_pem(key), certificate_chain=_pem(cert)
    )


def _search_request(
    subject: subject_pb2.SubjectQuery,
    *,
    purpose: subject_pb2.Purpose.ValueType,
    user_id: str,
    ori: str,
    client_request_id: str = "",
) -> query_pb.SearchRequest:
    """The ``QueryService.Search`` request for one subject, purpose and end user."""
    return query_pb.SearchRequest(
        subject=subject,
        purpose=purpose,
        end_user=subject_pb2.EndUser(user_id=user_id, ori=ori),
        client_request_id=client_request_id,
    )


def _federated_search_request(
    subject: subject_pb2.SubjectQuery, *, purpose: subject_pb2.Purpose.ValueType, user_id: str, ori: str
) -> fed_pb.FederatedSearchServiceSearchRequest:
    """The ``FederatedSearchService.Search`` request for one subject, purpose and analyst."""
    return fed_pb.FederatedSearchServiceSearchRequest(
        subject=subject, purpose=purpose, end_user=subject_pb2.EndUser(user_id=user_id, ori=ori)
    )


class LeisClient:
    """A blocking LEIS client over mutual TLS; closes its channel on ``close`` or ``with`` exit."""

    def __init__(
        self,
        endpoint: str,
        *,
        ca: PemSource,
        cert: PemSource,
        key: PemSource,
        options: tuple[tuple[str, str | int], ...] = (),
    ) -> None:
        self._channel = grpc.secure_channel(endpoint, _credentials(ca, cert, key), options=options)
        self._query = query_grpc.QueryServiceStub(self._channel)
        self._federated = fed_grpc.FederatedSearchServiceStub(self._channel)

    def search(
        self,
        subject: subject_pb2.SubjectQuery,
        *,
        purpose: subject_pb2.Purpose.ValueType,
        user_id: str,
        ori: str,
        client_request_id: str = "",
        deadline: float = SEARCH_TIMEOUT_SECONDS,
    ) -> query_pb.SearchResponse:
        """Search DHS sources for one subject (R-Q-1); raises ``LeisApiError`` on refusal."""
        request = _search_request(
            subject, purpose=purpose, user_id=user_id, ori=ori, client_request_id=client_request_id
        )
        try:
            return self._query.Search(request, timeout=deadline)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def capabilities(self, *, deadline: float = SEARCH_TIMEOUT_SECONDS) -> query_pb.GetCapabilitiesResponse:
        """What the caller's agreement allows, and which sources are up (R-Q-8)."""
        try:
            return self._query.GetCapabilities(query_pb.GetCapabilitiesRequest(), timeout=deadline)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def federated_search(
        self,
        subject: subject_pb2.SubjectQuery,
        *,
        purpose: subject_pb2.Purpose.ValueType,
        user_id: str,
        ori: str,
        deadline: float = FEDERATED_TIMEOUT_SECONDS,
    ) -> fed_pb.FederatedSearchServiceSearchResponse:
        """Search every two-way partner for one subject (analysts, R-OUT-1); raises on refusal."""
        request = _federated_search_request(subject, purpose=purpose, user_id=user_id, ori=ori)
        try:
            return self._federated.Search(request, timeout=deadline)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncLeisClient:
    """An asyncio LEIS client over mutual TLS; closes its channel on ``close`` or ``async with`` exit."""

    def __init__(
        self,
        endpoint: str,
        *,
        ca: PemSource,
        cert: PemSource,
        key: PemSource,
        options: tuple[tuple[str, str | int], ...] = (),
    ) -> None:
        self._channel = grpc.aio.secure_channel(endpoint, _credentials(ca, cert, key), options=options)
        self._query = query_grpc.QueryServiceStub(self._channel)
        self._federated = fed_grpc.FederatedSearchServiceStub(self._channel)

    async def search(
        self,
        subject: subject_pb2.SubjectQuery,
        *,
        purpose: subject_pb2.Purpose.ValueType,
        user_id: str,
        ori: str,
        client_request_id: str = "",
        deadline: float = SEARCH_TIMEOUT_SECONDS,
    ) -> query_pb.SearchResponse:
        """Search DHS sources for one subject (R-Q-1); raises ``LeisApiError`` on refusal."""
        request = _search_request(
            subject, purpose=purpose, user_id=user_id, ori=ori, client_request_id=client_request_id
        )
        try:
            return await self._query.Search(request, timeout=deadline)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def capabilities(
        self, *, deadline: float = SEARCH_TIMEOUT_SECONDS
    ) -> query_pb.GetCapabilitiesResponse:
        """What the caller's agreement allows, and which sources are up (R-Q-8)."""
        try:
            return await self._query.GetCapabilities(query_pb.GetCapabilitiesRequest(), timeout=deadline)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def federated_search(
        self,
        subject: subject_pb2.SubjectQuery,
        *,
        purpose: subject_pb2.Purpose.ValueType,
        user_id: str,
        ori: str,
        deadline: float = FEDERATED_TIMEOUT_SECONDS,
    ) -> fed_pb.FederatedSearchServiceSearchResponse:
        """Search every two-way partner for one subject (analysts, R-OUT-1); raises on refusal."""
        request = _federated_search_request(subject, purpose=purpose, user_id=user_id, ori=ori)
        try:
            return await self._federated.Search(request, timeout=deadline)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


__all__ = [
    "FEDERATED_TIMEOUT_SECONDS",
    "SEARCH_TIMEOUT_SECONDS",
    "AsyncLeisClient",
    "LeisClient",
    "PemSource",
]
