"""Structured logs that carry the request id and job id, and never a secret.

Context travels in contextvars so that code deep in a service logs the ids without being
handed them. Every record passes through a scrubber: values of keys that name secrets are
replaced, and secret-looking ``key=value`` pairs inside messages are masked, because a log
line that leaks a signature or session key is a credential leak.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

SECRET_NAMES = frozenset(
    {
        "password",
        "currentpassword",
        "secretkey",
        "secret_key",
        "signature",
        "sessionkey",
        "session_key",
        "apikey_secret",
        "token",
        "authorization",
        "cookie",
    }
)
_SECRET_PAIR = re.compile(
    r"(?i)\b(password|currentpassword|secretkey|signature|sessionkey|token)=([^&\s\"']+)"
)
MASK = "***"


def scrub(value: Any) -> Any:
    """Return ``value`` with every secret masked, recursing through dicts and lists."""
    if isinstance(value, dict):
        return {k: MASK if str(k).lower() in SECRET_NAMES else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}={MASK}", value)
    return value


_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {
    "message",
    "asctime",
    "color_message",
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": scrub(record.getMessage()),
    }
    rid, jid = request_id_var.get(), job_id_var.get()
    if rid:
        fields["request_id"] = rid
    if jid:
        fields["job_id"] = jid
    for key, value in record.__dict__.items():
        if key not in _RESERVED and not key.startswith("_"):
            fields[key] = MASK if key.lower() in SECRET_NAMES else scrub(value)
    if record.exc_info:
        fields["exc"] = scrub(logging.Formatter().formatException(record.exc_info))
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for key, value in _fields(record).items():
            text = str(value)
            if not text or any(c in text for c in ' "='):
                text = json.dumps(text)
            parts.append(f"{key}={text}")
        return " ".join(parts)


def configure_logging(level: str = "INFO", fmt: str = "json", file: str = "") -> None:
    handler: logging.Handler = (
        logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints the raw query string, which carries signatures and keys.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("uvicorn.error").propagate = True
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


@contextmanager
def bound(request_id: str | None = None, job_id: str | None = None) -> Iterator[None]:
    """Bind ids to every log line written inside the block."""
    tokens = []
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    if job_id is not None:
        tokens.append((job_id_var, job_id_var.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
