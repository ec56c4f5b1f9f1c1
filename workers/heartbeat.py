"""A worker keeps the messages it holds from being redelivered; a dead worker's come back in seconds.

The Redis transport puts an unacknowledged message back on its queue once the message's entry in
kombu's ``unacked_index`` sorted set (score: delivery time) is older than the visibility timeout;
every consuming worker sweeps for such messages every few seconds. Scoring chunks are acknowledged
after they ran (``acks_late``), so a chunk taken by a worker that then dies whole (main and pool
processes, SIGKILL, power loss) comes back this way.

With kombu's default timeout of an hour that was an hour of a stuck job. Here the timeout is short
(``ARCHSCORE_VISIBILITY_TIMEOUT``, 30 s) and a thread in each worker's main process -- which stays idle
while the pool processes score -- refreshes the index entry of every message the worker holds,
reserved or running, every timeout / 3 seconds. A live worker's chunk is therefore never
redelivered however long it runs, and a dead worker's chunk is back on the queue within the timeout
plus one sweep interval. ``ZADD XX`` only updates entries that exist: a refresh racing an
acknowledgement or a restore never brings a message back.

A pool process that dies alone is covered by Celery itself (``task_reject_on_worker_lost``: its main
process requeues the chunk at once).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from celery import bootsteps
from celery.worker import state
from kombu.transport.redis import Channel

log = logging.getLogger(__name__)


def held_delivery_tags() -> list[str]:
    """Delivery tags of the messages this worker process holds: reserved or running."""
    requests = list(state.reserved_requests) + list(state.active_requests)
    tags = {getattr(r.message, "delivery_tag", None) for r in requests}
    return sorted(t for t in tags if t)


def refresh(client: redis.Redis, tags: list[str], now: float) -> int:
    """Mark ``tags`` as delivered at ``now``; returns how many were still unacknowledged."""
    if not tags:
        return 0
    return client.zadd(Channel.unacked_index_key, dict.fromkeys(tags, now), xx=True, ch=True)


class Heartbeat(bootsteps.StartStopStep):
    """Consumer bootstep: the refresh thread runs while the worker consumes."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent) -> None:
        app = parent.app
        timeout = app.conf.broker_transport_options.get("visibility_timeout", 3600)
        interval = max(0.5, timeout / 3)
        client = redis.Redis.from_url(app.conf.broker_url, socket_connect_timeout=2, socket_timeout=5)
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    refresh(client, held_delivery_tags(), time.time())  # kombu's clock: local time
                except redis.RedisError as exc:  # the broker is away: the transport reconnects, so do we
                    log.warning("heartbeat: %s", exc)

        self._thread = threading.Thread(target=run, name="archscore-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, parent) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
