"""The tests drive Ticketflow with the same driver as the demo (ticketflow.driver)."""

from ticketflow.driver import WATCHED, Driver as System, new_id

__all__ = ["WATCHED", "System", "new_id"]
