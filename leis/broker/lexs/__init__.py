"""LEXS-SR at the broker's edge: the SOAP 1.1 endpoint and the outbound client, feeding the one chain."""
