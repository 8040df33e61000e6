"""The event bus's settings (listConfigurations). CloudStack's names where it has them."""

from __future__ import annotations

from cumulo.services.config import ConfigKey, define


def _bool(name: str, description: str, default: str = "true") -> ConfigKey:
    return define(ConfigKey(name, "Advanced", "Boolean", default, description, group="Event Bus"))


PUBLISH_ACTION = _bool("publish.action.events", "enable or disable publishing of action events")
PUBLISH_ALERT = _bool("publish.alert.events", "enable or disable publishing of alert events")
PUBLISH_RESOURCE_STATE = _bool(
    "publish.resource.state.events", "enable or disable publishing of resource state events"
)
PUBLISH_USAGE = _bool("publish.usage.events", "enable or disable publishing of usage events")
PUBLISH_ASYNC_JOB = _bool(
    "publish.async.job.events", "enable or disable publishing of async job events"
)
DISPATCH_ENABLED = _bool(
    "event.bus.dispatch.enabled",
    "Whether this cloud's servers deliver outbox events to webhooks and RabbitMQ (undelivered "
    "events wait in the outbox while false)",
)
RABBITMQ_URL = define(
    ConfigKey(
        "event.bus.rabbitmq.url",
        "Advanced",
        "String",
        "",
        "AMQP URL of the RabbitMQ server events are published to (amqp://user:pass@host:port/"
        "vhost); empty disables RabbitMQ",
        group="Event Bus",
    )
)
RABBITMQ_EXCHANGE = define(
    ConfigKey(
        "event.bus.rabbitmq.exchange",
        "Advanced",
        "String",
        "cloudstack-events",
        "Name of the RabbitMQ topic exchange events are published to",
        group="Event Bus",
    )
)
WEBHOOK_TRIES = define(
    ConfigKey(
        "webhook.delivery.tries",
        "Advanced",
        "Integer",
        "3",
        "Number of tries to be made for a webhook delivery",
        group="Event Bus",
        min=1,
        max=100,
    )
)
WEBHOOK_TIMEOUT = define(
    ConfigKey(
        "webhook.delivery.timeout",
        "Advanced",
        "Integer",
        "10",
        "Wait timeout (in seconds) for a webhook delivery",
        group="Event Bus",
        min=1,
        max=300,
    )
)
WEBHOOK_ALLOWED_NETWORKS = define(
    ConfigKey(
        "webhook.allowed.target.networks",
        "Advanced",
        "String",
        "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
        "Comma-separated networks (CIDR) webhook payload URLs may resolve to; the server refuses "
        "any other target (server-side request forgery guard); 0.0.0.0/0,::/0 allows all",
        group="Event Bus",
    )
)
RETRY_BACKOFF = define(
    ConfigKey(
        "event.bus.retry.backoff",
        "Advanced",
        "Float",
        "2",
        "Seconds before the first retry of a failed delivery; doubled on each further try",
        group="Event Bus",
        min=0.05,
        max=3600,
    )
)
RETENTION_HOURS = define(
    ConfigKey(
        "event.bus.retention.hours",
        "Advanced",
        "Integer",
        "24",
        "Hours delivered outbox events and webhook deliveries are kept (the push stream can "
        "resume from a Last-Event-ID this old)",
        group="Event Bus",
        min=1,
    )
)
CPU_THRESHOLD = define(
    ConfigKey(
        "cluster.cpu.allocated.capacity.notificationthreshold",
        "Alert",
        "Float",
        "0.75",
        "Percentage (as a value between 0 and 1) of cpu utilization above which alerts will be "
        "sent about low cpu available.",
        group="Event Bus",
        min=0,
        max=1,
    )
)
MEMORY_THRESHOLD = define(
    ConfigKey(
        "cluster.memory.allocated.capacity.notificationthreshold",
        "Alert",
        "Float",
        "0.75",
        "Percentage (as a value between 0 and 1) of memory utilization above which alerts will "
        "be sent about low memory available.",
        group="Event Bus",
        min=0,
        max=1,
    )
)
CAPACITY_CHECK_PERIOD = define(
    ConfigKey(
        "capacity.check.period",
        "Advanced",
        "Integer",
        "300000",
        "The interval in milliseconds between capacity checks",
        group="Event Bus",
        min=500,
    )
)
