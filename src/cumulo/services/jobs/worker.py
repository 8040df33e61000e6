"""Job workers: one claiming thread, a bounded pool that runs jobs, a lease heartbeat.

The claiming thread wakes on a local submit (so a job on this server starts at once) and
otherwise polls, which is how jobs submitted on other servers, and jobs whose server died,
are found.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cumulo.common.logging import bound
from cumulo.common.settings import JobSettings
from cumulo.db.engine import Database
from cumulo.services.jobs import queue
from cumulo.services.jobs.queue import Claimed

log = logging.getLogger(__name__)
Executor = Callable[[Claimed], None]


class JobWorkers:
    def __init__(
        self, db: Database, server_id: int, settings: JobSettings, execute: Executor
    ) -> None:
        self.db, self.server_id, self.settings, self.execute = db, server_id, settings, execute
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max(settings.workers, 1), thread_name_prefix="job")
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.settings.workers == 0:
            return
        for target, name in ((self._claim_loop, "job-claim"), (self._lease_loop, "job-lease")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _free(self) -> bool:
        with self._lock:
            return len(self._running) < self.settings.workers

    def _claim_loop(self) -> None:
        while not self._stop.is_set():
            claimed = None
            if self._free():
                try:
                    claimed = queue.claim(
                        self.db,
                        self.server_id,
                        self.settings.lease_seconds,
                        self.settings.max_attempts,
                    )
                except Exception:
                    log.exception("claiming a job failed")
            if claimed is None:
                self._wake.wait(self.settings.poll_seconds)
                self._wake.clear()
                continue
            with self._lock:
                self._running.add(claimed.id)
            self._pool.submit(self._run, claimed)

    def _run(self, job: Claimed) -> None:
        with bound(job_id=job.uuid):
            try:
                if self.settings.inject_delay_seconds:
                    time.sleep(self.settings.inject_delay_seconds)
                self.execute(job)
            except Exception:
                log.exception("job executor failed", extra={"cmd": job.cmd})
            finally:
                with self._lock:
                    self._running.discard(job.id)
                self._wake.set()

    def _lease_loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            with self._lock:
                ids = list(self._running)
            try:
                owned = queue.renew(self.db, self.server_id, ids, self.settings.lease_seconds)
            except Exception:
                log.exception("renewing job leases failed")
                continue
            for lost in set(ids) - owned:
                log.warning("lost the lease of a running job", extra={"job": lost})
