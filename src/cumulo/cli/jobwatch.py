"""Waking an async-job wait the moment the job ends, from the push stream.

``cumulo`` waits for async commands by polling ``queryAsyncJobResult``; when the management
server offers the push stream (``/client/events/stream``), a background thread reads it and
wakes the wait as soon as an event about the job arrives, so the result prints within a
fraction of a second of the job's end. The poll stays the source of truth (an event only
says "look now"), so a stream that is missing, refused or cut costs nothing but speed.
"""

from __future__ import annotations

import json
import threading

import httpx

from cumulo.cli.client import Client


class JobWatch:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.wake = threading.Event()
        self.jobid = ""
        self.seen: set[str] = set()  # jobs the stream spoke of (one may end before watch())
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._resp: httpx.Response | None = None

    def start(self) -> JobWatch:
        try:
            url, cookies = self.client.stream_request()
        except Exception:  # no stream: polling alone
            return self
        threading.Thread(target=self._read, args=(url, cookies), daemon=True).start()
        self.connected.wait(2.0)  # subscribe before the job is submitted, so no end is missed
        return self

    def watch(self, jobid: str) -> None:
        with self._lock:
            self.jobid = jobid
            if jobid in self.seen:
                self.wake.set()

    def wait(self, timeout: float) -> None:
        self.wake.wait(timeout)
        self.wake.clear()

    def stop(self) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            resp.close()  # ends the reader's blocking read

    def _read(self, url: str, cookies: dict[str, str]) -> None:
        timeout = httpx.Timeout(10.0, read=30.0)
        try:
            with httpx.stream("GET", url, cookies=cookies, timeout=timeout) as resp:
                if resp.status_code != 200:
                    return
                self._resp = resp
                self.connected.set()
                for line in resp.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("data:"):
                        self._consider(line[5:].strip())
        except (httpx.HTTPError, OSError, RuntimeError):
            return
        finally:
            self.connected.set()

    def _consider(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            return
        jobid = str(data.get("jobid") or data.get("jobId") or "")
        if not jobid:
            return
        with self._lock:
            self.seen.add(jobid)
            if jobid == self.jobid:
                self.wake.set()
