"""A real ``cumulo s3`` on loopback next to a real management server, and users with keys.

The cloud server creates the accounts and keys (createAccount, registerUserKeys) exactly as
an operator would; the S3 process reads them from the same cloud database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.support.cloud import Cloud, Keys, free_port, make_cloud


@dataclass
class S3Server:
    cloud: Cloud
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path("/dev/null"))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def blob_dir(self) -> Path:
        return self.cloud.data_dir / "blobs"

    def start(self) -> None:
        self.log_path = self.cloud.data_dir / f"s3-{time.time_ns()}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cumulo", "s3"],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3 exited: {self.log_path.read_text()[-3000:]}")
            try:
                httpx.get(self.endpoint, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("s3 did not come up in 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def client(self, keys: Keys, **config: Any) -> Any:
        """A boto3 S3 client with default settings (checksums and all) but our endpoint."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=keys.api_key,
            aws_secret_access_key=keys.secret,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, **config),
        )


def _root_domain(cloud: Cloud) -> str:
    admin = cloud.call("listUsers", username="admin", listall="true")["user"][0]
    return str(admin["domainid"])


def new_user(cloud: Cloud) -> Keys:
    """A new User-type account with one user and a key pair."""
    name = f"s3u-{uuid.uuid4().hex[:10]}"
    cloud.call(
        "createAccount",
        account=name,
        username=name,
        password=f"pw-{uuid.uuid4().hex}",
        firstname="Sam",
        lastname="Three",
        email=f"{name}@example.test",
        accounttype=0,
        domainid=_root_domain(cloud),
    )
    user = cloud.call("listUsers", username=name, listall="true")["user"][0]
    body = cloud.call("registerUserKeys", id=user["id"])["userkeys"]
    return Keys(body["apikey"], body["secretkey"])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    data_dir = tmp_path_factory.mktemp("s3cloud")
    cloud = make_cloud(data_dir)
    cloud.start()
    port = free_port()
    env = {
        **cloud.env,
        "CUMULO_S3__PORT": str(port),
        # Tests watch the collector reclaim blobs, so it runs often with a short leeway.
        "CUMULO_S3__GC_LEEWAY_SECONDS": "1",
        "CUMULO_S3__GC_INTERVAL_SECONDS": "0.5",
        "CUMULO_S3__USAGE_FLUSH_SECONDS": "0.5",
        # A lifecycle "day" is one second here, applied twice a second.
        "CUMULO_S3__LIFECYCLE_INTERVAL_SECONDS": "0.5",
        "CUMULO_S3__LIFECYCLE_DAY_SECONDS": "1",
    }
    server = S3Server(cloud, port, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        cloud.stop()


@pytest.fixture(scope="session")
def alice_keys(s3_server: S3Server) -> Keys:
    return new_user(s3_server.cloud)


@pytest.fixture(scope="session")
def bob_keys(s3_server: S3Server) -> Keys:
    return new_user(s3_server.cloud)


@pytest.fixture(scope="session")
def s3(s3_server: S3Server, alice_keys: Keys) -> Any:
    return s3_server.client(alice_keys)


@pytest.fixture(scope="session")
def s3_bob(s3_server: S3Server, bob_keys: Keys) -> Any:
    return s3_server.client(bob_keys)


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A fresh bucket of alice's, emptied (every version) and deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete(s3, name)


def empty_and_delete(s3: Any, name: str) -> None:
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    del items
    os.environ.pop("AWS_PROFILE", None)
