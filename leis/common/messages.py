"""Where a protobuf message carries fields this build does not know (R-Q-4).

The broker's query validation and the source simulators' request validation both
refuse unknown fields anywhere in the message tree, with the same paths.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet


def unknown_fields(message: Message, path: str = "") -> Iterator[tuple[str, list[int]]]:
    """``(dotted path, sorted field numbers)`` of each (sub)message holding unknown fields.

    The top-level message's path is ``"request"``; map entries are not walked.
    """
    unknown = UnknownFieldSet(message)
    if len(unknown):
        yield path or "request", sorted({unknown[i].field_number for i in range(len(unknown))})
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None or descriptor.message_type.GetOptions().map_entry:
            continue
        child = f"{path}.{descriptor.name}" if path else descriptor.name
        if descriptor.is_repeated:
            for index, item in enumerate(value):
                yield from unknown_fields(item, f"{child}[{index}]")
        else:
            yield from unknown_fields(value, child)
