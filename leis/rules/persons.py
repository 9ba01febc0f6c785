"""Who is the same person (R-Q-6): the same-person keys of a released view, and grouping by them.

Two records are the same person when they share an identifying number (same
type and normalised value) or the same folded first + last name and the same
date of birth; sameness is transitive. Used by the merge (persons in a
response) and by the release rules (protection follows the person, R-REL-3).
Plain functions over plain data: no gRPC, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from leis.common import normalize


class _Name(Protocol):
    @property
    def first_name(self) -> str: ...
    @property
    def last_name(self) -> str: ...
    @property
    def full_name(self) -> str: ...


class _Identifier(Protocol):
    @property
    def type(self) -> int: ...
    @property
    def value(self) -> str: ...


class PersonView(Protocol):
    """What sameness reads of a released record (``leis.rules.release.ReleasedRecord``)."""

    @property
    def link_keys(self) -> Iterable[str]: ...
    @property
    def matched_identifiers(self) -> Iterable[_Identifier]: ...
    @property
    def name(self) -> _Name: ...
    @property
    def date_of_birth(self) -> str: ...


__all__ = ["group_indices", "same_person_keys"]


def same_person_keys(record: PersonView) -> frozenset[str]:
    """The keys under which ``record`` is the same person as any other record holding one of them."""
    keys = {f"id:{k}" for k in record.link_keys}
    for ident in record.matched_identifiers:
        key = normalize.identifier_key(ident.type, ident.value)
        if key is not None:
            keys.add(f"matched:{key}")
    name = normalize.name_key(record.name.first_name, record.name.last_name, record.name.full_name)
    if name is not None and record.date_of_birth:
        keys.add(f"name-dob:{name}|{record.date_of_birth}")
    return frozenset(keys)


def group_indices(keysets: Sequence[Iterable[str]]) -> list[list[int]]:
    """Indices grouped by shared keys (union-find), each group ascending, groups by first index."""
    parent = list(range(len(keysets)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for index, keys in enumerate(keysets):
        for key in sorted(keys):
            if key in owner:
                a, b = find(owner[key]), find(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(keysets)):
        groups.setdefault(find(index), []).append(index)
    return list(groups.values())
