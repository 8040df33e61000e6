"""ListObjects V1 and V2: prefix, delimiter, markers, continuation, start-after, max-keys,
encoding-type=url, fetch-owner; paginated listings must visit every key exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

KEYS = [
    "a.txt",
    "b/1.txt",
    "b/2.txt",
    "b/c/3.txt",
    "d/4.txt",
    "e.txt",
    "e/5.txt",
    "f%2Fg",
    "h i+j",
]


@pytest.fixture
def filled(s3: Any, bucket: str) -> str:
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), KEYS))
    return bucket


def test_v2_delimiter_and_prefix(s3: Any, filled: str) -> None:
    top = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "e.txt", "f%2Fg", "h i+j"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["b/", "d/", "e/"]
    assert top["KeyCount"] == 7
    sub = s3.list_objects_v2(Bucket=filled, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in sub["Contents"]] == ["b/1.txt", "b/2.txt"]
    assert [p["Prefix"] for p in sub["CommonPrefixes"]] == ["b/c/"]
    assert "Owner" not in sub["Contents"][0]
    owned = s3.list_objects_v2(Bucket=filled, Prefix="b/1", FetchOwner=True)
    assert owned["Contents"][0]["Owner"]["ID"]
    assert owned["Contents"][0]["Size"] == len(b"b/1.txt")


@pytest.mark.parametrize("page_size", [1, 2, 3, 1000])
@pytest.mark.parametrize("delimiter", ["", "/"])
def test_v2_pagination_visits_each_once(
    s3: Any, filled: str, page_size: int, delimiter: str
) -> None:
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": filled, "MaxKeys": page_size, "Delimiter": delimiter}
    while True:
        page = s3.list_objects_v2(**kwargs)
        items = [o["Key"] for o in page.get("Contents", [])]
        items += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert len(items) <= page_size
        seen += items
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    expected = KEYS if not delimiter else ["a.txt", "b/", "d/", "e.txt", "e/", "f%2Fg", "h i+j"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("delimiter", ["", "/"])
def test_v1_marker_pagination(s3: Any, filled: str, delimiter: str) -> None:
    paginator = s3.get_paginator("list_objects")
    seen: list[str] = []
    for page in paginator.paginate(
        Bucket=filled, Delimiter=delimiter, PaginationConfig={"PageSize": 2}
    ):
        seen += [o["Key"] for o in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    expected = KEYS if not delimiter else ["a.txt", "b/", "d/", "e.txt", "e/", "f%2Fg", "h i+j"]
    assert sorted(seen) == sorted(expected)


def test_start_after_and_marker(s3: Any, filled: str) -> None:
    after = s3.list_objects_v2(Bucket=filled, StartAfter="b/2.txt")
    assert [o["Key"] for o in after["Contents"]] == KEYS[3:]
    v1 = s3.list_objects(Bucket=filled, Marker="e.txt", MaxKeys=2)
    assert [o["Key"] for o in v1["Contents"]] == ["e/5.txt", "f%2Fg"]
    assert v1["IsTruncated"] is True


def test_max_keys_zero_and_invalid(s3: Any, filled: str) -> None:
    page = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert page["KeyCount"] == 0 and page["IsTruncated"] is False
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=filled, MaxKeys=-1)
    assert err.value.response["Error"]["Code"] in ("InvalidArgument", "ParamValidation")


def test_encoding_type_url_raw(s3_server: Any, s3: Any, filled: str) -> None:
    """The raw XML carries percent-encoded keys when asked; boto3 decodes them back."""
    url = s3.generate_presigned_url(
        "list_objects_v2", Params={"Bucket": filled, "EncodingType": "url", "Prefix": "h"}
    )
    body = httpx.get(url).text
    assert "<Key>h%20i%2Bj</Key>" in body, (url, body)
    assert "<EncodingType>url</EncodingType>" in body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=filled, Prefix="h")["Contents"]]
    assert keys == ["h i+j"]


def test_many_keys_past_one_thousand(s3: Any, bucket: str) -> None:
    keys = [f"k/{i:05d}" for i in range(1105)]
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b""), keys))
    seen = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    assert seen == keys
    first = s3.list_objects_v2(Bucket=bucket)
    assert first["KeyCount"] == 1000 and first["IsTruncated"] is True
    # Clean up quickly for the fixture.
    for i in range(0, len(keys), 1000):
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
        )
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
