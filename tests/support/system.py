"""The tests drive Ticketflow with the same driver as the demo (ticketflow.driver)."""

from ticketflow.driver import WATCHED, new_id
from ticketflow.driver import Driver as System

__all__ = ["WATCHED", "System", "new_id"]
