"""What every LEIS process shares, below the broker and the simulators.

Mutual TLS, tracing and the PII guard, logging, normalisation, errors, the state directory and the
vocabulary.
"""
