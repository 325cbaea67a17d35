"""The ticketing worker: owns tickets, their conversation associations, accounts' policy and pipelines (T1-T10)."""
