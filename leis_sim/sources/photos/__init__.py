"""Biometric photo store parts: booking photographs keyed by EID/TECS subject id."""
