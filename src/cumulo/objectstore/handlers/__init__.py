"""The S3 operations, routed by (level, method, sub-resource).

Level is "service" (no bucket), "bucket" or "object". The first sub-resource of the request
that a table names picks the handler; none picks the plain operation. A sub-resource S3 has
but we do not gets NotImplemented rather than being mistaken for the plain operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers import (
    attributes,
    bucket,
    config,
    copy,
    cors,
    delete_multi,
    listing,
    lock,
    multipart,
    object,
    post,
    public_block,
)
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response, S3Request

Handler = Callable[[Ctx], Awaitable[Response]]

UNSUPPORTED = frozenset(
    {
        "accelerate",
        "analytics",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "logging",
        "metrics",
        "notification",
        "ownershipControls",
        "replication",
        "requestPayment",
        "restore",
        "select",
        "torrent",
        "website",
    }
)


def _docs(kind: str) -> dict[str, Handler]:
    return {
        "GET": partial(config.get_document, kind=kind),
        "PUT": partial(config.put_document, kind=kind),
        "DELETE": partial(config.delete_document, kind=kind),
    }


BUCKET_SUB: dict[str, dict[str, Handler]] = {
    "location": {"GET": bucket.get_location},
    "versioning": {"GET": config.get_versioning, "PUT": config.put_versioning},
    "acl": {"GET": config.get_bucket_acl, "PUT": config.put_bucket_acl},
    "tagging": {
        "GET": config.get_bucket_tagging,
        "PUT": config.put_bucket_tagging,
        "DELETE": config.delete_bucket_tagging,
    },
    "cors": _docs("cors"),
    "lifecycle": _docs("lifecycle"),
    "policy": _docs("policy"),
    "uploads": {"GET": multipart.list_uploads},
    "versions": {"GET": listing.list_versions},
    "delete": {"POST": delete_multi.delete_objects},
    "policyStatus": {"GET": public_block.get_policy_status},
    "object-lock": {"GET": lock.get_configuration, "PUT": lock.put_configuration},
    "publicAccessBlock": {
        "GET": public_block.get_block,
        "PUT": public_block.put_block,
        "DELETE": public_block.delete_block,
    },
}
BUCKET_PLAIN: dict[str, Handler] = {
    "PUT": bucket.create_bucket,
    "HEAD": bucket.head_bucket,
    "DELETE": bucket.delete_bucket,
}
OBJECT_SUB: dict[str, dict[str, Handler]] = {
    "torrent": {"GET": object.no_torrent},
    "retention": {"GET": lock.get_retention, "PUT": lock.put_retention},
    "legal-hold": {"GET": lock.get_legal_hold, "PUT": lock.put_legal_hold},
    "attributes": {"GET": attributes.get_attributes},
    "acl": {"GET": config.get_object_acl, "PUT": config.put_object_acl},
    "tagging": {
        "GET": config.get_object_tagging,
        "PUT": config.put_object_tagging,
        "DELETE": config.delete_object_tagging,
    },
    "uploads": {"POST": multipart.initiate},
    "uploadId": {
        "GET": multipart.list_parts,
        "POST": multipart.complete,
        "DELETE": multipart.abort,
    },
}
OBJECT_PLAIN: dict[str, Handler] = {
    "GET": object.get_object,
    "HEAD": object.get_object,
    "DELETE": object.delete_object,
}


def route(req: S3Request) -> Handler:
    if req.bucket is None:
        if req.method == "GET":
            return bucket.list_buckets
        raise S3Error("MethodNotAllowed")
    names = [k for k, _ in req.query]
    if req.method == "OPTIONS":
        return cors.preflight
    # An object's ?torrent has its own answer (OBJECT_SUB); a bucket's is unsupported.
    if any(n in UNSUPPORTED and not (n == "torrent" and req.key) for n in names):
        raise S3Error("NotImplemented")
    if req.key is None:
        return _pick(names, req.method, BUCKET_SUB, _bucket_plain(req))
    copying = "x-amz-copy-source" in req.headers
    if req.method == "PUT" and req.has("uploadId") and req.has("partNumber"):
        return copy.upload_part_copy if copying else multipart.upload_part
    return _pick(names, req.method, OBJECT_SUB, _object_plain(copying))


def _pick(
    names: list[str],
    method: str,
    table: dict[str, dict[str, Handler]],
    plain: dict[str, Handler],
) -> Handler:
    for name in names:
        if name in table:
            handler = table[name].get(method)
            if handler is None:
                raise S3Error("MethodNotAllowed")
            return handler
    handler = plain.get(method)
    if handler is None:
        raise S3Error("MethodNotAllowed")
    return handler


def _bucket_plain(req: S3Request) -> dict[str, Handler]:
    get = listing.list_objects_v2 if req.arg("list-type") == "2" else listing.list_objects_v1
    return {**BUCKET_PLAIN, "GET": get, "POST": post.post_object}


def _object_plain(copying: bool) -> dict[str, Handler]:
    return {**OBJECT_PLAIN, "PUT": copy.copy_object if copying else object.put_object}
