"""The gRPC transport: decode, validate, dispatch, encode; no math."""
