"""API throttling per account, CloudStack's api.throttling.*: a fixed window per server."""

from __future__ import annotations

import threading
import time


class Throttle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[int, tuple[float, int]] = {}

    def allow(self, account_id: int, interval: float, limit: int) -> bool:
        now = time.monotonic()
        with self._lock:
            start, count = self._windows.get(account_id, (now, 0))
            if now - start >= interval:
                start, count = now, 0
            if count >= limit:
                return False
            self._windows[account_id] = (start, count + 1)
            return True

    def retry_after(self, account_id: int, interval: float) -> int:
        with self._lock:
            start, _ = self._windows.get(account_id, (time.monotonic(), 0))
        return max(0, int((start + interval - time.monotonic()) * 1000))
