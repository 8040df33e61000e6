"""Browser uploads and volume extractions: one signed, expiring link to an image-store file.

An upload row (``kind`` Volume/Template/Iso) is written by getUploadParamsFor*: it names the
resource waiting for its bytes, where they go, the size they may reach and when the link
expires. An extract row (``kind`` Extract) names a copy of a volume that extractVolume put in
the image store for download; the sweep removes the copy once the link expires.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class ImageTransfer(Base):
    __tablename__ = "image_transfers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    kind: Mapped[str] = mapped_column(String(16))  # Volume | Template | Iso | Extract
    resource_uuid: Mapped[str] = mapped_column(String(36), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    image_store_id: Mapped[int] = mapped_column(ForeignKey("image_stores.id"))
    path: Mapped[str] = mapped_column(String(1024))
    format: Mapped[str] = mapped_column(String(16))
    checksum: Mapped[str | None] = mapped_column(String(255))
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    state: Mapped[str] = mapped_column(String(16))  # Pending|InProgress|Done|Failed|Abandoned
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = _created_col()
