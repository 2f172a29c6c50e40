"""Server reflection under both names, grpc.reflection.v1 and v1alpha, with method symbols.

grpcio-reflection serves only `grpc.reflection.v1alpha.ServerReflection`; newer tools (grpcurl,
ghz's protoreflect, Postman) ask `grpc.reflection.v1` first. The two protos are wire-identical
(v1 is v1alpha renamed), so one servicer answers both. protobuf's descriptor pool finds the
file of a service, message or enum but not of a method (`Service.Method`, the form ghz and
grpcurl's `describe` send): such a symbol is answered with its service's file.
"""

from collections.abc import Iterable
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer as _AsyncReflectionServicer

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)


class ReflectionServicer(_AsyncReflectionServicer):  # type: ignore[misc]
    """grpcio-reflection's aio servicer, resolving `package.Service.Method` to the service."""

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        return super()._file_containing_symbol(request, self.symbol(fully_qualified_name))

    def symbol(self, name: str) -> str:
        """The service's name for a method's full name; any other name as it is."""
        service, _, method = name.rpartition(".")
        try:
            found = self._pool.FindServiceByName(service)
        except KeyError:
            return name
        return service if method in found.methods_by_name else name


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection for service_names (and itself, under both names) on server."""
    servicer = ReflectionServicer((*service_names, *SERVICE_NAMES))
    methods = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers(
        tuple(grpc.method_handlers_generic_handler(name, methods) for name in SERVICE_NAMES)
    )
