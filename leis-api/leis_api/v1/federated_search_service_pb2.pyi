from leis_api.v1 import records_pb2 as _records_pb2
from leis_api.v1 import subject_pb2 as _subject_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PartnerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTNER_STATE_UNSPECIFIED: _ClassVar[PartnerState]
    PARTNER_STATE_ANSWERED: _ClassVar[PartnerState]
    PARTNER_STATE_NO_MATCH: _ClassVar[PartnerState]
    PARTNER_STATE_UNAVAILABLE: _ClassVar[PartnerState]
    PARTNER_STATE_TIMED_OUT: _ClassVar[PartnerState]
    PARTNER_STATE_SKIPPED_AGREEMENT_INACTIVE: _ClassVar[PartnerState]
PARTNER_STATE_UNSPECIFIED: PartnerState
PARTNER_STATE_ANSWERED: PartnerState
PARTNER_STATE_NO_MATCH: PartnerState
PARTNER_STATE_UNAVAILABLE: PartnerState
PARTNER_STATE_TIMED_OUT: PartnerState
PARTNER_STATE_SKIPPED_AGREEMENT_INACTIVE: PartnerState

class FederatedSearchServiceSearchRequest(_message.Message):
    __slots__ = ("subject", "purpose", "end_user", "client_request_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    END_USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    subject: _subject_pb2.SubjectQuery
    purpose: _subject_pb2.Purpose
    end_user: _subject_pb2.EndUser
    client_request_id: str
    def __init__(self, subject: _Optional[_Union[_subject_pb2.SubjectQuery, _Mapping]] = ..., purpose: _Optional[_Union[_subject_pb2.Purpose, str]] = ..., end_user: _Optional[_Union[_subject_pb2.EndUser, _Mapping]] = ..., client_request_id: _Optional[str] = ...) -> None: ...

class PartnerResult(_message.Message):
    __slots__ = ("agency_id", "agency_name", "state", "records", "latency_ms")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    agency_name: str
    state: PartnerState
    records: _containers.RepeatedCompositeFieldContainer[_records_pb2.PartnerRecord]
    latency_ms: int
    def __init__(self, agency_id: _Optional[str] = ..., agency_name: _Optional[str] = ..., state: _Optional[_Union[PartnerState, str]] = ..., records: _Optional[_Iterable[_Union[_records_pb2.PartnerRecord, _Mapping]]] = ..., latency_ms: _Optional[int] = ...) -> None: ...

class FederatedSearchServiceSearchResponse(_message.Message):
    __slots__ = ("partners", "audit_reference", "trace_id")
    PARTNERS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    partners: _containers.RepeatedCompositeFieldContainer[PartnerResult]
    audit_reference: str
    trace_id: str
    def __init__(self, partners: _Optional[_Iterable[_Union[PartnerResult, _Mapping]]] = ..., audit_reference: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...
