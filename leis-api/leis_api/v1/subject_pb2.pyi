from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Purpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PURPOSE_UNSPECIFIED: _ClassVar[Purpose]
    PURPOSE_CRIMINAL_LAW_ENFORCEMENT: _ClassVar[Purpose]
    PURPOSE_NATIONAL_SECURITY: _ClassVar[Purpose]
    PURPOSE_EMPLOYMENT_BACKGROUND_CHECK: _ClassVar[Purpose]
    PURPOSE_LICENSING: _ClassVar[Purpose]
    PURPOSE_BENEFITS_ELIGIBILITY: _ClassVar[Purpose]

class QueryCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_CATEGORY_UNSPECIFIED: _ClassVar[QueryCategory]
    QUERY_CATEGORY_NAME: _ClassVar[QueryCategory]
    QUERY_CATEGORY_IDENTIFIER: _ClassVar[QueryCategory]
    QUERY_CATEGORY_ADDRESS: _ClassVar[QueryCategory]
    QUERY_CATEGORY_INCIDENT: _ClassVar[QueryCategory]
PURPOSE_UNSPECIFIED: Purpose
PURPOSE_CRIMINAL_LAW_ENFORCEMENT: Purpose
PURPOSE_NATIONAL_SECURITY: Purpose
PURPOSE_EMPLOYMENT_BACKGROUND_CHECK: Purpose
PURPOSE_LICENSING: Purpose
PURPOSE_BENEFITS_ELIGIBILITY: Purpose
QUERY_CATEGORY_UNSPECIFIED: QueryCategory
QUERY_CATEGORY_NAME: QueryCategory
QUERY_CATEGORY_IDENTIFIER: QueryCategory
QUERY_CATEGORY_ADDRESS: QueryCategory
QUERY_CATEGORY_INCIDENT: QueryCategory

class SubjectQuery(_message.Message):
    __slots__ = ("name", "identifier", "address", "incident")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    name: NameCriteria
    identifier: IdentifierCriteria
    address: AddressCriteria
    incident: IncidentCriteria
    def __init__(self, name: _Optional[_Union[NameCriteria, _Mapping]] = ..., identifier: _Optional[_Union[IdentifierCriteria, _Mapping]] = ..., address: _Optional[_Union[AddressCriteria, _Mapping]] = ..., incident: _Optional[_Union[IncidentCriteria, _Mapping]] = ...) -> None: ...

class NameCriteria(_message.Message):
    __slots__ = ("full_name", "first_name", "middle_name", "last_name", "date_of_birth")
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    MIDDLE_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    full_name: str
    first_name: str
    middle_name: str
    last_name: str
    date_of_birth: str
    def __init__(self, full_name: _Optional[str] = ..., first_name: _Optional[str] = ..., middle_name: _Optional[str] = ..., last_name: _Optional[str] = ..., date_of_birth: _Optional[str] = ...) -> None: ...

class IdentifierCriteria(_message.Message):
    __slots__ = ("ssn", "passport_number", "alien_number", "encounter_id", "driver_license_number", "driver_license_state", "passport_country")
    SSN_FIELD_NUMBER: _ClassVar[int]
    PASSPORT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ALIEN_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ENCOUNTER_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_LICENSE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DRIVER_LICENSE_STATE_FIELD_NUMBER: _ClassVar[int]
    PASSPORT_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    ssn: str
    passport_number: str
    alien_number: str
    encounter_id: str
    driver_license_number: str
    driver_license_state: str
    passport_country: str
    def __init__(self, ssn: _Optional[str] = ..., passport_number: _Optional[str] = ..., alien_number: _Optional[str] = ..., encounter_id: _Optional[str] = ..., driver_license_number: _Optional[str] = ..., driver_license_state: _Optional[str] = ..., passport_country: _Optional[str] = ...) -> None: ...

class AddressCriteria(_message.Message):
    __slots__ = ("full_address", "street_number", "street_name", "secondary_unit", "city", "state", "country", "postal_code", "phone_number")
    FULL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STREET_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STREET_NAME_FIELD_NUMBER: _ClassVar[int]
    SECONDARY_UNIT_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    full_address: str
    street_number: str
    street_name: str
    secondary_unit: str
    city: str
    state: str
    country: str
    postal_code: str
    phone_number: str
    def __init__(self, full_address: _Optional[str] = ..., street_number: _Optional[str] = ..., street_name: _Optional[str] = ..., secondary_unit: _Optional[str] = ..., city: _Optional[str] = ..., state: _Optional[str] = ..., country: _Optional[str] = ..., postal_code: _Optional[str] = ..., phone_number: _Optional[str] = ...) -> None: ...

class IncidentCriteria(_message.Message):
    __slots__ = ("activity_number", "activity_description")
    ACTIVITY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    activity_number: str
    activity_description: str
    def __init__(self, activity_number: _Optional[str] = ..., activity_description: _Optional[str] = ...) -> None: ...

class EndUser(_message.Message):
    __slots__ = ("user_id", "ori")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORI_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    ori: str
    def __init__(self, user_id: _Optional[str] = ..., ori: _Optional[str] = ...) -> None: ...
