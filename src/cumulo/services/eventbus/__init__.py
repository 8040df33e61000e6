"""The event bus: an outbox written with every change, fanned out to webhooks, RabbitMQ and
the push stream by dispatchers that any management server runs (reference §7.2)."""
