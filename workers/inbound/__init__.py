"""The inbound worker: channels -> conversations. Owns contacts, conversations and messages (C1-C7)."""
