"""The lifecycle sync worker: owns no domain table; turns one slice's events into the other's commands (S1-S6)."""
