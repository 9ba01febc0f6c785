"""The stated purpose (R-Q-3) and the end user's ORI (R-ID-3) against the agreement."""

from __future__ import annotations

import pytest

from leis.common.errors import InvalidArgument, PermissionDenied
from leis.common.vocab import LAWFUL_PURPOSES
from leis.rules.purpose import (
    ORI_NOT_PERMITTED,
    PURPOSE_NOT_LAWFUL,
    PURPOSE_NOT_PERMITTED,
    PURPOSE_REQUIRED,
    check_ori,
    check_purpose,
)
from leis_api.v1 import subject_pb2

# --- purpose (R-Q-3) and ORI (R-ID-3) ------------------------------------------------------------

ALL_LAWFUL = LAWFUL_PURPOSES


@pytest.mark.parametrize(
    ("purpose", "name"),
    [
        (subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT, "CRIMINAL_LAW_ENFORCEMENT"),
        (subject_pb2.PURPOSE_NATIONAL_SECURITY, "NATIONAL_SECURITY"),
        (subject_pb2.PURPOSE_EMPLOYMENT_BACKGROUND_CHECK, "EMPLOYMENT_BACKGROUND_CHECK"),
    ],
)
def test_lawful_permitted_purpose(purpose: subject_pb2.Purpose.ValueType, name: str) -> None:
    assert check_purpose(purpose, ALL_LAWFUL) == name


def test_unspecified_purpose_is_a_missing_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_purpose(subject_pb2.PURPOSE_UNSPECIFIED, ALL_LAWFUL)
    assert info.value.reason == PURPOSE_REQUIRED
    assert [v.field for v in info.value.violations] == ["purpose"]


@pytest.mark.parametrize(
    "purpose", [subject_pb2.PURPOSE_LICENSING, subject_pb2.PURPOSE_BENEFITS_ELIGIBILITY, 6, 99, -1]
)
def test_unlawful_purpose(purpose: subject_pb2.Purpose.ValueType) -> None:
    with pytest.raises(PermissionDenied) as info:
        check_purpose(purpose, ALL_LAWFUL | {"LICENSING", "BENEFITS_ELIGIBILITY"})
    assert info.value.reason == PURPOSE_NOT_LAWFUL


def test_lawful_purpose_outside_the_agreement() -> None:
    with pytest.raises(PermissionDenied) as info:
        check_purpose(
            subject_pb2.PURPOSE_EMPLOYMENT_BACKGROUND_CHECK, frozenset({"CRIMINAL_LAW_ENFORCEMENT"})
        )
    assert info.value.reason == PURPOSE_NOT_PERMITTED


def test_check_ori() -> None:
    check_ori("az0070000", ["AZ0070000", "AZ0070100"])
    for ori in ("AZ0070200", "", "  "):
        with pytest.raises(PermissionDenied) as info:
            check_ori(ori, ["AZ0070000"])
        assert info.value.reason == ORI_NOT_PERMITTED
