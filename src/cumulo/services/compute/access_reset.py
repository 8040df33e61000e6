"""Getting into a VM again: resetPasswordForVirtualMachine, resetSSHKeyForVirtualMachine,
getVMPassword.

Both resets need the VM Stopped (CloudStack's rule: the guest picks the new credentials up
from the metadata and password services at its next boot). A password is kept sealed with the
cloud's SecretBox and shown in clear once, in the reset job's result. ``getVMPassword`` never
shows it in clear: it returns the password encrypted with the public half of the VM's SSH key
pair (RSA, PKCS#1 v1.5, base64), as CloudStack does, so only the holder of the private key —
who is the owner, not the cloud — can read it (``cloudmonkey``/the UI decrypt it locally).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy.orm import Session

from cumulo.common.ids import new_password
from cumulo.common.secretbox import SecretBox
from cumulo.db.models import Account
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_images import Template
from cumulo.services.catalog import sshkeys
from cumulo.services.compute.states import State
from cumulo.services.errors import ParamError

PASSWORD_LENGTH = 12


def _stopped(vm: VirtualMachine, what: str) -> None:
    if vm.state != State.STOPPED:
        raise ParamError(
            f"Unable to reset the {what} of VM {vm.name}: it is in state {vm.state}; stop it first"
        )


def password_enabled(session: Session, vm: VirtualMachine) -> bool:
    template = session.get(Template, vm.template_id)
    return bool(template is not None and template.password_enabled)


def reset_password(
    session: Session, vm: VirtualMachine, box: SecretBox, password: str | None = None
) -> None:
    """A new password (random unless given) for a Stopped VM of a password-enabled template."""
    _stopped(vm, "password")
    if not password_enabled(session, vm):
        raise ParamError(
            f"Fail to reset password for the virtual machine {vm.name}: its template is not "
            "password enabled"
        )
    if password is not None and not password.strip():
        raise ParamError("The new password can not be empty")
    vm.password = box.seal(password or new_password(PASSWORD_LENGTH))
    session.flush()


def reset_keys(
    session: Session, vm: VirtualMachine, owner: Account, names: Sequence[str], box: SecretBox
) -> bool:
    """Replace the VM's key pairs with the owner's named ones; True when a new password was
    made too (a password-enabled template gets one, as CloudStack does on a key reset)."""
    _stopped(vm, "SSH key")
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not wanted:
        raise ParamError("Please provide a key pair name (keypair or keypairs)")
    for name in wanted:
        if sshkeys.find_by_name(session, owner, name) is None:
            raise ParamError(f"A key pair with name '{name}' does not exist for the VM's account")
    vm.keypairs = wanted
    renewed = password_enabled(session, vm)
    if renewed:
        vm.password = box.seal(new_password(PASSWORD_LENGTH))
    session.flush()
    return renewed


def encrypted_password(session: Session, vm: VirtualMachine, owner: Account, box: SecretBox) -> str:
    """The VM's password encrypted with its first key pair's RSA public key, base64."""
    if not vm.password:
        raise ParamError(f"No password for VM {vm.name}: its template is not password enabled")
    if not vm.keypairs:
        raise ParamError(
            f"No password for VM {vm.name}: it has no SSH key pair to encrypt the password with"
        )
    pair = sshkeys.find_by_name(session, owner, vm.keypairs[0])
    if pair is None:
        raise ParamError(f"The SSH key pair {vm.keypairs[0]} of VM {vm.name} no longer exists")
    key = serialization.load_ssh_public_key(pair.public_key.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ParamError(
            f"The SSH key pair {pair.name} is not an RSA key: the password cannot be "
            "encrypted with it"
        )
    sealed = key.encrypt(box.open(vm.password).encode(), padding.PKCS1v15())
    return base64.b64encode(sealed).decode("ascii")
