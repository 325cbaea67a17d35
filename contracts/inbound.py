"""What an upstream channel (email gateway, chat widget, WhatsApp connector) publishes."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from contracts.common import Channel, Contract
from contracts.topics import INBOUND_MESSAGES


class InboundMessage(Contract):
    """A customer's message as received by a channel. Publish it to the inbound topic, keyed by
    `account_id:channel:channel_thread_key` so one thread's messages stay in order."""

    TOPIC: ClassVar[str] = INBOUND_MESSAGES
    type: Literal["inbound.message"] = "inbound.message"
    account_id: str = Field(min_length=1, max_length=64, description="The Ticketflow account the channel belongs to.")
    channel: Channel = Field(description="The channel the message came in on.")
    channel_message_id: str = Field(
        min_length=1, max_length=512,
        description="The channel's own id of this message (e.g. the email Message-ID). "
                    "C2: redelivery with the same id is stored once.",
    )
    channel_thread_key: str = Field(
        min_length=1, max_length=512,
        description="The channel's thread identity (email thread root, chat session, phone number). "
                    "C1: same key, same conversation.",
    )
    sender_email: str | None = Field(default=None, max_length=320, description="The contact's email address, if known.")
    sender_phone: str | None = Field(default=None, max_length=32, description="The contact's phone number (E.164), if known.")
    sender_name: str | None = Field(default=None, max_length=200, description="The contact's display name.")
    subject: str | None = Field(default=None, max_length=500, description="Subject line (email, form).")
    text: str = Field(max_length=100_000, description="The message body as plain text.")
    sent_at: datetime = Field(description="When the contact sent it (timezone-aware).")

    @model_validator(mode="after")
    def _needs_a_sender(self) -> InboundMessage:
        if not (self.sender_email or self.sender_phone):
            raise ValueError("an inbound message needs sender_email or sender_phone to find the contact")
        if self.sent_at.tzinfo is None:
            raise ValueError("sent_at must carry a timezone")
        return self

    def partition_key(self) -> str:
        return f"{self.account_id}:{self.channel.value}:{self.channel_thread_key}"

    def natural_id(self) -> str:
        """The message's identity whatever the headers say (C2: one per account, channel and channel id)."""
        return f"inbound:{self.account_id}:{self.channel.value}:{self.channel_message_id}"
