"""LEXS-SR at the edge: a pure codec, a SOAP 1.1 endpoint and an outbound client, one chain."""
