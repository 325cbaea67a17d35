"""Ticketflow: a customer-support inbox with tickets, as message-driven workers over Kafka."""
