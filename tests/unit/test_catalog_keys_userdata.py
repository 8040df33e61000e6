"""SSH key parsing and generation, and user data decoding, as pure functions."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from cumulo.services.catalog import sshkeys, userdata
from cumulo.services.errors import ParamError


def _openssh(key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def test_generated_pair_matches_and_is_rsa_2048() -> None:
    public, private = sshkeys.generate()
    key = serialization.load_pem_private_key(private.encode(), password=None)
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert _openssh(key.public_key()) == public  # type: ignore[arg-type]
    assert key.key_size == 2048  # type: ignore[union-attr]


def test_fingerprint_is_colon_md5_of_the_blob() -> None:
    line = _openssh(ed25519.Ed25519PrivateKey.generate().public_key())
    text, blob = sshkeys.parse_public_key(f"  {line} someone@host  ")
    assert text == line
    digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
    assert sshkeys.fingerprint(blob).replace(":", "") == digest
    assert len(sshkeys.fingerprint(blob).split(":")) == 16


def test_ecdsa_keys_are_accepted() -> None:
    line = _openssh(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert sshkeys.parse_public_key(line)[0] == line


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ssh-rsa",
        "ssh-dsa AAAAB3NzaC1kc3M=",
        "ssh-rsa not*base64",
        "ssh-ed25519 " + base64.b64encode(b"garbage").decode(),
    ],
)
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(ParamError):
        sshkeys.parse_public_key(text)


def test_a_key_of_one_type_labelled_as_another_is_refused() -> None:
    line = _openssh(ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ParamError):
        sshkeys.parse_public_key("ssh-rsa " + line.split()[1])


def test_user_data_decoding() -> None:
    assert userdata.decode(base64.b64encode(b"hi").decode(), 10) == b"hi"
    wrapped = base64.encodebytes(b"x" * 100).decode()  # line-wrapped, as encoders do
    assert userdata.decode(wrapped, 100) == b"x" * 100
    for bad in ("%%%", "", "YWJj$", base64.b64encode(b"x" * 11).decode()):
        with pytest.raises(ParamError):
            userdata.decode(bad, 10)


def test_user_data_params() -> None:
    assert userdata.normal_params([" a", "b ", "a"]) == "a,b"
    assert userdata.normal_params(None) is None
    with pytest.raises(ParamError):
        userdata.normal_params(["ok", "not ok"])
