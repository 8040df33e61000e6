"""Short-lived, signed download links for secondary storage (templates for hosts).

A host's agent fetches a template from a management server, never from the image store
itself: the link names one template and expires, and its signature is an HMAC with a key
derived from the cloud's master key, compared in constant time. Links are relative
(``/image-store/v1/...``): the agent resolves them against the server it is connected to,
so no server address has to be configured for hosts to reach.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.secretbox import SecretBox
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import ImageStore
from cumulo.services.storage.imagestore import DirectoryStore, backend_for

PREFIX = "/image-store/v1/templates/"
PURPOSE = "template-download-v1"


def _signature(box: SecretBox, template_uuid: str, expires: int) -> str:
    message = f"{template_uuid}\n{expires}".encode()
    return hmac.new(box.derive(PURPOSE), message, hashlib.sha256).hexdigest()


def template_link(box: SecretBox, template_uuid: str, ttl_s: int = 3600) -> str:
    expires = int(time.time()) + ttl_s
    query = urlencode({"expires": expires, "signature": _signature(box, template_uuid, expires)})
    return f"{PREFIX}{template_uuid}?{query}"


def link_is_valid(box: SecretBox, template_uuid: str, expires: str, signature: str) -> bool:
    try:
        when = int(expires)
    except ValueError:
        return False
    if when < time.time():
        return False
    return hmac.compare_digest(_signature(box, template_uuid, when), signature)


def local_file(session: Session, template_uuid: str) -> Path | None:
    """The Ready copy of the template in a Directory image store of this server, if any."""
    rows = session.execute(
        select(TemplateStoreRef.install_path, ImageStore)
        .join(Template, Template.id == TemplateStoreRef.template_id)
        .join(ImageStore, ImageStore.id == TemplateStoreRef.image_store_id)
        .where(
            Template.uuid == template_uuid,
            Template.removed.is_(None),
            TemplateStoreRef.state == "Ready",
            ImageStore.removed.is_(None),
        )
    ).all()
    for install_path, store in rows:
        if not install_path:
            continue
        try:
            backend = backend_for(store)
        except Exception:
            continue
        if isinstance(backend, DirectoryStore):
            path = backend.local_path(install_path)
            if path.is_file():
                return path
    return None
