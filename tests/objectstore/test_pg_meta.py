"""The metadata store on PostgreSQL (a farm's setup): the same operations, and keys listed in
S3's byte order whatever the database's collation."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.objectstore.conftest import S3Server, new_user
from tests.support.cloud import free_port, make_cloud

pytestmark = pytest.mark.pg


@pytest.fixture(scope="module")
def pg_s3(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    from tests.support.postgres import database_url_for

    data_dir = tmp_path_factory.mktemp("s3pg")
    cloud = make_cloud(data_dir)
    cloud.start()
    port = free_port()
    meta_url = database_url_for(request, f"s3meta{uuid.uuid4().hex[:8]}")
    server = S3Server(
        cloud, port, {**cloud.env, "CUMULO_S3__PORT": str(port), "CUMULO_S3__META_URL": meta_url}
    )
    try:
        server.start()
        yield server.client(new_user(cloud))
    finally:
        server.stop()
        cloud.stop()


def test_objects_listing_multipart_versions_on_pg(pg_s3: Any) -> None:
    s3 = pg_s3
    bucket = f"pg-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    keys = ["B", "a", "a/b", "a-b", "Ä", "z", "_x"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/"]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    data = os.urandom(6 * 1024 * 1024)
    p1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=data)
    p2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=2, Body=b"end")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == data + b"end"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="z", Body=b"v1")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="z")
    assert s3.get_object(Bucket=bucket, Key="z", VersionId=v1)["Body"].read() == b"v1"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="z")
    assert len(versions["Versions"]) == 2 and len(versions["DeleteMarkers"]) == 1
    for v in s3.list_object_versions(Bucket=bucket)["Versions"] + versions["DeleteMarkers"]:
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
