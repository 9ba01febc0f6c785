"""Requests whose bytes do not parse reach the chain as a ``MalformedRequest`` (R-Q-4).

gRPC answers UNKNOWN when a deserializer raises, before any interceptor runs:
nothing would be audited and the caller would get no reason. The lenient
deserializer hands the chain a stand-in instead, which audit records and policy
refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request whose bytes do not parse, so the chain can refuse it."""

    message_type: str


def lenient_deserializer(message_type: type[Message]) -> Callable[[bytes], Message | MalformedRequest]:
    """Parse a request, or hand the chain a ``MalformedRequest`` instead of failing in gRPC core."""

    def parse(data: bytes) -> Message | MalformedRequest:
        try:
            return message_type.FromString(data)
        except DecodeError:
            return MalformedRequest(message_type.DESCRIPTOR.full_name)

    return parse
