"""Ticketflow's public language: the messages other services publish to and read from Kafka.

Every model here is a frozen pydantic v2 model with field descriptions; JSON Schema for each is
generated from the models by ``ticketflow schemas`` (see ``contracts.schema``), never hand-kept.
"""
