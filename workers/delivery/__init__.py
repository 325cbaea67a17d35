"""The delivery core every worker shares: at-least-once in, exactly-once effect, dead letters, the outbox relay."""
