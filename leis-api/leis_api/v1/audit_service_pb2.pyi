import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from leis_api.v1 import subject_pb2 as _subject_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_EVENT_TYPE_UNSPECIFIED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_QUERY_RECEIVED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_REFUSED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_RESPONSE_SENT: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_OUTBOUND_QUERY: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PARTNER_RESPONSE: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_REGISTRY_CHANGED: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_PURGE: _ClassVar[AuditEventType]
    AUDIT_EVENT_TYPE_AUDIT_READ: _ClassVar[AuditEventType]

class AuditDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_DIRECTION_UNSPECIFIED: _ClassVar[AuditDirection]
    AUDIT_DIRECTION_INBOUND: _ClassVar[AuditDirection]
    AUDIT_DIRECTION_OUTBOUND: _ClassVar[AuditDirection]
    AUDIT_DIRECTION_INTERNAL: _ClassVar[AuditDirection]

class AuditOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_OUTCOME_UNSPECIFIED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_OK: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_REFUSED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_FAILED: _ClassVar[AuditOutcome]
AUDIT_EVENT_TYPE_UNSPECIFIED: AuditEventType
AUDIT_EVENT_TYPE_QUERY_RECEIVED: AuditEventType
AUDIT_EVENT_TYPE_REFUSED: AuditEventType
AUDIT_EVENT_TYPE_RESPONSE_SENT: AuditEventType
AUDIT_EVENT_TYPE_OUTBOUND_QUERY: AuditEventType
AUDIT_EVENT_TYPE_PARTNER_RESPONSE: AuditEventType
AUDIT_EVENT_TYPE_REGISTRY_CHANGED: AuditEventType
AUDIT_EVENT_TYPE_PURGE: AuditEventType
AUDIT_EVENT_TYPE_AUDIT_READ: AuditEventType
AUDIT_DIRECTION_UNSPECIFIED: AuditDirection
AUDIT_DIRECTION_INBOUND: AuditDirection
AUDIT_DIRECTION_OUTBOUND: AuditDirection
AUDIT_DIRECTION_INTERNAL: AuditDirection
AUDIT_OUTCOME_UNSPECIFIED: AuditOutcome
AUDIT_OUTCOME_OK: AuditOutcome
AUDIT_OUTCOME_REFUSED: AuditOutcome
AUDIT_OUTCOME_FAILED: AuditOutcome

class AuditEvent(_message.Message):
    __slots__ = ("event_id", "chain_id", "seq", "event_time", "event_type", "direction", "agency_id", "ori", "user_id", "cert_fingerprint", "purpose", "outcome", "status_code", "reason", "trace_id", "method", "disclosed_count", "source_systems", "disclosed_record_ids", "released_fields", "query_categories", "hash", "parent_event_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ORI_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CERT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DISCLOSED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEMS_FIELD_NUMBER: _ClassVar[int]
    DISCLOSED_RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    QUERY_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PARENT_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    chain_id: str
    seq: int
    event_time: _timestamp_pb2.Timestamp
    event_type: AuditEventType
    direction: AuditDirection
    agency_id: str
    ori: str
    user_id: str
    cert_fingerprint: str
    purpose: _subject_pb2.Purpose
    outcome: AuditOutcome
    status_code: str
    reason: str
    trace_id: str
    method: str
    disclosed_count: int
    source_systems: _containers.RepeatedScalarFieldContainer[str]
    disclosed_record_ids: _containers.RepeatedScalarFieldContainer[str]
    released_fields: _containers.RepeatedScalarFieldContainer[str]
    query_categories: _containers.RepeatedScalarFieldContainer[_subject_pb2.QueryCategory]
    hash: str
    parent_event_id: str
    def __init__(self, event_id: _Optional[str] = ..., chain_id: _Optional[str] = ..., seq: _Optional[int] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_type: _Optional[_Union[AuditEventType, str]] = ..., direction: _Optional[_Union[AuditDirection, str]] = ..., agency_id: _Optional[str] = ..., ori: _Optional[str] = ..., user_id: _Optional[str] = ..., cert_fingerprint: _Optional[str] = ..., purpose: _Optional[_Union[_subject_pb2.Purpose, str]] = ..., outcome: _Optional[_Union[AuditOutcome, str]] = ..., status_code: _Optional[str] = ..., reason: _Optional[str] = ..., trace_id: _Optional[str] = ..., method: _Optional[str] = ..., disclosed_count: _Optional[int] = ..., source_systems: _Optional[_Iterable[str]] = ..., disclosed_record_ids: _Optional[_Iterable[str]] = ..., released_fields: _Optional[_Iterable[str]] = ..., query_categories: _Optional[_Iterable[_Union[_subject_pb2.QueryCategory, str]]] = ..., hash: _Optional[str] = ..., parent_event_id: _Optional[str] = ...) -> None: ...

class SearchEventsRequest(_message.Message):
    __slots__ = ("user_id", "agency_id", "ori", "start_time", "end_time", "event_type", "outcome", "trace_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ORI_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    agency_id: str
    ori: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    event_type: AuditEventType
    outcome: AuditOutcome
    trace_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., agency_id: _Optional[str] = ..., ori: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_type: _Optional[_Union[AuditEventType, str]] = ..., outcome: _Optional[_Union[AuditOutcome, str]] = ..., trace_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("event_id", "justification")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    justification: str
    def __init__(self, event_id: _Optional[str] = ..., justification: _Optional[str] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ("event", "content_json")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    event: AuditEvent
    content_json: str
    def __init__(self, event: _Optional[_Union[AuditEvent, _Mapping]] = ..., content_json: _Optional[str] = ...) -> None: ...

class VerifyLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyLogResponse(_message.Message):
    __slots__ = ("intact", "events_checked", "checkpoints_checked", "broken_chain_id", "broken_seq", "problem")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    BROKEN_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    BROKEN_SEQ_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    events_checked: int
    checkpoints_checked: int
    broken_chain_id: str
    broken_seq: int
    problem: str
    def __init__(self, intact: _Optional[bool] = ..., events_checked: _Optional[int] = ..., checkpoints_checked: _Optional[int] = ..., broken_chain_id: _Optional[str] = ..., broken_seq: _Optional[int] = ..., problem: _Optional[str] = ...) -> None: ...

class ExportAgencyEventsRequest(_message.Message):
    __slots__ = ("agency_id", "start_time", "end_time")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, agency_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportAgencyEventsResponse(_message.Message):
    __slots__ = ("bundle", "event_count")
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    bundle: bytes
    event_count: int
    def __init__(self, bundle: _Optional[bytes] = ..., event_count: _Optional[int] = ...) -> None: ...

class GetReviewReportRequest(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetReviewReportResponse(_message.Message):
    __slots__ = ("report_json", "report_text")
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    REPORT_TEXT_FIELD_NUMBER: _ClassVar[int]
    report_json: str
    report_text: str
    def __init__(self, report_json: _Optional[str] = ..., report_text: _Optional[str] = ...) -> None: ...
