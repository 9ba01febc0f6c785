import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentifierType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTIFIER_TYPE_UNSPECIFIED: _ClassVar[IdentifierType]
    IDENTIFIER_TYPE_SSN: _ClassVar[IdentifierType]
    IDENTIFIER_TYPE_PASSPORT_NUMBER: _ClassVar[IdentifierType]
    IDENTIFIER_TYPE_ALIEN_NUMBER: _ClassVar[IdentifierType]
    IDENTIFIER_TYPE_ENCOUNTER_ID: _ClassVar[IdentifierType]
    IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER: _ClassVar[IdentifierType]

class SourceSystem(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_SYSTEM_UNSPECIFIED: _ClassVar[SourceSystem]
    SOURCE_SYSTEM_EID: _ClassVar[SourceSystem]
    SOURCE_SYSTEM_TECS: _ClassVar[SourceSystem]
    SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE: _ClassVar[SourceSystem]

class PartnerRecordType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTNER_RECORD_TYPE_UNSPECIFIED: _ClassVar[PartnerRecordType]
    PARTNER_RECORD_TYPE_INCIDENT: _ClassVar[PartnerRecordType]
    PARTNER_RECORD_TYPE_ARREST: _ClassVar[PartnerRecordType]
    PARTNER_RECORD_TYPE_BOOKING: _ClassVar[PartnerRecordType]
IDENTIFIER_TYPE_UNSPECIFIED: IdentifierType
IDENTIFIER_TYPE_SSN: IdentifierType
IDENTIFIER_TYPE_PASSPORT_NUMBER: IdentifierType
IDENTIFIER_TYPE_ALIEN_NUMBER: IdentifierType
IDENTIFIER_TYPE_ENCOUNTER_ID: IdentifierType
IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER: IdentifierType
SOURCE_SYSTEM_UNSPECIFIED: SourceSystem
SOURCE_SYSTEM_EID: SourceSystem
SOURCE_SYSTEM_TECS: SourceSystem
SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE: SourceSystem
PARTNER_RECORD_TYPE_UNSPECIFIED: PartnerRecordType
PARTNER_RECORD_TYPE_INCIDENT: PartnerRecordType
PARTNER_RECORD_TYPE_ARREST: PartnerRecordType
PARTNER_RECORD_TYPE_BOOKING: PartnerRecordType

class PersonName(_message.Message):
    __slots__ = ("first_name", "middle_name", "last_name", "full_name")
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    MIDDLE_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    first_name: str
    middle_name: str
    last_name: str
    full_name: str
    def __init__(self, first_name: _Optional[str] = ..., middle_name: _Optional[str] = ..., last_name: _Optional[str] = ..., full_name: _Optional[str] = ...) -> None: ...

class PostalAddress(_message.Message):
    __slots__ = ("street_number", "street_name", "secondary_unit", "city", "state", "country", "postal_code")
    STREET_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STREET_NAME_FIELD_NUMBER: _ClassVar[int]
    SECONDARY_UNIT_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    street_number: str
    street_name: str
    secondary_unit: str
    city: str
    state: str
    country: str
    postal_code: str
    def __init__(self, street_number: _Optional[str] = ..., street_name: _Optional[str] = ..., secondary_unit: _Optional[str] = ..., city: _Optional[str] = ..., state: _Optional[str] = ..., country: _Optional[str] = ..., postal_code: _Optional[str] = ...) -> None: ...

class PersonIdentifier(_message.Message):
    __slots__ = ("type", "value", "issuer")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    type: IdentifierType
    value: str
    issuer: str
    def __init__(self, type: _Optional[_Union[IdentifierType, str]] = ..., value: _Optional[str] = ..., issuer: _Optional[str] = ...) -> None: ...

class PhysicalDescription(_message.Message):
    __slots__ = ("height_inches", "weight_pounds", "eye_color", "hair_color")
    HEIGHT_INCHES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_POUNDS_FIELD_NUMBER: _ClassVar[int]
    EYE_COLOR_FIELD_NUMBER: _ClassVar[int]
    HAIR_COLOR_FIELD_NUMBER: _ClassVar[int]
    height_inches: int
    weight_pounds: int
    eye_color: str
    hair_color: str
    def __init__(self, height_inches: _Optional[int] = ..., weight_pounds: _Optional[int] = ..., eye_color: _Optional[str] = ..., hair_color: _Optional[str] = ...) -> None: ...

class BookingPhoto(_message.Message):
    __slots__ = ("photo_id", "subject_id", "media_type", "image", "taken_time")
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TAKEN_TIME_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    subject_id: str
    media_type: str
    image: bytes
    taken_time: _timestamp_pb2.Timestamp
    def __init__(self, photo_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., media_type: _Optional[str] = ..., image: _Optional[bytes] = ..., taken_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PartnerRecord(_message.Message):
    __slots__ = ("record_id", "record_type", "owning_ori", "event_time", "name", "date_of_birth", "addresses", "identifiers", "activity_number", "offense", "match_score")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    OWNING_ORI_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OFFENSE_FIELD_NUMBER: _ClassVar[int]
    MATCH_SCORE_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    record_type: PartnerRecordType
    owning_ori: str
    event_time: _timestamp_pb2.Timestamp
    name: PersonName
    date_of_birth: str
    addresses: _containers.RepeatedCompositeFieldContainer[PostalAddress]
    identifiers: _containers.RepeatedCompositeFieldContainer[PersonIdentifier]
    activity_number: str
    offense: str
    match_score: float
    def __init__(self, record_id: _Optional[str] = ..., record_type: _Optional[_Union[PartnerRecordType, str]] = ..., owning_ori: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[_Union[PersonName, _Mapping]] = ..., date_of_birth: _Optional[str] = ..., addresses: _Optional[_Iterable[_Union[PostalAddress, _Mapping]]] = ..., identifiers: _Optional[_Iterable[_Union[PersonIdentifier, _Mapping]]] = ..., activity_number: _Optional[str] = ..., offense: _Optional[str] = ..., match_score: _Optional[float] = ...) -> None: ...
