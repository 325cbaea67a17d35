"""The tests watch the system with the same tools as the demo (tools.probe) and `ticketflow lag`."""

from ticketflow.lag import group_lag
from tools.probe import WAIT_SECONDS, Probe, Seen, settle

__all__ = ["WAIT_SECONDS", "Probe", "Seen", "group_lag", "settle"]
