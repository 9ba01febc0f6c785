"""The broker: server assembly, the interceptor chain (tracing → audit → identity → policy), the handlers and the fan-out to sources and partners."""
