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

class SubjectRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBJECT_ROLE_UNSPECIFIED: _ClassVar[SubjectRole]
    SUBJECT_ROLE_SUSPECT: _ClassVar[SubjectRole]
    SUBJECT_ROLE_VICTIM: _ClassVar[SubjectRole]
    SUBJECT_ROLE_WITNESS: _ClassVar[SubjectRole]
    SUBJECT_ROLE_ARRESTEE: _ClassVar[SubjectRole]
    SUBJECT_ROLE_ENCOUNTER_SUBJECT: _ClassVar[SubjectRole]

class RecordStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_STATUS_UNSPECIFIED: _ClassVar[RecordStatus]
    RECORD_STATUS_OPEN: _ClassVar[RecordStatus]
    RECORD_STATUS_CLOSED: _ClassVar[RecordStatus]

class RestrictionCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESTRICTION_CATEGORY_UNSPECIFIED: _ClassVar[RestrictionCategory]
    RESTRICTION_CATEGORY_BANK_SECRECY_ACT: _ClassVar[RestrictionCategory]
    RESTRICTION_CATEGORY_TRADE_SECRETS_ACT: _ClassVar[RestrictionCategory]
    RESTRICTION_CATEGORY_NATIONAL_SECURITY: _ClassVar[RestrictionCategory]
    RESTRICTION_CATEGORY_THIRD_AGENCY: _ClassVar[RestrictionCategory]
    RESTRICTION_CATEGORY_CONFIDENTIAL_SOURCE: _ClassVar[RestrictionCategory]
    RESTRICTION_CATEGORY_UNDERCOVER_OPERATION: _ClassVar[RestrictionCategory]

class ProtectedClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTECTED_CLASS_UNSPECIFIED: _ClassVar[ProtectedClass]
    PROTECTED_CLASS_ASYLUM_SEEKER: _ClassVar[ProtectedClass]
    PROTECTED_CLASS_REFUGEE: _ClassVar[ProtectedClass]
    PROTECTED_CLASS_VICTIM_WITNESS: _ClassVar[ProtectedClass]
    PROTECTED_CLASS_VAWA: _ClassVar[ProtectedClass]
    PROTECTED_CLASS_U_VISA: _ClassVar[ProtectedClass]
    PROTECTED_CLASS_T_VISA: _ClassVar[ProtectedClass]
SUBJECT_ROLE_UNSPECIFIED: SubjectRole
SUBJECT_ROLE_SUSPECT: SubjectRole
SUBJECT_ROLE_VICTIM: SubjectRole
SUBJECT_ROLE_WITNESS: SubjectRole
SUBJECT_ROLE_ARRESTEE: SubjectRole
SUBJECT_ROLE_ENCOUNTER_SUBJECT: SubjectRole
RECORD_STATUS_UNSPECIFIED: RecordStatus
RECORD_STATUS_OPEN: RecordStatus
RECORD_STATUS_CLOSED: RecordStatus
RESTRICTION_CATEGORY_UNSPECIFIED: RestrictionCategory
RESTRICTION_CATEGORY_BANK_SECRECY_ACT: RestrictionCategory
RESTRICTION_CATEGORY_TRADE_SECRETS_ACT: RestrictionCategory
RESTRICTION_CATEGORY_NATIONAL_SECURITY: RestrictionCategory
RESTRICTION_CATEGORY_THIRD_AGENCY: RestrictionCategory
RESTRICTION_CATEGORY_CONFIDENTIAL_SOURCE: RestrictionCategory
RESTRICTION_CATEGORY_UNDERCOVER_OPERATION: RestrictionCategory
PROTECTED_CLASS_UNSPECIFIED: ProtectedClass
PROTECTED_CLASS_ASYLUM_SEEKER: ProtectedClass
PROTECTED_CLASS_REFUGEE: ProtectedClass
PROTECTED_CLASS_VICTIM_WITNESS: ProtectedClass
PROTECTED_CLASS_VAWA: ProtectedClass
PROTECTED_CLASS_U_VISA: ProtectedClass
PROTECTED_CLASS_T_VISA: ProtectedClass

class SearchRequest(_message.Message):
    __slots__ = ("subject", "max_records", "request_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    subject: _subject_pb2.SubjectQuery
    max_records: int
    request_id: str
    def __init__(self, subject: _Optional[_Union[_subject_pb2.SubjectQuery, _Mapping]] = ..., max_records: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("source", "records", "truncated")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    source: _records_pb2.SourceSystem
    records: _containers.RepeatedCompositeFieldContainer[SourceRecord]
    truncated: bool
    def __init__(self, source: _Optional[_Union[_records_pb2.SourceSystem, str]] = ..., records: _Optional[_Iterable[_Union[SourceRecord, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("activity_number", "activity_description", "occurred_time")
    ACTIVITY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_TIME_FIELD_NUMBER: _ClassVar[int]
    activity_number: str
    activity_description: str
    occurred_time: _timestamp_pb2.Timestamp
    def __init__(self, activity_number: _Optional[str] = ..., activity_description: _Optional[str] = ..., occurred_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SourceRecord(_message.Message):
    __slots__ = ("record_id", "subject_id", "match_score", "matched_fields", "name", "aliases", "date_of_birth", "addresses", "phone_numbers", "identifiers", "physical_description", "country_of_birth", "place_of_birth", "incidents", "subject_role", "record_status", "restrictions", "protected_classes", "remarks", "person_subject")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MATCH_SCORE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    PLACE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ROLE_FIELD_NUMBER: _ClassVar[int]
    RECORD_STATUS_FIELD_NUMBER: _ClassVar[int]
    RESTRICTIONS_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_CLASSES_FIELD_NUMBER: _ClassVar[int]
    REMARKS_FIELD_NUMBER: _ClassVar[int]
    PERSON_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    subject_id: str
    match_score: float
    matched_fields: _containers.RepeatedScalarFieldContainer[str]
    name: _records_pb2.PersonName
    aliases: _containers.RepeatedCompositeFieldContainer[_records_pb2.PersonName]
    date_of_birth: str
    addresses: _containers.RepeatedCompositeFieldContainer[_records_pb2.PostalAddress]
    phone_numbers: _containers.RepeatedScalarFieldContainer[str]
    identifiers: _containers.RepeatedCompositeFieldContainer[_records_pb2.PersonIdentifier]
    physical_description: _records_pb2.PhysicalDescription
    country_of_birth: str
    place_of_birth: str
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    subject_role: SubjectRole
    record_status: RecordStatus
    restrictions: _containers.RepeatedScalarFieldContainer[RestrictionCategory]
    protected_classes: _containers.RepeatedScalarFieldContainer[ProtectedClass]
    remarks: _containers.RepeatedScalarFieldContainer[str]
    person_subject: bool
    def __init__(self, record_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., match_score: _Optional[float] = ..., matched_fields: _Optional[_Iterable[str]] = ..., name: _Optional[_Union[_records_pb2.PersonName, _Mapping]] = ..., aliases: _Optional[_Iterable[_Union[_records_pb2.PersonName, _Mapping]]] = ..., date_of_birth: _Optional[str] = ..., addresses: _Optional[_Iterable[_Union[_records_pb2.PostalAddress, _Mapping]]] = ..., phone_numbers: _Optional[_Iterable[str]] = ..., identifiers: _Optional[_Iterable[_Union[_records_pb2.PersonIdentifier, _Mapping]]] = ..., physical_description: _Optional[_Union[_records_pb2.PhysicalDescription, _Mapping]] = ..., country_of_birth: _Optional[str] = ..., place_of_birth: _Optional[str] = ..., incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ..., subject_role: _Optional[_Union[SubjectRole, str]] = ..., record_status: _Optional[_Union[RecordStatus, str]] = ..., restrictions: _Optional[_Iterable[_Union[RestrictionCategory, str]]] = ..., protected_classes: _Optional[_Iterable[_Union[ProtectedClass, str]]] = ..., remarks: _Optional[_Iterable[str]] = ..., person_subject: _Optional[bool] = ...) -> None: ...

class GetPhotosRequest(_message.Message):
    __slots__ = ("subject_ids",)
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subject_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPhotosResponse(_message.Message):
    __slots__ = ("photos",)
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    photos: _containers.RepeatedCompositeFieldContainer[_records_pb2.BookingPhoto]
    def __init__(self, photos: _Optional[_Iterable[_Union[_records_pb2.BookingPhoto, _Mapping]]] = ...) -> None: ...
