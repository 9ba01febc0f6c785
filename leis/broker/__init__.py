"""The broker: server assembly, the interceptor chain, the handlers and the fan-out.

The chain is tracing → audit → identity → policy; the fan-out reaches sources and partners.
"""
