"""Webhooks: events POSTed to `COLLAB_WEBHOOK_URL`, signed, retried, dead-lettered.

Events are JSON objects: `{"event": "document.changed", "name": "notes/1", "at":
1765000000.123, "seq": 812, "epoch": 1}`, `{"event": "document.deleted", "name", "at",
"epoch"}`. Each POST carries `X-Collab-Signature: sha256=<hex>`, the HMAC-SHA256 of
the raw body under `COLLAB_WEBHOOK_SECRET`; `at` (Unix seconds) is inside what is
signed, so a receiver refuses replays by refusing old `at`s (docs/webhooks.md).

The sender is one actor (`webhook:default`) whose durable queues hold the events:
document changes arrive through a watch (runtime/watches.py, debounced by
COLLAB_WEBHOOK_QUIET / COLLAB_WEBHOOK_AT_MOST, for the documents matching
COLLAB_WEBHOOK_DOCS), rooms' messages through a watch of every room, other events
through its `events` queue. A POST that fails
(a connection error, a timeout, an answer that is not 2xx) raises, so the queue
retries it with exponential backoff and dead-letters it after the last attempt:
inspect and re-drive with `GET`/`POST /api/actors/webhook/default/queues/<queue>`.
Delivery is at least once; a slow receiver delays only the webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from collab.runtime.actor import Actor
from collab.runtime.queues import consumes
from collab.runtime.refs import ActorRef
from collab.runtime.watches import DOCUMENTS, QUEUE_PREFIX, ROOMS, Watch

if TYPE_CHECKING:
    from collab.config import Settings
    from collab.runtime.system import ActorSystem

#: The one sender instance, and the queue other events go through.
SENDER_KEY = "default"
EVENTS_QUEUE = "events"
CHANGES_QUEUE = QUEUE_PREFIX + "document_changed"
MESSAGES_QUEUE = QUEUE_PREFIX + "room_message"
#: Seconds one POST may take before it counts as failed (and is retried).
POST_TIMEOUT = 10.0
SIGNATURE_HEADER = "X-Collab-Signature"


class WebhookFailed(Exception):
    """The receiver did not take the event (retried by the queue)."""


def sign(secret: str, body: bytes) -> str:
    """The X-Collab-Signature value of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def watches_for(settings: Settings, name: str, of: str = DOCUMENTS) -> list[Watch]:
    """The webhook's watch of document `name` (or of room `name`: every room's
    messages), if webhooks are on and it matches."""
    if not settings.webhook_url:
        return []
    if of == ROOMS:
        return [Watch("*", Webhooks.kind, MESSAGES_QUEUE, 0.0, 0.0, SENDER_KEY, ROOMS)]
    doc = name
    for pattern in settings.webhook_docs:  # one watch, however many patterns match
        watch = Watch(pattern, Webhooks.kind, CHANGES_QUEUE, settings.webhook_quiet,
                      settings.webhook_at_most, SENDER_KEY)
        if watch.matches(doc):
            return [watch]
    return []


async def send_event(system: ActorSystem, event: dict[str, Any]) -> None:
    """Queue `event` for the webhook durably (returns once it is stored), if
    webhooks are on."""
    if system.settings.webhook_url:
        ref = ActorRef(system, Webhooks.kind, SENDER_KEY)
        await ref.queue(EVENTS_QUEUE).send(event)


class Webhooks(Actor):
    kind = "webhook"
    queue_retry_base = 2.0  # 2, 4, 8, 16 s between the five attempts

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session: aiohttp.ClientSession | None = None

    async def on_sleep(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @consumes(CHANGES_QUEUE)
    async def document_changed(self, change: dict[str, Any]) -> None:
        await self._post({"event": "document.changed", "name": change["doc"],
                          "seq": change["seq"], "epoch": change.get("epoch")})

    @consumes(MESSAGES_QUEUE)
    async def room_message(self, note: dict[str, Any]) -> None:
        await self._post({"event": "room.message", "name": note["room"],
                          "message": note["message"]})

    @consumes(EVENTS_QUEUE)
    async def event(self, event: dict[str, Any]) -> None:
        await self._post(event)

    async def _post(self, event: dict[str, Any]) -> None:
        settings = self.system.settings
        if not settings.webhook_url or not settings.webhook_secret:
            raise WebhookFailed("COLLAB_WEBHOOK_URL is not set (any more)")
        body = json.dumps({**event, "at": round(time.time(), 3)},
                          separators=(",", ":")).encode()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT))
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: sign(settings.webhook_secret, body)}
        try:
            async with self._session.post(settings.webhook_url, data=body,
                                          headers=headers) as resp:
                if not 200 <= resp.status < 300:
                    raise WebhookFailed(f"{settings.webhook_url} answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WebhookFailed(f"{settings.webhook_url}: {exc!r}") from None
