"""``cumulo s3 admin …``: the S3 admin API (``/_admin/`` on the S3 port) from the shell.

It is a client like any other: requests go over HTTP, SigV4-signed (botocore's S3 signer)
with an admin's keys: a cloud root admin's API and secret keys, or an S3-only admin user's.
Keys come from ``--access-key``/``--secret-key`` or ``CUMULO_S3_ACCESS_KEY`` /
``CUMULO_S3_SECRET_KEY``; the endpoint from ``--endpoint`` or ``CUMULO_S3_ENDPOINT`` (default:
this machine's ``[s3]`` host and port).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cumulo.common.settings import Settings

LIMITS = ("max_buckets", "max_bytes", "max_objects")


@dataclass
class AdminClient:
    """Signed calls to the admin API; answers are the decoded JSON (or raw XML text)."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    timeout: float = 30.0

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        xml: bool = False,
    ) -> httpx.Response:
        url = self.endpoint.rstrip("/") + "/_admin/" + path.lstrip("/")
        if query:
            url += "?" + urlencode(query)
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if xml:
            headers["Accept"] = "application/xml"
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        creds = Credentials(self.access_key, self.secret_key)
        S3SigV4Auth(creds, "s3", self.region).add_auth(signed)
        return httpx.request(
            method, url, content=data, headers=dict(signed.headers.items()), timeout=self.timeout
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise AdminError(response.status_code, response.text)
        if kwargs.get("xml"):
            return response.text
        return response.json()


class AdminError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


def register(admin: argparse.ArgumentParser) -> None:
    """Fill in the ``cumulo s3 admin`` parser (made by cli/s3.py)."""
    admin.add_argument("--endpoint", help="S3 endpoint (default: CUMULO_S3_ENDPOINT or [s3])")
    admin.add_argument("--access-key", help="an admin's key (default: CUMULO_S3_ACCESS_KEY)")
    admin.add_argument("--secret-key", help="its secret (default: CUMULO_S3_SECRET_KEY)")
    admin.add_argument("--xml", action="store_true", help="ask for XML instead of JSON")
    cmds = admin.add_subparsers(dest="admin_cmd", required=True)

    create = cmds.add_parser("create-user", help="create an S3-only user: prints its keys")
    create.add_argument("name")
    create.add_argument("email")
    create.add_argument("--admin", action="store_true", help="the user may call the admin API")
    _limit_args(create)
    create.set_defaults(admin_fn=_create)

    listing = cmds.add_parser("list-users", help="list S3-only users")
    listing.add_argument("--status", choices=("enabled", "disabled"))
    listing.set_defaults(admin_fn=_list)

    for name, fn, text in (
        ("show-user", _show, "show one user (key id or canonical id)"),
        ("enable-user", _enable, "enable a user"),
        ("disable-user", _disable, "disable a user: its keys stop working at once"),
        ("new-secret", _new_secret, "issue a new secret: the old one stops working"),
    ):
        one = cmds.add_parser(name, help=text)
        one.add_argument("user")
        one.set_defaults(admin_fn=fn)

    limits = cmds.add_parser(
        "set-limits", help="set an owner's limits (S3 user key, cloud API key or account UUID)"
    )
    limits.add_argument("owner")
    _limit_args(limits)
    limits.set_defaults(admin_fn=_set_limits)
    show_limits = cmds.add_parser("show-limits", help="an owner's limits and what it uses")
    show_limits.add_argument("owner")
    show_limits.set_defaults(admin_fn=_show_limits)

    usage = cmds.add_parser("usage", help="an owner's access and storage statistics")
    usage.add_argument("owner")
    usage.add_argument("--start", help="ISO 8601 time (default: a day ago)")
    usage.add_argument("--end", help="ISO 8601 time (default: an hour from now)")
    usage.add_argument("--no-access", action="store_true", help="leave access statistics out")
    usage.add_argument("--no-storage", action="store_true", help="leave storage statistics out")
    usage.set_defaults(admin_fn=_usage)


def _limit_args(parser: argparse.ArgumentParser) -> None:
    for name in LIMITS:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, help=f"{name} (-1: unlimited)")


def _limits(args: argparse.Namespace) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name in LIMITS:
        value = getattr(args, name)
        if value is not None:
            out[name] = None if value == -1 else value
    return out


def client_from(settings: Settings, args: argparse.Namespace) -> AdminClient:
    endpoint = args.endpoint or os.environ.get("CUMULO_S3_ENDPOINT")
    if not endpoint:
        endpoint = f"http://{settings.s3.host}:{settings.s3.port}"
    access = args.access_key or os.environ.get("CUMULO_S3_ACCESS_KEY")
    secret = args.secret_key or os.environ.get("CUMULO_S3_SECRET_KEY")
    if not access or not secret:
        raise SystemExit("cumulo s3 admin: an admin's --access-key and --secret-key are needed")
    return AdminClient(endpoint, access, secret, settings.s3.region)


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no request lines on stderr
    client = client_from(settings, args)
    try:
        result = args.admin_fn(client, args)
    except AdminError as err:
        sys.stderr.write(f"cumulo s3 admin: {err}\n")
        return 1
    except httpx.HTTPError as err:
        sys.stderr.write(f"cumulo s3 admin: {client.endpoint}: {err}\n")
        return 1
    sys.stdout.write(result if isinstance(result, str) else json.dumps(result, indent=2))
    sys.stdout.write("\n")
    return 0


def _user_path(ref: str) -> str:
    return "users/" + quote(ref, safe="")


def _create(c: AdminClient, a: argparse.Namespace) -> Any:
    body = {"name": a.name, "email": a.email, "admin": a.admin, **_limits(a)}
    return c.call("POST", "users", body=body, xml=a.xml)


def _list(c: AdminClient, a: argparse.Namespace) -> Any:
    return c.call("GET", "users", query={"status": a.status} if a.status else None, xml=a.xml)


def _show(c: AdminClient, a: argparse.Namespace) -> Any:
    return c.call("GET", _user_path(a.user), xml=a.xml)


def _enable(c: AdminClient, a: argparse.Namespace) -> Any:
    return c.call("PUT", _user_path(a.user), body={"status": "enabled"}, xml=a.xml)


def _disable(c: AdminClient, a: argparse.Namespace) -> Any:
    return c.call("PUT", _user_path(a.user), body={"status": "disabled"}, xml=a.xml)


def _new_secret(c: AdminClient, a: argparse.Namespace) -> Any:
    return c.call("PUT", _user_path(a.user), body={"new_key_secret": True}, xml=a.xml)


def _set_limits(c: AdminClient, a: argparse.Namespace) -> Any:
    path = "limits/" + quote(a.owner, safe="")
    return c.call("PUT", path, body=_limits(a), xml=a.xml)


def _show_limits(c: AdminClient, a: argparse.Namespace) -> Any:
    return c.call("GET", "limits/" + quote(a.owner, safe=""), xml=a.xml)


def _usage(c: AdminClient, a: argparse.Namespace) -> Any:
    query = {"access": str(not a.no_access).lower(), "storage": str(not a.no_storage).lower()}
    if a.start:
        query["start"] = a.start
    if a.end:
        query["end"] = a.end
    return c.call("GET", "usage/" + quote(a.owner, safe=""), query=query, xml=a.xml)
