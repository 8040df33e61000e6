"""Lifecycle expiration, applied by a background worker.

Each pass reads every bucket's stored lifecycle configuration and, per enabled rule (prefix
and tag filters): expires current versions older than ``Expiration/Days`` or past
``Expiration/Date`` (a delete marker in a versioned bucket, as S3 does), removes noncurrent
versions ``NoncurrentDays`` after they stopped being current, removes delete markers left
alone (``ExpiredObjectDeleteMarker``) and aborts multipart uploads older than
``AbortIncompleteMultipartUpload/DaysAfterInitiation``. Every step goes through the same
store calls a client's DELETE does, so counters, garbage and versions stay consistent.

``s3.lifecycle_day_seconds`` is the length of a "day" (rgw's ``lc_debug_interval``): tests
shrink it to seconds.
"""

from __future__ import annotations

import asyncio
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from anyio import to_thread
from sqlalchemy import Row, select

from cumulo.common.time import aware, utcnow
from cumulo.objectstore.handlers.base import Service
from cumulo.objectstore.meta.schema import buckets
from cumulo.objectstore.meta.store import Bucket, _bucket
from cumulo.objectstore.xml import parse

log = logging.getLogger(__name__)
BATCH = 1000


@dataclass(frozen=True)
class Rule:
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    days: int | None = None
    date: datetime | None = None
    expired_marker: bool = False
    noncurrent_days: int | None = None
    abort_days: int | None = None


def _int(el: ET.Element, path: str) -> int | None:
    text = el.findtext(path)
    return int(text) if text and text.strip().isdigit() else None


def _rule(el: ET.Element) -> Rule:
    flt = el.find("Filter")
    scope = flt.find("And") if flt is not None and flt.find("And") is not None else flt
    prefix = el.findtext("Prefix") or (scope.findtext("Prefix") if scope is not None else "")
    tags = {
        t.findtext("Key") or "": t.findtext("Value") or ""
        for t in (scope.findall("Tag") if scope is not None else [])
    }
    date_text = el.findtext("Expiration/Date")
    return Rule(
        prefix=prefix or "",
        tags=tags,
        days=_int(el, "Expiration/Days"),
        date=aware(datetime.fromisoformat(date_text.strip())) if date_text else None,
        expired_marker=(el.findtext("Expiration/ExpiredObjectDeleteMarker") or "") == "true",
        noncurrent_days=_int(el, "NoncurrentVersionExpiration/NoncurrentDays"),
        abort_days=_int(el, "AbortIncompleteMultipartUpload/DaysAfterInitiation"),
    )


def parse_rules(text: str) -> list[Rule]:
    root = parse(text.encode())
    return [_rule(r) for r in root.findall("Rule") if (r.findtext("Status") or "") == "Enabled"]


class Expirer:
    """One pass over every bucket with a lifecycle configuration."""

    def __init__(self, svc: Service, day_seconds: float) -> None:
        self.svc, self.day = svc, day_seconds

    def _age(self, days: int) -> timedelta:
        return timedelta(seconds=days * self.day)

    def run_once(self, now: datetime) -> int:
        done = 0
        for bucket, text in self._configured():
            try:
                rules = parse_rules(text)
            except Exception:
                log.warning("unreadable lifecycle configuration", extra={"bucket": bucket.name})
                continue
            for rule in rules:
                done += self._apply(bucket, rule, now)
        return done

    def _configured(self) -> list[tuple[Bucket, str]]:
        stmt = select(buckets).where(buckets.c.lifecycle.is_not(None))
        with self.svc.meta.db.read() as s:
            return [(_bucket(r), str(r.lifecycle)) for r in s.execute(stmt)]

    def _apply(self, bucket: Bucket, rule: Rule, now: datetime) -> int:
        done = 0
        if rule.days is not None or rule.date is not None:
            done += self._expire_current(bucket, rule, now)
        if rule.noncurrent_days is not None or rule.expired_marker:
            done += self._expire_noncurrent(bucket, rule, now)
        if rule.abort_days is not None:
            done += self._abort_uploads(bucket, rule, now)
        return done

    def _due(self, rule: Rule, modified: datetime, now: datetime) -> bool:
        if rule.date is not None and now >= rule.date:
            return True
        return rule.days is not None and aware(modified) + self._age(rule.days) <= now

    def _tags_match(self, rule: Rule, row: Row[Any]) -> bool:
        tags = row.tags or {}
        return all(tags.get(k) == v for k, v in rule.tags.items())

    def _expire_current(self, bucket: Bucket, rule: Rule, now: datetime) -> int:
        done, after = 0, None
        while True:
            rows = self.svc.meta.list_latest(bucket, rule.prefix, after, BATCH)
            for row in rows:
                if self._due(rule, row.modified, now) and self._tags_match(rule, row):
                    self.svc.meta.delete_object(bucket.name, row.key, None)
                    done += 1
            if len(rows) < BATCH:
                return done
            after = rows[-1].key

    def _expire_noncurrent(self, bucket: Bucket, rule: Rule, now: datetime) -> int:
        done, after = 0, None
        while True:
            rows = self.svc.meta.list_versions(bucket, rule.prefix, after, BATCH)
            done += self._noncurrent_batch(bucket, rule, rows, now)
            if len(rows) < BATCH:
                return done
            after = rows[-1].key

    def _noncurrent_batch(
        self, bucket: Bucket, rule: Rule, rows: list[Row[Any]], now: datetime
    ) -> int:
        done = 0
        by_key: dict[str, list[Row[Any]]] = {}
        for row in rows:
            by_key.setdefault(row.key, []).append(row)
        for key, versions in by_key.items():
            # Newest first: a version became noncurrent when the one before it was written.
            for newer, row in pairwise(versions):
                days = rule.noncurrent_days
                if days is not None and aware(newer.modified) + self._age(days) <= now:
                    self.svc.meta.delete_object(bucket.name, key, row.version_id)
                    done += 1
            latest = versions[0]
            if rule.expired_marker and latest.delete_marker and len(versions) == 1:
                self.svc.meta.delete_object(bucket.name, key, latest.version_id)
                done += 1
        return done

    def _abort_uploads(self, bucket: Bucket, rule: Rule, now: datetime) -> int:
        assert rule.abort_days is not None
        done = 0
        for up in self.svc.uploads.list_uploads(bucket, rule.prefix, None, BATCH):
            if aware(up.initiated) + self._age(rule.abort_days) <= now:
                self.svc.uploads.abort(bucket, up.key, up.upload_id)
                done += 1
        return done


async def run_lifecycle(svc: Service, interval: float, day_seconds: float) -> None:
    expirer = Expirer(svc, day_seconds)
    while True:
        await asyncio.sleep(interval)
        try:
            done = await to_thread.run_sync(expirer.run_once, utcnow())
            if done:
                log.info("lifecycle expired %d items", done)
        except Exception:
            log.exception("lifecycle pass failed; retrying")
