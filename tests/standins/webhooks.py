#!/usr/bin/env python3
"""Webhook deliveries shared by the channel stand-ins (shopify.py, square.py).

What this file owns
  Subscriptions and a background thread that delivers events the way the channels do: a POST
  of the raw JSON body, signed by the stand-in's `headers` function (each channel signs and
  names its deliveries its own way), tried again on anything but 2xx or no answer within
  webhook_timeout_seconds, after webhook_retry_initial_seconds doubling up to
  webhook_retry_max_seconds, at most webhook_max_attempts times in all.  The stand-in's config
  carries the webhook_* settings (drops, lateness, duplicates and their seed).

Invariants
  * State changes only while `condition` is held; a delivery's HTTP request is made without it.
  * Every wait is bounded (the queue is re-examined at least once a second; a request by
    webhook_timeout_seconds); the logs keep at most MAX_LOG_ENTRIES entries (oldest dropped).
  * A duplicate carries the same body as its original (the same event); only its delivery id
    differs, unless webhook_duplicate_same_id.
  * Delays are in real time (a stand-in's clock may be frozen; a delivery is a real request).
"""

import dataclasses
import http.client
import json
import random
import re
import threading
import time
import urllib.parse

MAX_LOG_ENTRIES = 100_000


@dataclasses.dataclass
class Delivery:
    """One webhook delivery (a duplicate is another delivery of the same event)."""
    webhook_id: str
    event_id: str
    topic: str
    url: str
    secret: str
    body: bytes
    order_id: object
    due: float                   # time.monotonic() of the next attempt
    attempts: int = 0
    state: str = "pending"       # pending | delivered | failed | dropped
    late: bool = False
    duplicate: bool = False
    statuses: list = dataclasses.field(default_factory=list)
    notification_url: str = ""   # the URL a channel that signs it (Square) signs; "" : url


class Webhooks:
    """Subscriptions to `topics` and the thread that delivers them.  headers(delivery, config)
    returns the channel's headers for one attempt (its signature among them)."""

    def __init__(self, config, topics, headers, default_topics=None):
        self.config = config
        self.topics = tuple(topics)
        # A subscription without "topics" gets these (every topic unless the channel says).
        self.default_topics = tuple(default_topics) if default_topics is not None else self.topics
        self.headers = headers
        self.condition = threading.Condition()
        self.subscriptions = []
        self.queue = []              # Delivery, ordered by due when taken
        self.deliveries = []         # every Delivery made, for the control API
        self.attempt_log = []        # one entry per attempt
        self.sequence = 0
        self.generation = 0
        self.random = random.Random(self.config.webhook_seed)
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self.thread.start()

    def reset(self, config):
        with self.condition:
            self.config = config
            self.subscriptions = []
            self.queue = []
            self.deliveries = []
            self.attempt_log = []
            self.generation += 1
            self.random = random.Random(self.config.webhook_seed)
            self.condition.notify_all()

    def subscribe(self, spec):
        url = spec.get("url")
        secret = spec.get("secret")
        topics = spec.get("topics", list(self.default_topics))
        if not isinstance(url, str) or not re.match(r"^http://[^/\s]+(/\S*)?$", url):
            raise ValueError("url must be an http:// URL")
        if not isinstance(secret, str) or not secret:
            raise ValueError("secret must be a non-empty text")
        if not isinstance(topics, list) or not topics or any(t not in self.topics for t in topics):
            raise ValueError("topics must be a list of: " + ", ".join(self.topics))
        with self.condition:
            if spec.get("replace", True):
                self.subscriptions = []
            subscription = {"id": len(self.subscriptions) + 1, "url": url, "secret": secret, "topics": list(topics)}
            if "notification_url" in spec:
                # Signed as this (the public URL a proxy forwards to url), not as url.
                if not isinstance(spec["notification_url"], str) or not spec["notification_url"]:
                    raise ValueError("notification_url must be a non-empty text")
                subscription["notification_url"] = spec["notification_url"]
            self.subscriptions.append(subscription)
            return {"subscriptions": [dict(s, secret="***") for s in self.subscriptions]}

    def next_event_id(self):
        with self.condition:
            self.sequence += 1
            return "evt-%d-%d" % (self.generation, self.sequence)

    def publish(self, topic, payload, order_id, event_id=None):
        """Queues the event for every subscription to topic, with the configured drops,
        lateness and duplicates.  payload is the JSON value, or a function of the event id
        that returns it (a channel that names the event in the body)."""
        if event_id is None:
            event_id = self.next_event_id()
        body = json.dumps(payload(event_id) if callable(payload) else payload).encode()
        config = self.config
        with self.condition:
            now = time.monotonic()
            for subscription in self.subscriptions:
                if topic not in subscription["topics"]:
                    continue
                copies = 1 + (1 if self.random.random() < config.webhook_duplicate_rate else 0)
                for copy_index in range(copies):
                    self.sequence += 1
                    webhook_id = "wh-%d-%d" % (self.generation, self.sequence)
                    if copy_index and config.webhook_duplicate_same_id:
                        webhook_id = self.deliveries[-1].webhook_id
                    late = self.random.random() < config.webhook_late_rate
                    due = now + config.webhook_delay_seconds
                    if late:
                        due += self.random.uniform(0.5, 1.0) * config.webhook_late_seconds
                    if copy_index:
                        due += self.random.uniform(0.0, max(0.05, config.webhook_late_seconds))
                    delivery = Delivery(webhook_id, event_id, topic, subscription["url"], subscription["secret"],
                                        body, order_id, due, late=late, duplicate=bool(copy_index),
                                        notification_url=subscription.get("notification_url", ""))
                    dropped = config.webhook_drop or self.random.random() < config.webhook_drop_rate
                    if dropped:
                        delivery.state = "dropped"
                    else:
                        self.queue.append(delivery)
                    self.deliveries.append(delivery)
                    if len(self.deliveries) > MAX_LOG_ENTRIES:
                        del self.deliveries[: len(self.deliveries) - MAX_LOG_ENTRIES]
            self.condition.notify_all()
        return event_id

    def status(self, since=0):
        with self.condition:
            counts = {}
            for delivery in self.deliveries:
                counts[delivery.state] = counts.get(delivery.state, 0) + 1
            return {"pending": sum(1 for d in self.deliveries if d.state == "pending"),
                    "counts": counts,
                    "subscriptions": [dict(s, secret="***") for s in self.subscriptions],
                    "deliveries": [{"webhookId": d.webhook_id, "eventId": d.event_id, "topic": d.topic,
                                    "orderId": d.order_id, "state": d.state, "attempts": d.attempts,
                                    "statuses": list(d.statuses), "late": d.late, "duplicate": d.duplicate}
                                   for d in self.deliveries],
                    "attempts": [a for a in self.attempt_log if a["seq"] > since]}

    def _run(self):
        while True:
            with self.condition:
                if not self.queue:
                    self.condition.wait(1.0)
                    continue
                self.queue.sort(key=lambda d: d.due)
                wait = self.queue[0].due - time.monotonic()
                if wait > 0:
                    self.condition.wait(min(wait, 1.0))
                    continue
                delivery = self.queue.pop(0)
                generation = self.generation
                config = self.config
                delivery.attempts += 1
            status, outcome = self._send(delivery, config)
            with self.condition:
                if generation != self.generation:
                    continue             # reset meanwhile: forgotten
                delivery.statuses.append(status)
                self.attempt_log.append({"seq": len(self.attempt_log) + 1, "webhookId": delivery.webhook_id,
                                         "topic": delivery.topic, "orderId": delivery.order_id,
                                         "attempt": delivery.attempts, "status": status, "outcome": outcome})
                if len(self.attempt_log) > MAX_LOG_ENTRIES:
                    del self.attempt_log[: len(self.attempt_log) - MAX_LOG_ENTRIES]
                if status is not None and 200 <= status < 300:
                    delivery.state = "delivered"
                elif delivery.attempts >= config.webhook_max_attempts:
                    delivery.state = "failed"
                else:
                    step = config.webhook_retry_initial_seconds * (2 ** (delivery.attempts - 1))
                    delivery.due = time.monotonic() + min(step, config.webhook_retry_max_seconds)
                    self.queue.append(delivery)

    def _send(self, delivery, config):
        """(status or None, outcome) of one POST."""
        url = urllib.parse.urlsplit(delivery.url)
        headers = dict(self.headers(delivery, config), **{"Content-Type": "application/json"})
        connection = http.client.HTTPConnection(url.hostname, url.port or 80,
                                                timeout=config.webhook_timeout_seconds)
        try:
            connection.request("POST", (url.path or "/") + ("?" + url.query if url.query else ""),
                               body=delivery.body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
            return response.status, "answered"
        except (OSError, http.client.HTTPException) as error:
            return None, type(error).__name__
        finally:
            connection.close()
