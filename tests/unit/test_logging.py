"""Structured log lines carry request and job ids and never a secret."""

from __future__ import annotations

import json
import logging

import pytest

from cumulo.common.logging import JsonFormatter, KeyValueFormatter, bound, scrub


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_line_has_ids_and_masks_secret_fields() -> None:
    with bound(request_id="req-1", job_id="job-2"):
        line = JsonFormatter().format(
            _record("call", password="hunter2", params={"secretkey": "S", "name": "n"})
        )
    fields = json.loads(line)
    assert fields["request_id"] == "req-1"
    assert fields["job_id"] == "job-2"
    assert fields["password"] == "***"
    assert fields["params"] == {"secretkey": "***", "name": "n"}
    assert "hunter2" not in line


@pytest.mark.parametrize(
    "text", ["signature=abc%2F&x=1", "url?sessionkey=XYZ", "password=pw secretkey=k2"]
)
def test_secret_pairs_inside_messages_are_masked(text: str) -> None:
    out = scrub(text)
    for secret in ("abc%2F", "XYZ", "pw", "k2"):
        assert f"={secret}" not in out


def test_key_value_format_quotes_values_with_spaces() -> None:
    line = KeyValueFormatter().format(_record("two words"))
    assert 'msg="two words"' in line
    assert "level=info" in line
