"""The tests drive Ticketflow with the same driver as the demo (tools.driver)."""

from tools.driver import WATCHED, new_id
from tools.driver import Driver as System

__all__ = ["WATCHED", "System", "new_id"]
