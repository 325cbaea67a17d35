"""Ticketflow's three workers (inbound, ticketing, sync) and the delivery core they share."""
