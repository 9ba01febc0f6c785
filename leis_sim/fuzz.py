"""A hostile partner: seeded random requests for every method the broker serves (R-Q-4).

Two kinds of request body, for every unary method of every service (LEIS, health):

- random bytes, which may not even parse as the request message;
- random *valid-shaped* messages built from the method's request descriptor, with values
  chosen at the edges: empty, huge, control characters, combining marks, out-of-range
  timestamps and enum numbers, deep nesting and unknown fields.

Reflection is a bidirectional stream and gets random frames the same way. The generator is
pure and seeded, so a failing case can be replayed from its seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2

from leis_api.v1 import audit_service_pb2, federated_search_service_pb2, query_service_pb2

EDGE_STRINGS = (
    "",
    " ",
    "A",
    "Esteban",
    "MONTESINOS",
    "123-45-6789",
    "A123456789",
    "WVFBI9900",
    " wvfbi9900 ",
    "1980-02-30",
    "9999-12-31",
    "e\u0301\u0301\u0301\u0327",
    "\u0000",
    "\ud7ff\ufffe",
    "*",
    "%",
    "..",
    "a,b;c|d/e",
    "x" * 70,
    "y" * 300,
    "z" * 5000,
    "\u202e\u200b",
    "' OR 1=1 --",
    "<x>&amp;</x>",
    "0" * 20,
)
_INTS = (0, 1, -1, 2, 7, 100, 2**31 - 1, -(2**31), 2**62, -(2**62), 2**63 - 1)
_MAX_DEPTH = 4


@dataclass(frozen=True)
class FuzzMethod:
    """One unary method: its full path and request message type."""

    path: str
    request_type: type[Message]


def _service_methods(file_descriptor: FileDescriptor) -> list[FuzzMethod]:
    methods = []
    for service in file_descriptor.services_by_name.values():
        for method in service.methods:
            request = GetMessageClass(method.input_type)
            methods.append(FuzzMethod(f"/{service.full_name}/{method.name}", request))
    return methods


def unary_methods() -> list[FuzzMethod]:
    """Every unary method the broker serves, LEIS services and health alike."""
    methods: list[FuzzMethod] = []
    for module in (query_service_pb2, federated_search_service_pb2, audit_service_pb2):
        methods += _service_methods(module.DESCRIPTOR)
    methods.append(FuzzMethod("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest))
    return methods


class RequestFuzzer:
    """Seeded generator of hostile request bodies."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def random_bytes(self) -> bytes:
        """Arbitrary bytes, sometimes a truncated or corrupted protobuf prefix."""
        rng = self._rng
        size = rng.choice((0, 1, 2, 5, 17, 64, 300, 4096))
        data = bytes(rng.getrandbits(8) for _ in range(size))
        if rng.random() < 0.3 and data:
            # A length-delimited field that claims more bytes than follow.
            data = bytes([0x0A, 0xFF, 0xFF, 0x03]) + data
        return data

    def message(self, message_type: type[Message]) -> bytes:
        """A valid-shaped message of ``message_type`` with edge values, serialized."""
        message = message_type()
        self._fill(message, 0)
        data = message.SerializeToString()
        if self._rng.random() < 0.15:
            # An unknown field (number 999, varint) appended to a valid message.
            data += bytes([0xB8, 0x3E, 0x01])
        return data

    def _fill(self, message: Message, depth: int) -> None:
        rng = self._rng
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        if descriptor.full_name == "google.protobuf.Timestamp":
            message.seconds = rng.choice((0, -1, 253402300800, 2**62, -(2**62), 1_700_000_000))  # type: ignore[attr-defined]
            message.nanos = rng.choice((0, 999_999_999, 1_000_000_000, -1))  # type: ignore[attr-defined]
            return
        if descriptor.full_name == "google.protobuf.Duration":
            message.seconds = rng.choice((0, -1, 315_576_000_001, 2**62))  # type: ignore[attr-defined]
            return
        for field in descriptor.fields:
            if rng.random() < 0.5:
                continue
            if field.is_repeated:
                for _ in range(rng.choice((1, 2, 3, 40))):
                    self._add(message, field, depth)
            else:
                self._set(message, field, depth)

    def _value(self, field: FieldDescriptor) -> object:
        rng = self._rng
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return rng.choice(EDGE_STRINGS)
        if kind == FieldDescriptor.TYPE_BYTES:
            return bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 3, 100))))
        if kind == FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if kind == FieldDescriptor.TYPE_ENUM:
            enum_type = field.enum_type
            assert enum_type is not None  # an enum field names its enum
            numbers = [v.number for v in enum_type.values]
            return rng.choice([*numbers, 0, 99, -5])
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return rng.choice((0.0, -1.0, 1e308, float("nan"), float("inf")))
        value = rng.choice(_INTS)
        unsigned = kind in (
            FieldDescriptor.TYPE_UINT32,
            FieldDescriptor.TYPE_UINT64,
            FieldDescriptor.TYPE_FIXED32,
            FieldDescriptor.TYPE_FIXED64,
        )
        bits = 64 if kind in _WIDE else 32
        if unsigned:
            return abs(value) % (2**bits)
        limit = 2 ** (bits - 1)
        return max(-limit, min(limit - 1, value))

    def _set(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < _MAX_DEPTH:
                self._fill(getattr(message, field.name), depth + 1)
            return
        setattr(message, field.name, self._value(field))

    def _add(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        container = getattr(message, field.name)
        entry = field.message_type
        if entry is not None:
            if entry.GetOptions().map_entry:
                key = self._value(entry.fields_by_name["key"])
                value_field = entry.fields_by_name["value"]
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    self._fill(container[key], depth + 1)
                else:
                    container[key] = self._value(value_field)
            elif depth < _MAX_DEPTH:
                self._fill(container.add(), depth + 1)
            return
        container.append(self._value(field))

    def bodies(self, method: FuzzMethod, count: int) -> Iterator[bytes]:
        """``count`` bodies for ``method``: a third random bytes, the rest valid-shaped."""
        for _ in range(count):
            if self._rng.random() < 0.33:
                yield self.random_bytes()
            else:
                yield self.message(method.request_type)


_WIDE = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)

__all__ = ["EDGE_STRINGS", "FuzzMethod", "RequestFuzzer", "unary_methods"]
