"""Publishing to RabbitMQ: a topic exchange, CloudStack's routing key, the payload as JSON.

The routing key is ``source.category.type.resourcetype.uuid`` (RabbitMQEventBus.java,
reference §7.2): dots inside a part become ``-`` so a part stays one word for topic patterns,
and a missing part is ``*``. Messages are persistent and published with confirms, so a task
is only marked done once the broker has the message.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pika  # type: ignore[import-untyped]

from cumulo.db.models_eventbus import OutboxEvent
from cumulo.services.eventbus.outbox import SOURCE


def _part(value: str | None) -> str:
    return "*" if not value else value.replace(".", "-")


def routing_key(event: OutboxEvent) -> str:
    parts = (SOURCE, event.category, event.type, event.resource_type, event.resource_uuid)
    return ".".join(_part(p) for p in parts)


class Publisher:
    """One connection per server, reopened after any failure; used from one thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._url = ""
        self._exchange = ""
        self._conn: Any = None
        self._channel: Any = None

    def _open(self, url: str, exchange: str) -> Any:
        same = self._url == url and self._exchange == exchange
        if self._channel is not None and same and self._channel.is_open:
            return self._channel
        self.close()
        params = pika.URLParameters(url)
        params.socket_timeout = 5
        params.blocked_connection_timeout = 5
        self._conn = pika.BlockingConnection(params)
        channel = self._conn.channel()
        channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
        channel.confirm_delivery()
        self._url, self._exchange, self._channel = url, exchange, channel
        return channel

    def publish(self, url: str, exchange: str, event: OutboxEvent, body: bytes) -> None:
        """Raises on any failure (the task is retried); returns once the broker confirmed."""
        with self._lock:
            try:
                channel = self._open(url, exchange)
                channel.basic_publish(
                    exchange=exchange,
                    routing_key=routing_key(event),
                    body=body,
                    properties=pika.BasicProperties(
                        content_type="application/json", delivery_mode=2, message_id=event.uuid
                    ),
                )
            except Exception:
                self.close()
                raise

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to tidy
                conn.close()
