"""The tests watch the system with the same tools an operator has (ticketflow.observe)."""

from ticketflow.observe import WAIT_SECONDS, Probe, Seen, group_lag, settle

__all__ = ["WAIT_SECONDS", "Probe", "Seen", "group_lag", "settle"]
