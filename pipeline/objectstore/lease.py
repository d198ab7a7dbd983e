"""The run lock on an object store: a lease object created only if absent, renewed while held.

S3 has no lock, but it has conditional writes: ``If-None-Match: *`` creates the lease only if
no one holds it, ``If-Match: <etag>`` renews it (or takes over an expired one) only if it is
still the version this process last saw, and deletes it on release only if it is still ours.
So two machines can never both hold it. A holder that dies without releasing it blocks others
until its lease expires (``ttl_s`` after its last renewal); a holder that cannot renew (cut off
from the store) learns it has lost the lease, and the publication refuses to switch.

Expiry compares the holder's clock with the taker's, so the machines' clocks must agree to
well within ``ttl_s`` (NTP).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from pipeline.locations import filesystem, store_path

__all__ = ["DEFAULT_TTL_S", "Lease", "LeaseHeldError", "LeaseLostError"]

log = logging.getLogger(__name__)

LOCK_OBJECT = ".docthemes.lock"
DEFAULT_TTL_S = 300.0
# Who holds a lease is this process, whichever object took it: the step that publishes checks
# the lease the run's lock resource took.
OWNER = uuid.uuid4().hex


class LeaseHeldError(RuntimeError):
    """Another process holds the lease (and it has not expired)."""


class LeaseLostError(RuntimeError):
    """This process's lease expired or was taken over: it must not publish."""


class Lease:
    """The lease ``<url>/.docthemes.lock``; use :meth:`acquire`, :meth:`check`, :meth:`release`.

    Args:
        url: The output location (``s3://bucket/prefix``).
        ttl_s: How long the lease lasts without renewal; renewed every third of it.
        poll_s: How often a waiting process looks again.
    """

    def __init__(self, url: str, ttl_s: float = DEFAULT_TTL_S, poll_s: float = 2.0) -> None:
        """Store the parameters; nothing is read or written until :meth:`acquire`."""
        self.url = url
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self._path = f"{store_path(url)}/{LOCK_OBJECT}"
        self._etag: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, timeout_s: float = 0.0) -> None:
        """Hold the lease, waiting up to ``timeout_s`` seconds for its holder.

        Raises:
            LeaseHeldError: If it is still held (unexpired) when the time is up.
            FileNotFoundError: If the bucket does not exist.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._etag = self._put(mode="create")
                break
            except FileExistsError:
                pass
            except FileNotFoundError as err:
                raise FileNotFoundError(
                    f"cannot take the lock {self.url}/{LOCK_OBJECT}: the bucket "
                    f"{self._path.split('/', 1)[0]!r} does not exist ({err})"
                ) from err
            held = self._read_holder()
            if held is not None:
                etag, holder = held
                if float(holder.get("expires_at", 0)) < time.time():
                    try:
                        self._etag = self._put(IfMatch=etag)
                    except OSError:
                        continue  # another process took it over, or renewed it, first
                    log.warning("took over the expired lease of %s", _describe(holder))
                    break
                if time.monotonic() >= deadline:
                    raise LeaseHeldError(
                        f"another docthemes run holds the lock {self.url}/{LOCK_OBJECT} "
                        f"({_describe(holder)}); waited {timeout_s:.0f} s"
                    )
            time.sleep(max(0.0, min(self.poll_s, deadline - time.monotonic())) or 0.05)
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
        self._renewer.start()

    def check(self) -> None:
        """Raise unless this process holds the lease now (read from the store).

        Raises:
            LeaseLostError: If it was never taken, was taken over, or has expired.
        """
        held = self._read_holder()
        if (
            held is None
            or held[1].get("owner") != OWNER
            or float(held[1].get("expires_at", 0)) <= time.time()
        ):
            raise LeaseLostError(
                f"the lock {self.url}/{LOCK_OBJECT} is no longer this run's (not renewed in "
                f"{self.ttl_s:.0f} s, or taken over): nothing is published"
            )

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still this process's."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if self._etag is None:
            return
        bucket, key, _ = self._fs.split_path(self._path)
        try:
            self._fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=self._etag)
        except OSError as err:  # taken over, or already gone: not ours to delete
            log.warning("did not delete the lease %s: %s", self._path, err)
        self._etag = None

    @property
    def _fs(self) -> Any:
        return filesystem(self.url)[0]

    def _put(self, **condition: str) -> str:
        now = time.time()
        body = {
            "owner": OWNER,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "renewed_at": now,
            "expires_at": now + self.ttl_s,
        }
        data = json.dumps(body, sort_keys=True).encode()
        response = self._fs.pipe_file(self._path, data, **condition)
        return str(response["ETag"])

    def _read_holder(self) -> tuple[str, dict[str, Any]] | None:
        """(ETag, holder) of the lease object, or None if it is gone or unreadable."""
        try:
            etag = str(self._fs.info(self._path)["ETag"])
            holder = json.loads(self._fs.cat_file(self._path))
        except (OSError, ValueError):
            return None
        # Read after the ETag: a takeover conditional on that ETag fails if it changed since.
        return etag, holder if isinstance(holder, dict) else {}

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                assert self._etag is not None
                self._etag = self._put(IfMatch=self._etag)
            except OSError as err:
                held = self._read_holder()
                if held is not None and held[1].get("owner") == OWNER:
                    self._etag = held[0]  # our write landed; its answer was lost
                    continue
                if held is not None:
                    log.error("lost the lease %s to %s", self._path, _describe(held[1]))
                    return
                log.warning("could not renew the lease %s (%s); trying again", self._path, err)


def _describe(holder: dict[str, Any]) -> str:
    renewed = holder.get("renewed_at")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(renewed))) if renewed else "?"
    return f"host {holder.get('host', '?')} pid {holder.get('pid', '?')}, renewed {when}"
