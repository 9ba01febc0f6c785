from leis_api.v1 import records_pb2 as _records_pb2
from leis_api.v1 import subject_pb2 as _subject_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchRequest(_message.Message):
    __slots__ = ("subject", "purpose", "requesting_user", "request_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    REQUESTING_USER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    subject: _subject_pb2.SubjectQuery
    purpose: _subject_pb2.Purpose
    requesting_user: _subject_pb2.EndUser
    request_id: str
    def __init__(self, subject: _Optional[_Union[_subject_pb2.SubjectQuery, _Mapping]] = ..., purpose: _Optional[_Union[_subject_pb2.Purpose, str]] = ..., requesting_user: _Optional[_Union[_subject_pb2.EndUser, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("agency_id", "records")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    agency_id: str
    records: _containers.RepeatedCompositeFieldContainer[_records_pb2.PartnerRecord]
    def __init__(self, agency_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[_records_pb2.PartnerRecord, _Mapping]]] = ...) -> None: ...
