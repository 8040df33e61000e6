"""Request signatures (reference §1.1): the server rule, and every known client's variant."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, quote_plus

import pytest
from cs import CloudStack
from libcloud.common.cloudstack import CloudStackConnection

from cumulo.api.cloudstack.signing import (
    canonical_strings,
    expired,
    java_encode,
    parse_expires,
    sign,
    sign_params,
    verify,
)

# The worked example of DOC dev.rst "How to sign an API call with Python" (reference §1.1).
DOC_KEY = "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg"
DOC_SECRET = (
    "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ"
)
DOC_STRING = (
    "apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg"
    "&command=listusers&response=json"
)
DOC_SIGNATURE = "TTpdDq/7j/J58XCRHomKoQXEQds="
SECRET = "s3cr3t-key_for-tests"
AWKWARD = "a b~c*d/e+f[g]h!'()é\u4e2d%7E\n"


def _hmac(secret: str, text: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    ).decode()


def marvin_sign(secret: str, params: dict[str, str]) -> str:
    """marvin's cloudstackConnection.__sign, re-written from the reference's description."""
    pairs = sorted(params.items(), key=lambda kv: kv[0].lower())
    text = "&".join(f"{k}={quote_plus(v, safe='*')}" for k, v in pairs)
    return _hmac(secret, text.lower().replace("+", "%20"))


def go_query_escape(value: str) -> str:
    """Go's url.QueryEscape: unreserved A-Za-z0-9-_.~ stay, space becomes '+'."""
    return quote(value, safe="-_.~").replace("%20", "+")


def cmk_sign(secret: str, params: dict[str, str]) -> str:
    """cmk's encodeRequestParams: sort.Strings, QueryEscape, '+'→'%20', '%2A'→'*'."""
    text = "&".join(f"{k}={go_query_escape(params[k])}" for k in sorted(params))
    text = text.replace("+", "%20").replace("%2A", "*")
    return _hmac(secret, text.lower())


def cs_sign(secret: str, params: dict[str, str]) -> str:
    """The real ``cs`` 5.2.0 signer."""
    data = dict(params)
    CloudStack(endpoint="http://127.0.0.1:1/client/api", key="k", secret=secret)._sign(data)
    return str(data["signature"])


def libcloud_sign(secret: str, params: dict[str, str]) -> str:
    """The real libcloud 3.9.1 signer."""
    conn = CloudStackConnection("k", secret, host="127.0.0.1")
    return bytes(conn._make_signature(dict(params))).decode()


def test_doc_worked_example_canonical_string_and_signature() -> None:
    params = {"command": "listUsers", "response": "json", "apikey": DOC_KEY}
    assert next(canonical_strings(params)) == DOC_STRING
    assert sign(DOC_SECRET, DOC_STRING) == DOC_SIGNATURE
    assert sign_params(DOC_SECRET, params) == DOC_SIGNATURE
    assert verify(DOC_SECRET, params, DOC_SIGNATURE)
    # The signature parameter itself is never part of what is signed.
    assert verify(DOC_SECRET, {**params, "signature": DOC_SIGNATURE}, DOC_SIGNATURE)


def test_doc_example_fails_with_another_secret_or_a_changed_value() -> None:
    params = {"command": "listUsers", "response": "json", "apikey": DOC_KEY}
    assert not verify(DOC_SECRET + "x", params, DOC_SIGNATURE)
    assert not verify(DOC_SECRET, {**params, "response": "xml"}, DOC_SIGNATURE)
    assert not verify(DOC_SECRET, {**params, "extra": "1"}, DOC_SIGNATURE)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a b", "a%20b"),
        ("~", "%7E"),
        ("*", "*"),
        ("/", "%2F"),
        ("+", "%2B"),
        ("a.b-c_d", "a.b-c_d"),
        ("[0]", "%5B0%5D"),
        ("é", "%C3%A9"),
        ("!'()", "%21%27%28%29"),
        ("x\n", "x%0A"),
    ],
)
def test_java_url_encoder_rule(value: str, encoded: str) -> None:
    assert java_encode(value) == encoded


def test_trailing_newline_is_encoded_by_the_server_rule() -> None:
    # A value ending in "\n" is not "plain": the server's own rule must escape it.
    params = {"command": "listUsers", "keyword": "abc\n"}
    assert next(canonical_strings(params)) == "command=listusers&keyword=abc%0a"


def test_server_rule_sorts_names_case_sensitively() -> None:
    params = {"b": "1", "Z": "2", "a": "3"}
    assert next(canonical_strings(params)) == "z=2&a=3&b=1"


@pytest.mark.parametrize(
    "signer",
    [marvin_sign, cmk_sign, cs_sign, libcloud_sign],
    ids=["marvin", "cmk", "cs", "libcloud"],
)
def test_every_client_variant_verifies(signer: object) -> None:
    params = {
        "command": "listUsers",
        "apiKey": "KEY",
        "response": "json",
        "keyword": AWKWARD,
        "tags[0].key": "k~[1]",
        "tags[0].value": "v w*x",
        "Zeta": "upper-case name",
    }
    signature = signer(SECRET, params)  # type: ignore[operator]
    assert verify(SECRET, params, signature)
    assert not verify(SECRET + "!", params, signature)
    assert not verify(SECRET, {**params, "keyword": AWKWARD + "x"}, signature)


def test_clients_really_diverge_from_the_server_rule() -> None:
    """The variants are needed: the strict Java rule alone rejects these clients."""
    params = {"command": "listUsers", "apiKey": "KEY", "keyword": "x~[y]"}
    strict = sign_params(SECRET, params)
    assert cs_sign(SECRET, params) != strict
    assert libcloud_sign(SECRET, params) != strict
    assert marvin_sign(SECRET, params) != strict
    assert cmk_sign(SECRET, params) != strict


def test_plus_sent_unencoded_arrives_as_space() -> None:
    params = {"command": "listUsers", "apiKey": "KEY"}
    signature = sign_params(SECRET, params)
    while "+" not in signature:  # find a params set whose signature has a "+"
        params["n"] = params.get("n", "") + "x"
        signature = sign_params(SECRET, params)
    assert verify(SECRET, params, signature.replace("+", " "))


def test_expires_rules() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert expired(None, now)
    assert expired("", now)
    assert expired("not-a-date", now)
    assert expired("2026-01-01T11:59:59+0000", now)
    assert not expired("2026-01-01T12:10:00+0000", now)
    # The zone offset counts: 13:05 at +0100 is 12:05 UTC, still ahead.
    assert not expired("2026-01-01T13:05:00+0100", now)
    assert expired("2026-01-01T13:05:00+0200", now)


def test_parse_expires_accepts_the_doc_and_cs_formats() -> None:
    doc = parse_expires("2011-10-10T12:00:00+0530")
    assert doc == datetime(2011, 10, 10, 6, 30, tzinfo=UTC)
    cs_style = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert parse_expires(cs_style) is not None
