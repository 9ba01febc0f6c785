"""Run the broker's one chain for a call that arrived by another transport (LEXS-SR over HTTPS).

The gRPC server runs its interceptors around each handler; ``DirectChain`` runs the very same
interceptor instances, in the same order, around the same handler, with a stand-in for the
gRPC servicer context that carries the caller's verified certificate and trace headers. So a
LEXS search is traced, recorded, identified, validated, rate-limited, released and merged by
the code that serves gRPC ``Search``: no rule exists twice (R-EDGE-1).

The chain ends a refused call by aborting its context with a ``google.rpc.Status``; here that
abort raises ``ChainAborted`` and ``run`` gives the caller back the domain error (same reason,
field violations and retry delay) to render in its own wire format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_interceptor.server import AsyncServerInterceptor

from leis.broker.chain.policy import PolicyInterceptor
from leis.common import errors

Handler = Callable[[Any, Any], Awaitable[Message]]
# Every domain error class by the status it carries, to rebuild what the chain aborted with.
_ERRORS: dict[grpc.StatusCode, type[errors.LeisError]] = {
    cls.code: cls
    for cls in (
        errors.InvalidArgument,
        errors.Unauthenticated,
        errors.PermissionDenied,
        errors.ResourceExhausted,
        errors.Unavailable,
        errors.NotFound,
        errors.FailedPrecondition,
        errors.Unimplemented,
    )
}
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ChainAborted(Exception):
    """The chain aborted the call (raised by the stand-in context, caught by ``DirectChain.run``)."""

    def __init__(self, error: errors.LeisError) -> None:
        super().__init__(error.message)
        self.error = error


class DirectContext:
    """The part of ``grpc.aio.ServicerContext`` the chain uses, for a call from another transport."""

    def __init__(self, peer_pem: bytes | None, metadata: Sequence[tuple[str, str]], peer: str) -> None:
        self._auth = {"x509_pem_cert": [peer_pem]} if peer_pem else {}
        self._metadata = tuple(metadata)
        self._peer = peer
        self._code: grpc.StatusCode | None = None
        self._trailing: tuple[tuple[str, str | bytes], ...] = ()

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def time_remaining(self) -> float | None:
        """No caller deadline crosses this transport: the sources' own deadlines bound the call."""
        return None

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self._trailing = tuple(metadata)

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Sequence[tuple[str, str | bytes]] = (),
    ) -> NoReturn:
        self._code = code
        self._trailing = tuple(trailing_metadata)
        raise ChainAborted(_error_of(code, details, self._trailing))


def _error_of(
    code: grpc.StatusCode, message: str, trailing: Sequence[tuple[str, str | bytes]]
) -> errors.LeisError:
    """The domain error a ``google.rpc.Status`` (as built by ``LeisError.to_status``) carries;
    an abort without one (an unexpected failure) is ``INTERNAL_ERROR``."""
    details = dict(trailing).get(STATUS_DETAILS_KEY, b"")
    rich = status_pb2.Status.FromString(details) if isinstance(details, bytes) else status_pb2.Status()
    reason, violations, retry = errors.INTERNAL_ERROR, [], None
    for detail in rich.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [errors.FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            delay = error_details_pb2.RetryInfo()
            detail.Unpack(delay)
            retry = delay.retry_delay.ToNanoseconds() / 1e9
    cls = _ERRORS.get(code, errors.LeisError)
    return cls(reason, rich.message or message, violations=violations, retry_after_seconds=retry)


class DirectChain:
    """The broker's interceptors (the instances the gRPC server uses), runnable around any handler."""

    def __init__(self, interceptors: Sequence[AsyncServerInterceptor]) -> None:
        self._interceptors = tuple(interceptors)
        # A request refused before it is a SearchRequest is recorded and identified, then refused:
        # policy has nothing to judge.
        self._screening = tuple(i for i in interceptors if not isinstance(i, PolicyInterceptor))

    async def run(
        self,
        method: str,
        request: Message,
        handler: Handler,
        *,
        peer_pem: bytes | None,
        metadata: Sequence[tuple[str, str]] = (),
        peer: str = "direct",
    ) -> Message:
        """The handler's response through the whole chain, or the domain error it was refused with."""
        return await self._through(
            self._interceptors, method, request, handler, peer_pem=peer_pem, metadata=metadata, peer=peer
        )

    async def refuse(
        self,
        method: str,
        request: Message,
        error: errors.LeisError,
        *,
        peer_pem: bytes | None,
        metadata: Sequence[tuple[str, str]] = (),
        peer: str = "direct",
    ) -> NoReturn:
        """Record, trace and identify a call the transport already refuses, then refuse it.

        Raises the identity refusal when the caller is not entitled at all, else ``error``.
        """

        async def raise_error(_request: Any, _context: Any) -> NoReturn:
            raise error

        await self._through(
            self._screening, method, request, raise_error, peer_pem=peer_pem, metadata=metadata, peer=peer
        )
        raise RuntimeError("the chain let a refused call through")

    @staticmethod
    async def _through(
        interceptors: Sequence[AsyncServerInterceptor],
        method: str,
        request: Message,
        handler: Handler,
        *,
        peer_pem: bytes | None,
        metadata: Sequence[tuple[str, str]],
        peer: str,
    ) -> Message:
        context = DirectContext(peer_pem, metadata, peer)

        async def step(position: int, message: Any, ctx: Any) -> Any:
            if position == len(interceptors):
                return await handler(message, ctx)
            return await interceptors[position].intercept(
                lambda m, c: step(position + 1, m, c), message, ctx, method
            )

        try:
            response: Message = await step(0, request, context)
        except ChainAborted as aborted:
            raise aborted.error from None
        return response


SEARCH_METHOD = "/leis.v1.QueryService/Search"
CAPABILITIES_METHOD = "/leis.v1.QueryService/GetCapabilities"
DATA_ITEM_METHOD = "/leis.v1.QueryService/GetDataItem"


class QueryPort:
    """``QueryService`` (Search, GetDataItem, GetCapabilities) through the chain, for the LEXS-SR endpoint.

    ``query_service(cap)`` gives the handler that caps results at ``cap`` persons: a LEXS
    caller's ``MaxItemMatches`` below the broker's cap is honoured by the same merge rule
    (R-Q-7), so what the audit log records as disclosed is exactly what is sent.
    """

    def __init__(self, chain: DirectChain, query_service: Callable[[int], Any], max_results: int) -> None:
        self._chain = chain
        self._query_service = query_service
        self.max_results = max_results

    async def search(
        self, request: Message, *, max_results: int, peer_pem: bytes, metadata: Sequence[tuple[str, str]]
    ) -> Any:
        service = self._query_service(min(max_results, self.max_results))
        return await self._chain.run(
            SEARCH_METHOD, request, service.Search, peer_pem=peer_pem, metadata=metadata, peer="lexs-sr"
        )

    async def data_item(
        self, request: Message, *, peer_pem: bytes, metadata: Sequence[tuple[str, str]]
    ) -> Any:
        service = self._query_service(self.max_results)
        return await self._chain.run(
            DATA_ITEM_METHOD,
            request,
            service.GetDataItem,
            peer_pem=peer_pem,
            metadata=metadata,
            peer="lexs-sr",
        )

    async def capabilities(
        self, request: Message, *, peer_pem: bytes, metadata: Sequence[tuple[str, str]]
    ) -> Any:
        service = self._query_service(self.max_results)
        return await self._chain.run(
            CAPABILITIES_METHOD,
            request,
            service.GetCapabilities,
            peer_pem=peer_pem,
            metadata=metadata,
            peer="lexs-sr",
        )

    async def refuse(
        self,
        method: str,
        request: Message,
        error: errors.LeisError,
        *,
        peer_pem: bytes,
        metadata: Sequence[tuple[str, str]],
    ) -> NoReturn:
        await self._chain.refuse(method, request, error, peer_pem=peer_pem, metadata=metadata, peer="lexs-sr")
