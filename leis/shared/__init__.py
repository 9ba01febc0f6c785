"""State several broker replicas must share for a control to hold: rate and concurrency budgets
and the agreement registry, in the PostgreSQL database of the shared audit log."""
