"""Pure rules over plain data: request validation, purpose and ORI, rate limits, release, merge."""
