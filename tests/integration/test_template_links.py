"""Hosts fetch templates from a management server through signed, expiring links; anything
else (no signature, a tampered one, an expired link, another template's link) gets 403."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from cumulo.common.secretbox import SecretBox, load_or_create_key
from cumulo.services.storage import links
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files


@pytest.fixture(scope="module")
def sim(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimZone]:
    with http_files({"sim.qcow2": IMAGE}, tmp_path_factory.mktemp("linkfiles")) as url:
        yield build(cloud, tmp_path_factory.mktemp("linkwork"), url, hosts=1)


def box(cloud: Cloud) -> SecretBox:
    return SecretBox(load_or_create_key(cloud.data_dir / "master.key"))


def url(cloud: Cloud, link: str) -> str:
    return f"http://127.0.0.1:{cloud.port}{link}"


def test_a_signed_link_streams_the_template_with_ranges(cloud: Cloud, sim: SimZone) -> None:
    link = links.template_link(box(cloud), sim.template["id"], ttl_s=60)
    resp = httpx.get(url(cloud, link))
    assert resp.status_code == 200 and resp.content == IMAGE
    part = httpx.get(url(cloud, link), headers={"Range": "bytes=4-9"})
    assert part.status_code == 206 and part.content == IMAGE[4:10]


def test_bad_links_are_refused(cloud: Cloud, sim: SimZone) -> None:
    good = links.template_link(box(cloud), sim.template["id"], ttl_s=60)
    path, query = good.split("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    tampered_sig = params["signature"][:-1] + ("0" if params["signature"][-1] != "0" else "1")
    expired = links.template_link(box(cloud), sim.template["id"], ttl_s=-5)
    other = links.template_link(box(cloud), "00000000-0000-4000-8000-000000000000", ttl_s=60)
    wrong_key = links.template_link(SecretBox(Fernet.generate_key()), sim.template["id"])
    for bad in (
        path,
        f"{path}?expires={params['expires']}&signature={tampered_sig}",
        f"{path}?expires={int(params['expires']) + 100}&signature={params['signature']}",
        expired,
        f"{urlsplit(other).path}?{query}",
        wrong_key,
    ):
        resp = httpx.get(url(cloud, bad))
        assert resp.status_code == 403, bad
        assert resp.content != IMAGE
    assert time.time() < int(params["expires"])
    missing = httpx.get(url(cloud, other))
    assert missing.status_code == 404
