"""The FastStream Kafka broker of a worker process, with its subscribers started together.

FastStream starts a broker's subscribers one after another, and aiokafka's `consumer.start()` returns
only once the consumer holds its partitions. A worker has up to four inputs, each with
`TICKETFLOW_CONSUMERS_PER_INPUT` consumers: started in turn, every consumer after the first of its group
makes the group rebalance, and waits until the consumers already in it notice on their next heartbeat
and join again. A worker with two consumers per input took 8 s of waiting (0.6 s of CPU) to start, so a
worker restarted after a crash stayed away longer than the group's session timeout.

Started together, the consumers of one group join the same rebalance, and a restarted static member
(ADR 13) is back before its session expires. FastStream already stops subscribers together.
"""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker

from workers import faststream_fixes

faststream_fixes.install()  # an idle batch subscriber polls again at once: see that module


class WorkerBroker(KafkaBroker):
    async def start(self) -> None:
        """Connect, start every subscriber at once, then the publishers. When any subscriber fails to
        start, all are stopped again and the first error raised: the caller may simply try again."""
        await self.connect()
        outcomes = await asyncio.gather(*(sub.start() for sub in self.subscribers), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]
        for publisher in self.publishers:
            await publisher.start()
        self.running = True
