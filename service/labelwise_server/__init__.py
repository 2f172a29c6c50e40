"""labelwise server: active-learning query selection behind a gRPC API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("labelwise-server")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
