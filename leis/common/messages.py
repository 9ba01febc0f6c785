"""Shape checks every protobuf request gets, whatever its method (R-Q-4).

- ``unknown_fields``: where a message carries fields this build does not know. The broker's
  query validation and the source simulators' request validation both refuse them, with the
  same paths.
- ``out_of_range_fields``: ``google.protobuf.Timestamp`` and ``Duration`` values outside the
  ranges their definitions allow (such a value cannot even be rendered as JSON).
- ``largest_field``: where the bulk of an oversize message lies.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

# google/protobuf/timestamp.proto: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
# google/protobuf/duration.proto: about +-10,000 years.
DURATION_MAX_SECONDS = 315_576_000_000
_NANOS = 1_000_000_000


def unknown_fields(message: Message, path: str = "") -> Iterator[tuple[str, list[int]]]:
    """``(dotted path, sorted field numbers)`` of each (sub)message holding unknown fields.

    The top-level message's path is ``"request"``; map entries are not walked.
    """
    unknown = UnknownFieldSet(message)
    if len(unknown):
        yield path or "request", sorted({unknown[i].field_number for i in range(len(unknown))})
    for child, value in _submessages(message, path):
        yield from unknown_fields(value, child)


def out_of_range_fields(message: Message, path: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted path, what is wrong)`` of each Timestamp or Duration outside its defined range."""
    problem = _well_known_problem(message)
    if problem is not None:
        yield path or "request", problem
        return
    for child, value in _submessages(message, path):
        yield from out_of_range_fields(value, child)


def largest_field(message: Message, path: str = "") -> str:
    """The dotted path of the field holding most of ``message``'s bytes, descending into
    singular sub-messages (``"request"`` for a message without fields)."""
    best: tuple[int, str, Message | None] | None = None
    for descriptor, value in message.ListFields():
        child = f"{path}.{descriptor.name}" if path else descriptor.name
        if descriptor.is_repeated:
            size = sum(_size(item) for item in value)
            candidate: tuple[int, str, Message | None] = (size, child, None)
        else:
            candidate = (_size(value), child, value if isinstance(value, Message) else None)
        if best is None or candidate[0] > best[0]:
            best = candidate
    if best is None:
        return path or "request"
    _, child, submessage = best
    return largest_field(submessage, child) if submessage is not None else child


def _size(value: object) -> int:
    if isinstance(value, Message):
        return value.ByteSize()
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(value) if isinstance(value, bytes) else 8


def _well_known_problem(message: Message) -> str | None:
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
        if not TIMESTAMP_MIN_SECONDS <= seconds <= TIMESTAMP_MAX_SECONDS or not 0 <= nanos < _NANOS:
            return "a timestamp between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
    elif name == "google.protobuf.Duration":
        seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
        same_sign = seconds == 0 or nanos == 0 or (seconds > 0) == (nanos > 0)
        if abs(seconds) > DURATION_MAX_SECONDS or abs(nanos) >= _NANOS or not same_sign:
            return f"a duration of at most {DURATION_MAX_SECONDS} seconds either way"
    return None


def _submessages(message: Message, path: str) -> Iterator[tuple[str, Message]]:
    """The set sub-messages of ``message`` with their dotted paths (map entries not walked)."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None or descriptor.message_type.GetOptions().map_entry:
            continue
        child = f"{path}.{descriptor.name}" if path else descriptor.name
        if descriptor.is_repeated:
            for index, item in enumerate(value):
                yield f"{child}[{index}]", item
        else:
            yield child, value
