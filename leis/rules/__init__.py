"""Pure rules over plain data: request validation, purpose and ORI checks, rate limiting, release and merge."""
