"""Requests whose bytes do not parse: refused INVALID_ARGUMENT on every method (R-Q-4).

gRPC answers UNKNOWN when a deserializer raises, before any interceptor runs:
nothing would be audited and the caller would get no reason. Every service the
broker serves (LEIS, health, reflection) is registered through ``service_handler``,
whose lenient deserializer hands on a ``MalformedRequest`` stand-in instead. On the
LEIS services audit records it and policy refuses it; health and reflection, which
bypass the chain, refuse it in their handler (each message of a stream included).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from leis.broker.chain._base import bypasses_chain
from leis.common.errors import MALFORMED_REQUEST, FieldViolation, InvalidArgument, abort


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request whose bytes do not parse, so the call can be refused."""

    message_type: str
    data: bytes

    def refusal(self) -> InvalidArgument:
        """The INVALID_ARGUMENT ``MALFORMED_REQUEST`` this request is refused with."""
        return InvalidArgument(
            MALFORMED_REQUEST,
            f"the request is not a valid {self.message_type} message",
            violations=[FieldViolation("request", "the bytes do not parse as the request message")],
        )


def lenient_deserializer(message_type: type[Message]) -> Callable[[bytes], Message | MalformedRequest]:
    """Parse a request, or hand on a ``MalformedRequest`` instead of failing in gRPC core."""

    def parse(data: bytes) -> Message | MalformedRequest:
        try:
            return message_type.FromString(data)
        except DecodeError:
            return MalformedRequest(message_type.DESCRIPTOR.full_name, data)

    return parse


def service_handler(servicer: object, service: ServiceDescriptor) -> grpc.GenericRpcHandler[Any, Any]:
    """The servicer's unary, server-streaming and bidirectional methods, with lenient request parsing."""
    handlers = {method.name: _method_handler(servicer, service, method) for method in service.methods}
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _method_handler(
    servicer: object, service: ServiceDescriptor, method: MethodDescriptor
) -> grpc.RpcMethodHandler[Any, Any]:
    behaviour = getattr(servicer, method.name)
    parse = lenient_deserializer(GetMessageClass(method.input_type))
    serialize = GetMessageClass(method.output_type).SerializeToString
    # The chain refuses malformed requests to its methods (audited); the rest refuse them here.
    refuses_itself = bypasses_chain(f"/{service.full_name}/{method.name}")
    if method.client_streaming:
        if not method.server_streaming:
            raise ValueError(f"client-streaming method {method.full_name} is not served")
        if refuses_itself:
            behaviour = _refusing_stream(behaviour)
        return grpc.stream_stream_rpc_method_handler(behaviour, parse, serialize)
    if method.server_streaming:
        if refuses_itself:
            behaviour = _refusing_unary_stream(behaviour)
        return grpc.unary_stream_rpc_method_handler(behaviour, parse, serialize)
    if refuses_itself:
        behaviour = _refusing_unary(behaviour)
    return grpc.unary_unary_rpc_method_handler(behaviour, parse, serialize)


Behaviour = Callable[..., Any]


# Messages of a refused stream read (and dropped) before the refusal is sent, so the client is
# not still writing when the call ends (an asyncio client then reports INTERNAL, not the refusal).
_DRAINED_MESSAGES = 100


async def _checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, MalformedRequest):
            drained = 0
            async for _ in requests:
                drained += 1
                if drained >= _DRAINED_MESSAGES:
                    break
            await abort(context, request.refusal())
        yield request


def _refusing_unary(behaviour: Behaviour) -> Behaviour:
    async def handle(request: Any, context: Any) -> Any:
        if isinstance(request, MalformedRequest):
            await abort(context, request.refusal())
        return await behaviour(request, context)

    return handle


def _refusing_unary_stream(behaviour: Behaviour) -> Behaviour:
    async def handle(request: Any, context: Any) -> AsyncIterator[Any]:
        if isinstance(request, MalformedRequest):
            await abort(context, request.refusal())
        async for response in behaviour(request, context):
            yield response

    return handle


def _refusing_stream(behaviour: Behaviour) -> Behaviour:
    async def handle(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for response in behaviour(_checked(requests, context), context):
            yield response

    return handle
