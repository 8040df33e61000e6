"""CORS: the OPTIONS preflight, and the headers an actual cross-origin request gets back."""

from __future__ import annotations

from functools import lru_cache

from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.http import Response
from cumulo.objectstore.policy import cors


@lru_cache(maxsize=256)
def rules(text: str | None) -> tuple[cors.CorsRule, ...] | None:
    """The bucket's CORS rules, parsed once per distinct document."""
    if not text:
        return None
    try:
        return cors.parse_cors_xml(text.encode())
    except Exception:  # a stored document that no longer parses allows nothing
        return None


async def preflight(ctx: Ctx) -> Response:
    """OPTIONS is unauthenticated by design: browsers send no credentials with it."""
    bucket = await ctx.bucket()
    return Response(200, list(cors.preflight(rules(bucket.cors), ctx.req.headers)))


def response_headers(ctx: Ctx) -> list[tuple[str, str]]:
    origin = ctx.req.headers.get("origin")
    bucket = ctx.loaded_bucket
    if not origin or bucket is None or not bucket.cors or ctx.req.method == "OPTIONS":
        return []  # a preflight's answer carries its own
    # radosgw matches a request that names Access-Control-Request-Method on that method.
    method = ctx.req.headers.get("access-control-request-method", ctx.req.method)
    return list(cors.response_headers(rules(bucket.cors), origin, method))
