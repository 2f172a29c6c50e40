from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
POOL_AXIS_FIELD_NUMBER: _ClassVar[int]
pool_axis: _descriptor.FieldDescriptor
LABELED_AXIS_FIELD_NUMBER: _ClassVar[int]
labeled_axis: _descriptor.FieldDescriptor
