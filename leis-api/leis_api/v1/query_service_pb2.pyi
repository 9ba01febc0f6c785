import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from leis_api.v1 import records_pb2 as _records_pb2
from leis_api.v1 import subject_pb2 as _subject_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SourceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_STATE_UNSPECIFIED: _ClassVar[SourceState]
    SOURCE_STATE_ANSWERED: _ClassVar[SourceState]
    SOURCE_STATE_UNAVAILABLE: _ClassVar[SourceState]
    SOURCE_STATE_TIMED_OUT: _ClassVar[SourceState]
    SOURCE_STATE_NOT_QUERIED: _ClassVar[SourceState]

class HandlingCaveat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HANDLING_CAVEAT_UNSPECIFIED: _ClassVar[HandlingCaveat]
    HANDLING_CAVEAT_VIEW_ONLY: _ClassVar[HandlingCaveat]
    HANDLING_CAVEAT_NO_STORAGE: _ClassVar[HandlingCaveat]
    HANDLING_CAVEAT_NO_PRINTING: _ClassVar[HandlingCaveat]
    HANDLING_CAVEAT_NO_FURTHER_DISSEMINATION: _ClassVar[HandlingCaveat]
    HANDLING_CAVEAT_NOT_CERTIFIED_RECORD: _ClassVar[HandlingCaveat]
    HANDLING_CAVEAT_NOT_SOLE_BASIS_FOR_ACTION: _ClassVar[HandlingCaveat]

class SharingDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHARING_DIRECTION_UNSPECIFIED: _ClassVar[SharingDirection]
    SHARING_DIRECTION_TWO_WAY: _ClassVar[SharingDirection]
    SHARING_DIRECTION_ONE_WAY: _ClassVar[SharingDirection]
SOURCE_STATE_UNSPECIFIED: SourceState
SOURCE_STATE_ANSWERED: SourceState
SOURCE_STATE_UNAVAILABLE: SourceState
SOURCE_STATE_TIMED_OUT: SourceState
SOURCE_STATE_NOT_QUERIED: SourceState
HANDLING_CAVEAT_UNSPECIFIED: HandlingCaveat
HANDLING_CAVEAT_VIEW_ONLY: HandlingCaveat
HANDLING_CAVEAT_NO_STORAGE: HandlingCaveat
HANDLING_CAVEAT_NO_PRINTING: HandlingCaveat
HANDLING_CAVEAT_NO_FURTHER_DISSEMINATION: HandlingCaveat
HANDLING_CAVEAT_NOT_CERTIFIED_RECORD: HandlingCaveat
HANDLING_CAVEAT_NOT_SOLE_BASIS_FOR_ACTION: HandlingCaveat
SHARING_DIRECTION_UNSPECIFIED: SharingDirection
SHARING_DIRECTION_TWO_WAY: SharingDirection
SHARING_DIRECTION_ONE_WAY: SharingDirection

class SearchRequest(_message.Message):
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

class SearchResponse(_message.Message):
    __slots__ = ("persons", "narrow_query_required", "source_statuses", "notice", "audit_reference", "trace_id")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    NARROW_QUERY_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[PersonResult]
    narrow_query_required: bool
    source_statuses: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    notice: ReleaseNotice
    audit_reference: str
    trace_id: str
    def __init__(self, persons: _Optional[_Iterable[_Union[PersonResult, _Mapping]]] = ..., narrow_query_required: _Optional[bool] = ..., source_statuses: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ..., notice: _Optional[_Union[ReleaseNotice, _Mapping]] = ..., audit_reference: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...

class PersonResult(_message.Message):
    __slots__ = ("result_id", "match_score", "matched_fields", "name", "date_of_birth", "addresses", "physical_description", "country_of_birth", "place_of_birth", "matched_identifiers", "booking_photos", "sources")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    MATCH_SCORE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    PLACE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    MATCHED_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    BOOKING_PHOTOS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    result_id: str
    match_score: float
    matched_fields: _containers.RepeatedScalarFieldContainer[str]
    name: _records_pb2.PersonName
    date_of_birth: str
    addresses: _containers.RepeatedCompositeFieldContainer[_records_pb2.PostalAddress]
    physical_description: _records_pb2.PhysicalDescription
    country_of_birth: str
    place_of_birth: str
    matched_identifiers: _containers.RepeatedCompositeFieldContainer[_records_pb2.PersonIdentifier]
    booking_photos: _containers.RepeatedCompositeFieldContainer[_records_pb2.BookingPhoto]
    sources: _containers.RepeatedCompositeFieldContainer[SourceReference]
    def __init__(self, result_id: _Optional[str] = ..., match_score: _Optional[float] = ..., matched_fields: _Optional[_Iterable[str]] = ..., name: _Optional[_Union[_records_pb2.PersonName, _Mapping]] = ..., date_of_birth: _Optional[str] = ..., addresses: _Optional[_Iterable[_Union[_records_pb2.PostalAddress, _Mapping]]] = ..., physical_description: _Optional[_Union[_records_pb2.PhysicalDescription, _Mapping]] = ..., country_of_birth: _Optional[str] = ..., place_of_birth: _Optional[str] = ..., matched_identifiers: _Optional[_Iterable[_Union[_records_pb2.PersonIdentifier, _Mapping]]] = ..., booking_photos: _Optional[_Iterable[_Union[_records_pb2.BookingPhoto, _Mapping]]] = ..., sources: _Optional[_Iterable[_Union[SourceReference, _Mapping]]] = ...) -> None: ...

class SourceReference(_message.Message):
    __slots__ = ("source", "record_id", "retrieved_time")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RETRIEVED_TIME_FIELD_NUMBER: _ClassVar[int]
    source: _records_pb2.SourceSystem
    record_id: str
    retrieved_time: _timestamp_pb2.Timestamp
    def __init__(self, source: _Optional[_Union[_records_pb2.SourceSystem, str]] = ..., record_id: _Optional[str] = ..., retrieved_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SourceStatus(_message.Message):
    __slots__ = ("source", "state", "released_record_count")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    source: _records_pb2.SourceSystem
    state: SourceState
    released_record_count: int
    def __init__(self, source: _Optional[_Union[_records_pb2.SourceSystem, str]] = ..., state: _Optional[_Union[SourceState, str]] = ..., released_record_count: _Optional[int] = ...) -> None: ...

class ReleaseNotice(_message.Message):
    __slots__ = ("obtained_via", "response_time", "lesc_instruction", "caveats", "caveat_texts")
    OBTAINED_VIA_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TIME_FIELD_NUMBER: _ClassVar[int]
    LESC_INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    CAVEAT_TEXTS_FIELD_NUMBER: _ClassVar[int]
    obtained_via: str
    response_time: _timestamp_pb2.Timestamp
    lesc_instruction: str
    caveats: _containers.RepeatedScalarFieldContainer[HandlingCaveat]
    caveat_texts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, obtained_via: _Optional[str] = ..., response_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lesc_instruction: _Optional[str] = ..., caveats: _Optional[_Iterable[_Union[HandlingCaveat, str]]] = ..., caveat_texts: _Optional[_Iterable[str]] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCapabilitiesResponse(_message.Message):
    __slots__ = ("agency_id", "agency_name", "sharing_direction", "query_categories", "permitted_purposes", "permitted_oris", "notice", "source_statuses", "max_results", "agreement_version")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_NAME_FIELD_NUMBER: _ClassVar[int]
    SHARING_DIRECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PERMITTED_PURPOSES_FIELD_NUMBER: _ClassVar[int]
    PERMITTED_ORIS_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STATUSES_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    agency_name: str
    sharing_direction: SharingDirection
    query_categories: _containers.RepeatedScalarFieldContainer[_subject_pb2.QueryCategory]
    permitted_purposes: _containers.RepeatedScalarFieldContainer[_subject_pb2.Purpose]
    permitted_oris: _containers.RepeatedScalarFieldContainer[str]
    notice: ReleaseNotice
    source_statuses: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    max_results: int
    agreement_version: int
    def __init__(self, agency_id: _Optional[str] = ..., agency_name: _Optional[str] = ..., sharing_direction: _Optional[_Union[SharingDirection, str]] = ..., query_categories: _Optional[_Iterable[_Union[_subject_pb2.QueryCategory, str]]] = ..., permitted_purposes: _Optional[_Iterable[_Union[_subject_pb2.Purpose, str]]] = ..., permitted_oris: _Optional[_Iterable[str]] = ..., notice: _Optional[_Union[ReleaseNotice, _Mapping]] = ..., source_statuses: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ..., max_results: _Optional[int] = ..., agreement_version: _Optional[int] = ...) -> None: ...
