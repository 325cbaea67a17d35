"""The worker process's HTTP endpoint: `/metrics` (Prometheus text format), `/health/live` and
`/health/ready` (JSON, 200 or 503: Kubernetes probes). A small asyncio server on the worker's own event
loop, so a blocked loop fails the liveness probe; no web framework. One per process."""

from __future__ import annotations

import asyncio
import json
import logging

from workers.observability.health import Health, Report
from workers.observability.metrics import Metrics

log = logging.getLogger("ticketflow.observability")

REQUEST_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 8192
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class ObservabilityServer:
    """Serves `metrics` and `health` on `host:port` (port 0: any free port; see `port` once started)."""

    def __init__(self, metrics: Metrics, health: Health, host: str = "0.0.0.0", port: int = 8080) -> None:
        self.metrics = metrics
        self.health = health
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose when started with 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        log.info("metrics and health on http://%s:%d (/metrics, /health/live, /health/ready)", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            status, content_type, body = await self.respond(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        try:
            writer.write(f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def respond(self, head: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request head (`GET /path HTTP/1.1 ...`)."""
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or len(head) > MAX_REQUEST_BYTES:
            return 400, "text/plain", b"bad request\n"
        method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
        path = target.split("?", 1)[0]
        if path not in ("/metrics", "/health/live", "/health/ready"):
            return 404, "text/plain", b"not found: try /metrics, /health/live or /health/ready\n"
        if method != "GET":
            return 405, "text/plain", b"GET only\n"
        if path == "/metrics":
            body, content_type = self.metrics.render()
            return 200, content_type, body
        report = self.health.live() if path == "/health/live" else await self.health.ready()
        return _health_response(report)


def _health_response(report: Report) -> tuple[int, str, bytes]:
    body = json.dumps(report.as_json(), sort_keys=True).encode() + b"\n"
    return (200 if report.ok else 503), "application/json", body
