"""LEIS partner SDK: the leis.v1 contracts as typed gRPC stubs, the error vocabulary and a small client."""
