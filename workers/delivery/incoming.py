"""What caused a record's effects when its sender sent no CloudEvents headers: an envelope from the
message's own identity, so everything one input causes shares one correlation id and names it as
cause (a redelivery gets the same one)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts.envelope import Envelope


def natural_envelope(message: Any) -> Envelope:
    """The envelope of a header-less message: `ce_id` = its natural id (command id, channel message id...)."""
    return Envelope(id=message.natural_id(), type=message.type, source="unknown", time=datetime.now(UTC),
                    subject=message.partition_key(), account_id=getattr(message, "account_id", None))
