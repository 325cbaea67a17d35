"""The read side (Q1/Q2): narrow read-only queries over the workers' tables, for the agent's context panel."""
