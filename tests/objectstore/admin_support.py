"""Signed admin API calls for the tests: the CLI's own client (botocore's SigV4 signer)."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from cumulo.cli.s3admin import AdminClient
from tests.objectstore.conftest import S3Server
from tests.support.cloud import Keys


def admin_client(server: S3Server, keys: Keys) -> AdminClient:
    return AdminClient(server.endpoint, keys.api_key, keys.secret)


def new_s3_user(client: AdminClient, **extra: Any) -> dict[str, Any]:
    """A fresh S3-only user (unique name and email); the answer carries its secret."""
    tag = uuid.uuid4().hex[:10]
    body = {"name": f"u-{tag}", "email": f"u-{tag}@example.test", **extra}
    response = client.request("POST", "users", body=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def user_keys(user: dict[str, Any]) -> Keys:
    return Keys(user["key_id"], user["key_secret"])


def meta_rows(server: S3Server, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(server.cloud.data_dir / "s3meta.db")
    try:
        return list(db.execute(sql, args).fetchall())
    finally:
        db.close()
