#!/usr/bin/env python3
"""Amazon Selling Partner API stand-in: what the skuld-push Amazon driver talks to in tests.

What this file owns
  An HTTP server on 127.0.0.1 that answers, the way Amazon does:
    * Login with Amazon: `POST /auth/o2/token` (grant_type=refresh_token);
    * Listings Items 2021-08-01: `PATCH` and `GET /listings/2021-08-01/items/{sellerId}/{sku}`;
    * Feeds 2021-06-30: createFeedDocument, createFeed, getFeed, getFeedDocument, with the
      presigned document URLs served under `/_documents/{id}` (PUT to upload, GET to read);
    * Orders v0: getOrders (`GET /orders/v0/orders`: MarketplaceIds, LastUpdatedAfter or
      CreatedAfter, FulfillmentChannels, OrderStatuses, MaxResultsPerPage, NextToken) and
      getOrderItems (`GET /orders/v0/orders/{orderId}/orderItems`, NextToken), over orders a
      test makes through the control API (`order`, `order_status`), each with its own
      published rate limit (429 QuotaExceeded when its bucket is empty);
  plus a control API under `/_control/` through which a test seeds listings, drives the
  clock, injects faults and reads the state, the request log and every application.
  README.md beside this file is the user's guide; this header is the specification.

What is checked against the official schemas, and what is modelled by hand
  * Validated with python3-jsonschema against schema/amazon-sp-api/ (copies of the official files):
    the PATCH body (ListingsItemPatchRequest of listingsItems_2021-08-01.json, Draft 4, the
    Swagger definitions resolved in place), createFeedDocument's and createFeed's bodies
    (CreateFeedDocumentSpecification, CreateFeedSpecification of feeds_2021-06-30.json) and
    every uploaded JSON_LISTINGS_FEED document (listings-feed-schema-v2.json, Draft 7).  A
    request that does not conform is answered 400 {"errors": [{"code": "InvalidInput",
    "message": <the validator's words>, "details": <the path>}]}; a feed document that does
    not conform makes a DONE feed whose processing report has one ERROR issue without a
    messageId and no message processed.  The query parameters are checked against the
    operations' parameter lists (marketplaceIds required; includedData and mode enums).
  * Modelled by hand from the API documentation and CHANNELS.md, not from a schema: the
    attribute rules of fulfillment_availability (a list of objects each with
    fulfillment_channel_code and an integer quantity >= 0; anything else INVALID with an
    ERROR issue), issue codes and messages, the LWA error bodies, the 403/404 bodies, the
    application delay, the offer-only listing an unknown SKU creates (not BUYABLE, one ERROR
    issue), the feed state machine's timing, and the processing report's issue codes.

Invariants
  * State changes only while `Standin.lock` is held; a request holds it from start to end
    (an injected `delay` releases it while sleeping).
  * An accepted change is applied once, `apply_delay_seconds` of the stand-in's clock after
    it was accepted, in the order accepted; every application is in `applications`.
  * Every wait is bounded: hangs and delays by `max_hang_seconds`, bodies by MAX_BODY_BYTES,
    the log by MAX_LOG_ENTRIES.
"""

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import re
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "schema", "amazon-sp-api")

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_LOG_ENTRIES = 100_000
LISTING_PATH = re.compile(r"^/listings/2021-08-01/items/([^/]+)/([^/]+)$")
FEED_PATH = re.compile(r"^/feeds/2021-06-30/feeds/([^/]+)$")
DOCUMENT_PATH = re.compile(r"^/feeds/2021-06-30/documents/([^/]+)$")
UPLOAD_PATH = re.compile(r"^/_documents/([^/]+)$")
ORDER_ITEMS_PATH = re.compile(r"^/orders/v0/orders/([^/]+)/orderItems$")
ORDER_STATUSES = ("Pending", "Unshipped", "PartiallyShipped", "Shipped", "Canceled", "Unfulfillable",
                  "InvoiceUnconfirmed", "PendingAvailability")
GET_INCLUDED = ("summaries", "attributes", "issues", "offers", "fulfillmentAvailability",
                "procurement", "relationships", "productTypes")
PATCH_INCLUDED = ("identifiers", "issues")
FEED_STATUSES = ("IN_QUEUE", "IN_PROGRESS", "DONE", "CANCELLED", "FATAL")

# The published usage plans: operation -> (rate per second, burst).
PUBLISHED_LIMITS = {
    "patchListingsItem": (5.0, 5), "getListingsItem": (5.0, 10),
    "createFeedDocument": (0.5, 15), "createFeed": (0.0083, 15), "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
    "getOrders": (0.0167, 20), "getOrderItems": (0.5, 30),
}
UNAUTHORIZED = {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
                            "details": ""}]}
QUOTA_EXCEEDED = {"errors": [{"code": "QuotaExceeded",
                              "message": "You exceeded your quota for the requested resource.", "details": ""}]}


def iso_time(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def error_list(code, message, details=""):
    return {"errors": [{"code": code, "message": message, "details": details}]}


# ----------------------------------------------------------------------------------------
# Schemas
# ----------------------------------------------------------------------------------------

class Schemas:
    """Validators built from the official files, unchanged."""

    def __init__(self, directory=SCHEMA_DIR):
        def load(name):
            with open(os.path.join(directory, name), encoding="utf-8") as file:
                return json.load(file)
        listings = load("listingsItems_2021-08-01.json")
        feeds = load("feeds_2021-06-30.json")
        self.listings_model, self.feeds_model = listings, feeds
        self.patch_request = self._swagger(listings, "ListingsItemPatchRequest")
        self.document_spec = self._swagger(feeds, "CreateFeedDocumentSpecification")
        self.feed_spec = self._swagger(feeds, "CreateFeedSpecification")
        feed = load("listings-feed-schema-v2.json")
        self.feed_document = jsonschema.Draft7Validator(feed)
        self.report = jsonschema.Draft7Validator(load("listings-feed-processing-report-schema-v2.json"))
        self.item = self._swagger(listings, "Item")
        self.submission = self._swagger(listings, "ListingsItemSubmissionResponse")
        self.feed = self._swagger(feeds, "Feed")
        self.error_list = self._swagger(listings, "ErrorList")

    @staticmethod
    def _swagger(model, name):
        """A Draft 4 validator of one Swagger 2.0 definition, its $refs resolved in the model."""
        return jsonschema.Draft4Validator({"$ref": "#/definitions/" + name,
                                           "definitions": model["definitions"]})

    @staticmethod
    def first_error(validator, value):
        """(message, path) of the first violation, or None."""
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if not errors:
            return None
        error = errors[0]
        return error.message, "/" + "/".join(str(p) for p in error.absolute_path)


# ----------------------------------------------------------------------------------------
# Clock and token buckets
# ----------------------------------------------------------------------------------------

class Clock:
    """Seconds since the epoch; runs with real time unless frozen, and can be moved by hand."""

    def __init__(self):
        self._base, self._started, self.frozen = time.time(), time.monotonic(), False

    def now(self):
        return self._base if self.frozen else self._base + (time.monotonic() - self._started)

    def freeze(self):
        self._base, self.frozen = self.now(), True

    def run(self):
        self._base, self._started, self.frozen = self.now(), time.monotonic(), False

    def advance(self, seconds):
        self._base += seconds


class TokenBucket:
    """One operation's usage plan: `burst` tokens restoring `rate` per clock second."""

    def __init__(self, clock, rate, burst):
        self.clock, self.rate, self.burst = clock, float(rate), float(burst)
        self.tokens, self.updated = float(burst), clock.now()

    def _refill(self):
        now = self.clock.now()
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def try_take(self):
        self._refill()
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def status(self):
        self._refill()
        return {"rate": self.rate, "burst": self.burst, "tokens": self.tokens}


# ----------------------------------------------------------------------------------------
# Settings, faults, the log
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Config:
    client_id: str = "amzn1.application-oa2-client.standin"
    client_secret: str = "standin-secret"
    refresh_token: str = "Atzr|standin-refresh"
    seller_id: str = "A1STANDINSELLER"
    marketplaces: list = dataclasses.field(default_factory=lambda: ["ATVPDKIKX0DER"])
    token_expires_in: int = 3600               # seconds of the stand-in's clock
    apply_delay_seconds: float = 0.0           # ACCEPTED to applied [unverified: "minutes"]
    feed_queue_seconds: float = 1.0            # IN_QUEUE this long [unverified]
    feed_processing_seconds: float = 1.0       # then IN_PROGRESS this long [unverified]
    limits: dict = dataclasses.field(default_factory=lambda: {k: list(v) for k, v in PUBLISHED_LIMITS.items()})
    rate_limit_header: bool = True             # x-amzn-RateLimit-Limit on 200/201/202/400
    unknown_sku_buyable: bool = False          # an offer-only listing becomes BUYABLE
    max_hang_seconds: float = 30.0
    orders_page_size: int = 100                # getOrders: orders per page (MaxResultsPerPage at most)
    items_page_size: int = 100                 # getOrderItems: items per page [unverified]

    def update(self, changes):
        fields = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError("unknown setting %r" % key)
            current = getattr(self, key)
            if key == "limits":
                if not isinstance(value, dict):
                    raise ValueError("limits must be {operation: [rate, burst]}")
                merged = dict(current)
                for operation, pair in value.items():
                    if operation not in PUBLISHED_LIMITS or not isinstance(pair, list) or len(pair) != 2 \
                            or not all(isinstance(x, (int, float)) and x > 0 for x in pair):
                        raise ValueError("limits.%s must be [rate > 0, burst > 0]" % operation)
                    merged[operation] = [float(pair[0]), float(pair[1])]
                value = merged
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError("%s must be true or false" % key)
            elif isinstance(current, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError("%s must be a non-negative number" % key)
                value = type(current)(value)
            elif isinstance(current, str):
                if not isinstance(value, str) or not value:
                    raise ValueError("%s must be a non-empty string" % key)
            elif isinstance(current, list):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("%s must be a list of strings" % key)
            setattr(self, key, value)


FAULT_KINDS = ("http_error", "reset", "throttle", "malformed", "timeout", "delay", "feed_fatal",
               "feed_cancelled")
OPERATIONS = ("token",) + tuple(PUBLISHED_LIMITS)


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour, used by the next `count` requests whose operation matches."""
    kind: str
    count: int = 1
    match: str = "any"           # any, token, patchListingsItem, getListingsItem, createFeed, ...
    apply: bool = False          # answer the request first (its change accepted), then misbehave
    status: int = 503
    body: object = None
    seconds: float = 5.0

    @staticmethod
    def from_json(spec):
        if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
            raise ValueError("a fault needs kind: one of " + ", ".join(FAULT_KINDS))
        unknown = set(spec) - {f.name for f in dataclasses.fields(Fault)}
        if unknown:
            raise ValueError("unknown fault fields: " + ", ".join(sorted(unknown)))
        values = dict(spec)
        values.setdefault("apply", spec["kind"] == "timeout")
        if spec["kind"] in ("feed_fatal", "feed_cancelled"):
            values.setdefault("match", "createFeed")
        fault = Fault(**values)
        if not isinstance(fault.count, int) or not 1 <= fault.count <= 1_000_000:
            raise ValueError("count must be an integer from 1 to 1000000")
        if fault.match != "any" and fault.match not in OPERATIONS:
            raise ValueError("match must be any or one of " + ", ".join(OPERATIONS))
        if fault.kind == "http_error" and not 500 <= fault.status <= 599:
            raise ValueError("http_error status must be 5xx")
        return fault


class RequestLog:
    def __init__(self, path=None):
        self.entries, self.sequence, self.path = [], 0, path

    def append(self, entry):
        self.sequence += 1
        entry = dict(entry, seq=self.sequence)
        self.entries.append(entry)
        if len(self.entries) > MAX_LOG_ENTRIES:
            del self.entries[: len(self.entries) - MAX_LOG_ENTRIES]
        if self.path:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry

    def lines(self, since=0):
        return "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries if e["seq"] > since)


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    action: str = "send"         # send | reset | hang
    hang_seconds: float = 0.0


def json_reply(status, value, headers=None):
    return Reply(status, json.dumps(value).encode(), dict(headers or {}, **{"Content-Type": "application/json"}))


# ----------------------------------------------------------------------------------------
# Listings
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Listing:
    sku: str
    marketplace: str
    product_type: str = "PRODUCT"
    asin: object = None
    buyable: bool = True
    discoverable: bool = True
    quantity: object = None      # DEFAULT fulfillment quantity shown, None: none
    issues: list = dataclasses.field(default_factory=list)
    created: float = 0.0
    updated: float = 0.0
    invalid: object = None       # a message: every patch is INVALID with it (control)


OFFER_ONLY_ISSUE = {"code": "8541", "severity": "ERROR", "categories": ["MISSING_ATTRIBUTE"],
                    "attributeNames": ["merchant_suggested_asin"],
                    "message": "The SKU does not match any ASIN: product details are required to list it."}


def availability_errors(value):
    """The hand-modelled attribute rule of fulfillment_availability: None when valid."""
    if not isinstance(value, list) or not value:
        return "'fulfillment_availability' must be a non-empty list."
    for entry in value:
        if not isinstance(entry.get("fulfillment_channel_code"), str):
            return "'fulfillment_channel_code' is required but not supplied."
        quantity = entry.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            return "The provided value for 'quantity' is invalid: a whole number of 0 or more is required."
    return None


def default_quantity(value):
    for entry in value:
        if entry.get("fulfillment_channel_code") == "DEFAULT" and "quantity" in entry:
            return entry["quantity"]
    return None


# ----------------------------------------------------------------------------------------
# The stand-in
# ----------------------------------------------------------------------------------------

class Standin:
    def __init__(self, schemas, config, request_log_path=None):
        self.schemas, self.config = schemas, config
        self.initial_config = dataclasses.replace(config)
        self.lock = threading.Lock()
        self.clock = Clock()
        self.log = RequestLog(request_log_path)
        self.ids = itertools.count(1)
        self.listings = {}           # (sku, marketplace) -> Listing
        self.tokens = {}             # access token -> expiry (clock seconds)
        self.pending = []            # [apply_at, sku, marketplace, quantity, submission, source]
        self.applications = []
        self.documents = {}          # id -> {"content": bytes|None, "kind": "input"|"report"}
        self.feeds = {}
        self.faults = []
        self.orders = {}             # AmazonOrderId -> order (dict, the API's field names)
        self.next_tokens = {}        # NextToken -> (operation, state)
        self._new_buckets()

    def _new_buckets(self):
        self.buckets = {op: TokenBucket(self.clock, rate, burst) for op, (rate, burst) in self.config.limits.items()}

    def reset(self):
        self.config = dataclasses.replace(self.initial_config)
        self.tokens.clear()
        self.faults.clear()
        self.log.entries.clear()
        self.pending.clear()
        self.applications.clear()
        self.feeds.clear()
        self.documents.clear()
        self.next_tokens.clear()
        self.orders.clear()
        self.clock.run()
        self._new_buckets()

    def seed(self, spec):
        self.listings = {}
        for entry in spec.get("listings", []):
            self.set_listing(entry)

    def set_listing(self, entry):
        sku = entry.get("sku")
        if not isinstance(sku, str) or not sku:
            raise ValueError("a listing needs a sku")
        marketplace = entry.get("marketplaceId", self.config.marketplaces[0])
        key = (sku, marketplace)
        now = self.clock.now()
        listing = self.listings.get(key)
        if entry.get("exists") is False:
            self.listings.pop(key, None)
            return {"sku": sku, "exists": False}
        if listing is None:
            listing = Listing(sku, marketplace, asin="B0%08d" % (len(self.listings) + 1), created=now)
            self.listings[key] = listing
        for name in ("product_type", "asin", "buyable", "discoverable", "quantity", "issues", "invalid"):
            if name in entry:
                setattr(listing, name, entry[name])
        if "productType" in entry:
            listing.product_type = entry["productType"]
        if entry.get("buyable") is False and "issues" not in entry:
            listing.issues = [{"code": "18027", "severity": "ERROR", "categories": ["INVALID_ATTRIBUTE"],
                               "message": "The listing is inactive: it was suppressed."}]
        if entry.get("buyable") is True and "issues" not in entry:
            listing.issues = []
        listing.updated = now
        return self.listing_snapshot(listing)

    @staticmethod
    def listing_snapshot(listing):
        return dataclasses.asdict(listing)

    def external_sale(self, spec):
        marketplace = spec.get("marketplaceId", self.config.marketplaces[0])
        listing = self.listings.get((spec.get("sku"), marketplace))
        quantity = spec.get("quantity", 1)
        if listing is None or listing.quantity is None or not isinstance(quantity, int):
            raise ValueError("no listing with a quantity for that sku")
        listing.quantity = max(0, listing.quantity - quantity)
        listing.updated = self.clock.now()
        return self.listing_snapshot(listing)

    # -- time ---------------------------------------------------------------------------

    def process_due(self):
        """Applies every accepted change that is due, and moves feeds along."""
        now = self.clock.now()
        for feed in self.feeds.values():
            self._feed_step(feed, now)
        self._apply_due(now)

    def _apply_due(self, now):
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for apply_at, sku, marketplace, quantity, submission, source in sorted(due, key=lambda p: p[0]):
            listing = self.listings.get((sku, marketplace))
            if listing is None:
                listing = Listing(sku, marketplace, buyable=self.config.unknown_sku_buyable,
                                  discoverable=False, created=apply_at,
                                  issues=[] if self.config.unknown_sku_buyable else [dict(OFFER_ONLY_ISSUE)])
                self.listings[(sku, marketplace)] = listing
            before = listing.quantity or 0
            listing.quantity, listing.updated = quantity, apply_at
            self.applications.append({"sku": sku, "marketplaceId": marketplace, "quantity": quantity,
                                      "delta": quantity - before, "at": apply_at,
                                      "submissionId": submission, "source": source})

    def accept(self, sku, marketplace, quantity, submission, source):
        self.pending.append([self.clock.now() + self.config.apply_delay_seconds, sku, marketplace,
                             quantity, submission, source])
        if self.config.apply_delay_seconds <= 0:
            self._apply_due(self.clock.now())

    # -- auth, limits, faults ------------------------------------------------------------

    def token_valid(self, token):
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > self.clock.now()

    def take_fault(self, operation):
        for fault in self.faults:
            if fault.match in ("any", operation):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def limit_headers(self, operation, status):
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if self.config.rate_limit_header and status in (200, 201, 202, 400) and operation in self.buckets:
            headers["x-amzn-RateLimit-Limit"] = repr(float(self.buckets[operation].rate))
        return headers

    # -- the request --------------------------------------------------------------------

    def handle(self, method, path, query, headers, body, base_url):
        """Answers one API request (not a control one)."""
        operation, args = self.route(method, path)
        entry = {"method": method, "path": path, "query": query, "operation": operation, "status": None,
                 "errors": [], "fault": None}
        with self.lock:
            entry["time"] = self.clock.now()
            self.process_due()
            if operation is None:
                return self._finish(entry, json_reply(404, error_list("NotFound", "Resource not found.")))
            if operation == "upload":
                return self._finish(entry, self.upload(method, args[0], body))
            fault = self.take_fault(operation)
            if fault is not None:
                entry["fault"] = fault.kind
                if fault.kind == "delay":
                    self.lock.release()
                    try:
                        time.sleep(min(fault.seconds, self.config.max_hang_seconds))
                    finally:
                        self.lock.acquire()
                    self.process_due()
                elif not fault.apply and fault.kind not in ("feed_fatal", "feed_cancelled"):
                    return self._finish(entry, self.fault_reply(fault, operation, None))
            if operation == "token":
                reply = self.token(body, headers, entry)
            elif not self.token_valid(headers.get("x-amz-access-token")):
                reply = json_reply(403, UNAUTHORIZED, {"x-amzn-RequestId": str(uuid.uuid4())})
            elif not self.buckets[operation].try_take():
                reply = json_reply(429, QUOTA_EXCEEDED, {"x-amzn-RequestId": str(uuid.uuid4())})
            else:
                reply = getattr(self, operation)(args, query, body, entry, base_url, fault)
                reply.headers.update(self.limit_headers(operation, reply.status))
            if fault is not None and fault.apply:
                reply = self.fault_reply(fault, operation, reply)
            return self._finish(entry, reply)

    def _finish(self, entry, reply):
        entry["status"] = reply.status if reply.action == "send" else None
        if reply.action != "send":
            entry["outcome"] = reply.action
        if reply.action == "send" and reply.status >= 400:
            try:
                entry["errors"] = [e.get("code") for e in json.loads(reply.body).get("errors", [])] \
                    if reply.body.startswith(b"{\"errors\"") else [json.loads(reply.body).get("error")]
            except (ValueError, AttributeError):
                pass
        self.log.append(entry)
        return reply

    @staticmethod
    def route(method, path):
        if path == "/auth/o2/token" and method == "POST":
            return "token", ()
        match = LISTING_PATH.match(path)
        if match:
            operation = {"PATCH": "patchListingsItem", "GET": "getListingsItem"}.get(method)
            return operation, tuple(urllib.parse.unquote(g) for g in match.groups())
        if path == "/feeds/2021-06-30/documents" and method == "POST":
            return "createFeedDocument", ()
        if path == "/feeds/2021-06-30/feeds" and method == "POST":
            return "createFeed", ()
        match = FEED_PATH.match(path)
        if match and method == "GET":
            return "getFeed", match.groups()
        match = DOCUMENT_PATH.match(path)
        if match and method == "GET":
            return "getFeedDocument", match.groups()
        match = UPLOAD_PATH.match(path)
        if match and method in ("PUT", "GET"):
            return "upload", match.groups()
        if path == "/orders/v0/orders" and method == "GET":
            return "getOrders", ()
        match = ORDER_ITEMS_PATH.match(path)
        if match and method == "GET":
            return "getOrderItems", tuple(urllib.parse.unquote(g) for g in match.groups())
        return None, ()

    def fault_reply(self, fault, operation, answered):
        if fault.kind == "http_error":
            body = fault.body if fault.body is not None else error_list("InternalFailure", "We encountered an internal error. Please try again.")
            return Reply(fault.status, (body if isinstance(body, str) else json.dumps(body)).encode(),
                         {"Content-Type": "application/json"})
        if fault.kind == "reset":
            return Reply(action="reset")
        if fault.kind == "throttle":
            return json_reply(429, QUOTA_EXCEEDED)
        if fault.kind == "malformed":
            whole = answered.body if answered is not None else b'{"sku":"x","status":"ACCEPTED"}'
            text = fault.body if isinstance(fault.body, str) else whole[: max(1, len(whole) // 2)].decode("utf-8", "replace")
            return Reply(200, text.encode(), {"Content-Type": "application/json"})
        if fault.kind == "timeout":
            return Reply(action="hang", hang_seconds=min(fault.seconds, self.config.max_hang_seconds))
        return answered if answered is not None else json_reply(500, error_list("InternalFailure", "fault"))

    # -- Login with Amazon -------------------------------------------------------------------

    def token(self, body, headers, entry):
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            form = None
        if form is None or any(len(v) != 1 for v in form.values()):
            return json_reply(400, {"error": "invalid_request", "error_description": "Malformed request"})
        value = {k: v[0] for k, v in form.items()}
        if value.get("grant_type") != "refresh_token":
            return json_reply(400, {"error": "unsupported_grant_type",
                                    "error_description": "The authorization grant type is not supported"})
        if value.get("client_id") != self.config.client_id or value.get("client_secret") != self.config.client_secret:
            return json_reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if value.get("refresh_token") != self.config.refresh_token:
            return json_reply(400, {"error": "invalid_grant",
                                    "error_description": "The request has an invalid grant parameter : refresh_token"})
        access = "Atza|standin-%d-%s" % (next(self.ids), uuid.uuid4().hex)
        self.tokens[access] = self.clock.now() + self.config.token_expires_in
        entry["token"] = access
        return json_reply(200, {"access_token": access, "refresh_token": self.config.refresh_token,
                                "token_type": "bearer", "expires_in": self.config.token_expires_in})

    # -- Listings Items ----------------------------------------------------------------------

    def _listing_query(self, seller, query, allowed_included):
        """(marketplace, includedData, problem) after the checks every listing call makes."""
        if seller != self.config.seller_id:
            return None, None, error_list("InvalidInput", "Invalid sellerId: %s" % seller, "sellerId")
        marketplaces = [m for v in query.get("marketplaceIds", []) for m in v.split(",") if m]
        if len(marketplaces) != 1 or marketplaces[0] not in self.config.marketplaces:
            return None, None, error_list("InvalidInput", "Invalid marketplaceIds: one known marketplace is required.",
                                          "marketplaceIds")
        included = [d for v in query.get("includedData", []) for d in v.split(",") if d]
        unknown = [d for d in included if d not in allowed_included]
        if unknown:
            return None, None, error_list("InvalidInput", "Invalid includedData: %s" % ",".join(unknown),
                                          "includedData")
        return marketplaces[0], included, None

    def _patch_issues(self, patches, listing):
        """Hand-modelled attribute rules; returns (issues, new DEFAULT quantity or None)."""
        issues, quantity = [], None
        for patch in patches:
            if patch.get("path") != "/attributes/fulfillment_availability":
                continue
            if patch.get("op") == "delete":
                continue
            problem = availability_errors(patch.get("value"))
            if problem is not None:
                issues.append({"code": "4000001", "message": problem, "severity": "ERROR",
                               "attributeNames": ["fulfillment_availability"], "categories": ["INVALID_ATTRIBUTE"]})
            else:
                found = default_quantity(patch["value"])
                quantity = found if found is not None else quantity
        if listing is not None and listing.invalid:
            issues.append({"code": "90220", "message": str(listing.invalid), "severity": "ERROR",
                           "attributeNames": [], "categories": ["INVALID_ATTRIBUTE"]})
        return issues, quantity

    def patchListingsItem(self, args, query, body, entry, base_url, fault):
        seller, sku = args
        entry["sku"] = sku
        marketplace, _, problem = self._listing_query(seller, query, PATCH_INCLUDED)
        modes = query.get("mode", [])
        if problem is None and (len(modes) > 1 or (modes and modes[0] != "VALIDATION_PREVIEW")):
            problem = error_list("InvalidInput", "Invalid mode: %s" % ",".join(modes), "mode")
        if problem is not None:
            return json_reply(400, problem)
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return json_reply(400, error_list("InvalidInput", "The request body is not valid JSON.", "body"))
        violation = Schemas.first_error(self.schemas.patch_request, request)
        if violation is not None:
            entry["schema"] = violation[0]
            return json_reply(400, error_list("InvalidInput", violation[0], violation[1]))
        entry["body"] = request
        listing = self.listings.get((sku, marketplace))
        issues, quantity = self._patch_issues(request["patches"], listing)
        submission = uuid.uuid4().hex
        preview = bool(modes)
        status = "INVALID" if issues else ("VALID" if preview else "ACCEPTED")
        if not issues and listing is None:
            issues = [] if preview else [{"code": "99022", "severity": "INFO", "categories": [],
                                          "message": "A new offer-only listing will be created for this SKU."}]
        entry.update(status_text=status, submissionId=submission, quantity=quantity, preview=preview)
        if status == "ACCEPTED" and quantity is not None:
            self.accept(sku, marketplace, quantity, submission, "patch")
        return json_reply(200, {"sku": sku, "status": status, "submissionId": submission, "issues": issues})

    def getListingsItem(self, args, query, body, entry, base_url, fault):
        seller, sku = args
        entry["sku"] = sku
        marketplace, included, problem = self._listing_query(seller, query, GET_INCLUDED)
        if problem is not None:
            return json_reply(400, problem)
        listing = self.listings.get((sku, marketplace))
        if listing is None:
            return json_reply(404, error_list("NOT_FOUND", "SKU '%s' not found in marketplace %s" % (sku, marketplace)))
        included = included or ["summaries"]
        item = {"sku": sku}
        if "summaries" in included:
            status = (["BUYABLE"] if listing.buyable else []) + (["DISCOVERABLE"] if listing.discoverable else [])
            summary = {"marketplaceId": marketplace, "productType": listing.product_type,
                       "conditionType": "new_new", "status": status, "itemName": "Standin item " + sku,
                       "createdDate": iso_time(listing.created), "lastUpdatedDate": iso_time(listing.updated)}
            if listing.asin:
                summary["asin"] = listing.asin
            item["summaries"] = [summary]
        if "issues" in included:
            item["issues"] = [dict({"attributeNames": [], "categories": []}, **i) for i in listing.issues]
        if "fulfillmentAvailability" in included:
            item["fulfillmentAvailability"] = [] if listing.quantity is None else [
                {"fulfillmentChannelCode": "DEFAULT", "quantity": listing.quantity}]
        if "attributes" in included:
            item["attributes"] = {} if listing.quantity is None else {"fulfillment_availability": [
                {"fulfillment_channel_code": "DEFAULT", "quantity": listing.quantity}]}
        entry["buyable"], entry["quantity"] = listing.buyable, listing.quantity
        return json_reply(200, item)

    # -- Feeds --------------------------------------------------------------------------------

    def _new_document(self, kind, content=None):
        document_id = "amzn1.tortuga.4.na.%d" % next(self.ids)
        self.documents[document_id] = {"kind": kind, "content": content}
        return document_id

    def upload(self, method, document_id, body):
        document = self.documents.get(document_id)
        if document is None:
            return Reply(403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"})
        if method == "PUT":
            if document["kind"] != "input":
                return Reply(403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"})
            document["content"] = body
            return Reply(200, b"", {"ETag": '"%s"' % uuid.uuid4().hex})
        if document["content"] is None:
            return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})
        return Reply(200, document["content"], {"Content-Type": "application/json"})

    def createFeedDocument(self, args, query, body, entry, base_url, fault):
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return json_reply(400, error_list("InvalidInput", "The request body is not valid JSON.", "body"))
        violation = Schemas.first_error(self.schemas.document_spec, request)
        if violation is not None:
            return json_reply(400, error_list("InvalidInput", violation[0], violation[1]))
        document_id = self._new_document("input")
        entry["document"] = document_id
        return json_reply(201, {"feedDocumentId": document_id, "url": base_url + "/_documents/" + document_id})

    def createFeed(self, args, query, body, entry, base_url, fault):
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return json_reply(400, error_list("InvalidInput", "The request body is not valid JSON.", "body"))
        violation = Schemas.first_error(self.schemas.feed_spec, request)
        if violation is not None:
            return json_reply(400, error_list("InvalidInput", violation[0], violation[1]))
        if request["feedType"] != "JSON_LISTINGS_FEED":
            return json_reply(400, error_list("InvalidInput", "Unsupported feedType: %s" % request["feedType"]))
        if any(m not in self.config.marketplaces for m in request["marketplaceIds"]):
            return json_reply(400, error_list("InvalidInput", "Invalid marketplaceIds."))
        document = self.documents.get(request["inputFeedDocumentId"])
        if document is None or document["kind"] != "input" or document["content"] is None:
            return json_reply(400, error_list("InvalidInput", "Invalid inputFeedDocumentId: nothing was uploaded."))
        feed_id = str(50000 + next(self.ids))
        outcome = {"feed_fatal": "FATAL", "feed_cancelled": "CANCELLED"}.get(fault.kind if fault else None, "DONE")
        self.feeds[feed_id] = {"feedId": feed_id, "feedType": request["feedType"],
                               "marketplaceIds": request["marketplaceIds"], "createdTime": self.clock.now(),
                               "processingStatus": "IN_QUEUE", "input": request["inputFeedDocumentId"],
                               "outcome": outcome, "started": None, "ended": None, "result": None,
                               "messages": 0, "invalid": 0}
        entry["feedId"] = feed_id
        return json_reply(202, {"feedId": feed_id})

    def _feed_step(self, feed, now):
        if feed["processingStatus"] == "IN_QUEUE" and feed["outcome"] == "CANCELLED":
            feed["processingStatus"], feed["ended"] = "CANCELLED", now
            return
        if feed["processingStatus"] == "IN_QUEUE" and now >= feed["createdTime"] + self.config.feed_queue_seconds:
            feed["processingStatus"] = "IN_PROGRESS"
            feed["started"] = feed["createdTime"] + self.config.feed_queue_seconds
        if feed["processingStatus"] == "IN_PROGRESS" and now >= feed["started"] + self.config.feed_processing_seconds:
            feed["ended"] = feed["started"] + self.config.feed_processing_seconds
            if feed["outcome"] == "FATAL":
                feed["processingStatus"] = "FATAL"
                return
            feed["processingStatus"] = "DONE"
            feed["result"] = self._new_document("report", json.dumps(self._process_feed(feed)).encode())

    def _process_feed(self, feed):
        """Runs a feed's messages; returns its processing report."""
        report = {"header": {"sellerId": self.config.seller_id, "version": "2.0", "feedId": feed["feedId"]},
                  "issues": [], "summary": {"errors": 0, "warnings": 0, "messagesProcessed": 0,
                                            "messagesAccepted": 0, "messagesInvalid": 0}}
        content = self.documents[feed["input"]]["content"]
        try:
            document = json.loads(content.decode("utf-8"))
            violation = Schemas.first_error(self.schemas.feed_document, document)
        except (UnicodeDecodeError, ValueError):
            document, violation = None, ("The feed document is not valid JSON.", "/")
        if violation is None and document["header"]["sellerId"] != self.config.seller_id:
            violation = ("The header's sellerId does not match the selling partner.", "/header/sellerId")
        if violation is not None:
            report["issues"].append({"code": "100000", "severity": "ERROR",
                                     "message": "%s (at %s)" % violation})
            report["summary"]["errors"] = 1
            feed["schema"] = violation[0]
            return report
        summary = report["summary"]
        for message in document["messages"]:
            summary["messagesProcessed"] += 1
            marketplace = feed["marketplaceIds"][0]
            listing = self.listings.get((message["sku"], marketplace))
            if message["operationType"] != "PATCH":
                issues, quantity = [{"code": "100001", "severity": "ERROR",
                                     "message": "The stand-in applies PATCH messages only."}], None
            else:
                issues, quantity = self._patch_issues(message["patches"], listing)
            for issue in issues:
                report["issues"].append({"messageId": message["messageId"], "sku": message["sku"],
                                         "code": issue["code"], "severity": issue["severity"],
                                         "message": issue["message"]})
                summary["errors"] += issue["severity"] == "ERROR"
            if issues:
                summary["messagesInvalid"] += 1
                continue
            summary["messagesAccepted"] += 1
            if quantity is not None:
                self.accept(message["sku"], marketplace, quantity, "feed-%s-%d" % (feed["feedId"], message["messageId"]), "feed")
        feed["messages"], feed["invalid"] = summary["messagesProcessed"], summary["messagesInvalid"]
        return report

    def feed_view(self, feed):
        view = {k: feed[k] for k in ("feedId", "feedType", "marketplaceIds", "processingStatus")}
        view["createdTime"] = iso_time(feed["createdTime"])
        if feed["started"] is not None:
            view["processingStartTime"] = iso_time(feed["started"])
        if feed["ended"] is not None:
            view["processingEndTime"] = iso_time(feed["ended"])
        if feed["result"] is not None:
            view["resultFeedDocumentId"] = feed["result"]
        return view

    def getFeed(self, args, query, body, entry, base_url, fault):
        feed = self.feeds.get(args[0])
        if feed is None:
            return json_reply(404, error_list("NotFound", "The feed %s was not found." % args[0]))
        entry["processingStatus"] = feed["processingStatus"]
        return json_reply(200, self.feed_view(feed))

    def getFeedDocument(self, args, query, body, entry, base_url, fault):
        document = self.documents.get(args[0])
        if document is None or document["kind"] != "report":
            return json_reply(404, error_list("NotFound", "The feed document %s was not found." % args[0]))
        return json_reply(200, {"feedDocumentId": args[0], "url": base_url + "/_documents/" + args[0]})


# ----------------------------------------------------------------------------------------
# The control API
# ----------------------------------------------------------------------------------------

    # -- Orders v0 ---------------------------------------------------------------------------

    def _token(self, operation, state):
        token = "NT-%d-%s" % (next(self.ids), uuid.uuid4().hex)
        self.next_tokens[token] = (operation, state)
        return token

    @staticmethod
    def _query_time(query, name):
        value = (query.get(name) or [None])[0]
        if value is None:
            return None
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(name)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()

    def order_view(self, order):
        return {"AmazonOrderId": order["AmazonOrderId"], "PurchaseDate": iso_time(order["PurchaseDate"]),
                "LastUpdateDate": iso_time(order["LastUpdateDate"]), "OrderStatus": order["OrderStatus"],
                "FulfillmentChannel": order["FulfillmentChannel"], "MarketplaceId": order["MarketplaceId"],
                "SalesChannel": "Amazon.com", "OrderType": "StandardOrder",
                "NumberOfItemsUnshipped": sum(i["QuantityOrdered"] for i in order["items"])
                if order["OrderStatus"] in ("Unshipped", "Pending") else 0}

    def getOrders(self, args, query, body, entry, base_url, fault):
        marketplaces = (query.get("MarketplaceIds") or [""])[0].split(",")
        if not marketplaces or marketplaces == [""]:
            return json_reply(400, error_list("InvalidInput", "MarketplaceIds is required.", "MarketplaceIds"))
        token = (query.get("NextToken") or [None])[0]
        if token is not None:
            state = self.next_tokens.get(token)
            if state is None or state[0] != "getOrders":
                return json_reply(400, error_list("InvalidInput", "Invalid NextToken.", "NextToken"))
            matching, offset, size = state[1]
        else:
            try:
                updated_after = self._query_time(query, "LastUpdatedAfter")
                created_after = self._query_time(query, "CreatedAfter")
            except ValueError as error:
                return json_reply(400, error_list("InvalidInput", "%s is not an ISO 8601 date." % error, str(error)))
            if (updated_after is None) == (created_after is None):
                return json_reply(400, error_list(
                    "InvalidInput", "Exactly one of CreatedAfter and LastUpdatedAfter is required."))
            channels = [c for c in (query.get("FulfillmentChannels") or [""])[0].split(",") if c]
            statuses = [c for c in (query.get("OrderStatuses") or [""])[0].split(",") if c]
            try:
                size = int((query.get("MaxResultsPerPage") or ["100"])[0])
            except ValueError:
                size = 0
            if not 1 <= size <= 100:
                return json_reply(400, error_list("InvalidInput", "MaxResultsPerPage must be 1..100."))
            size = min(size, self.config.orders_page_size)
            matching = sorted((o for o in self.orders.values()
                               if o["MarketplaceId"] in marketplaces
                               and (updated_after is None or o["LastUpdateDate"] > updated_after)
                               and (created_after is None or o["PurchaseDate"] > created_after)
                               and (not channels or o["FulfillmentChannel"] in channels)
                               and (not statuses or o["OrderStatus"] in statuses)),
                              key=lambda o: (o["LastUpdateDate"], o["AmazonOrderId"]))
            matching = [o["AmazonOrderId"] for o in matching]
            offset = 0
        page = matching[offset:offset + size]
        payload = {"Orders": [self.order_view(self.orders[i]) for i in page],
                   "LastUpdatedBefore": iso_time(self.clock.now())}
        if offset + size < len(matching):
            payload["NextToken"] = self._token("getOrders", (matching, offset + size, size))
        entry["orders"] = page
        return json_reply(200, {"payload": payload})

    def getOrderItems(self, args, query, body, entry, base_url, fault):
        order = self.orders.get(args[0])
        if order is None:
            return json_reply(404, error_list("InvalidInput", "Invalid AmazonOrderId: %s" % args[0]))
        token = (query.get("NextToken") or [None])[0]
        offset = 0
        if token is not None:
            state = self.next_tokens.get(token)
            if state is None or state[0] != "getOrderItems" or state[1][0] != args[0]:
                return json_reply(400, error_list("InvalidInput", "Invalid NextToken.", "NextToken"))
            offset = state[1][1]
        size = max(1, self.config.items_page_size)
        items = order["items"][offset:offset + size]
        payload = {"AmazonOrderId": order["AmazonOrderId"],
                   "OrderItems": [{"OrderItemId": i["OrderItemId"], "SellerSKU": i["SellerSKU"],
                                   "ASIN": i["ASIN"], "QuantityOrdered": i["QuantityOrdered"],
                                   "QuantityShipped": i["QuantityOrdered"] if order["OrderStatus"] == "Shipped"
                                   else 0, "Title": i["SellerSKU"]} for i in items]}
        if offset + size < len(order["items"]):
            payload["NextToken"] = self._token("getOrderItems", (args[0], offset + size))
        return json_reply(200, {"payload": payload})

    def make_order(self, spec):
        """An order on Amazon: its listings' quantities drop at once (as Amazon's do)."""
        lines = spec.get("items")
        channel = spec.get("fulfillmentChannel", "MFN")
        status = spec.get("status", "Unshipped")
        marketplace = spec.get("marketplaceId", self.config.marketplaces[0])
        if not isinstance(lines, list) or not lines:
            raise ValueError("items must be a non-empty list of {sku, quantity}")
        if channel not in ("MFN", "AFN") or status not in ORDER_STATUSES:
            raise ValueError("fulfillmentChannel is MFN or AFN; status one of " + ", ".join(ORDER_STATUSES))
        sequence = next(self.ids)
        order_id = spec.get("id", "111-%07d-%07d" % (sequence, sequence * 7 % 10000000))
        if not isinstance(order_id, str) or order_id in self.orders:
            raise ValueError("id must be a new text")
        now = self.clock.now()
        order = {"AmazonOrderId": order_id, "OrderStatus": status, "FulfillmentChannel": channel,
                 "MarketplaceId": marketplace, "PurchaseDate": now, "LastUpdateDate": now, "items": []}
        for index, line in enumerate(lines):
            quantity = line.get("quantity") if isinstance(line, dict) else None
            if not isinstance(line, dict) or not isinstance(line.get("sku"), str) or \
                    isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                raise ValueError("an item is {sku, quantity >= 1}")
            order["items"].append({"OrderItemId": "%014d" % (sequence * 100 + index + 1), "SellerSKU": line["sku"],
                                   "ASIN": "B0ORDER%03d" % index, "QuantityOrdered": quantity})
        self.orders[order_id] = order
        self._move(order, -1)
        return self.order_view(order)

    def _move(self, order, sign):
        for item in order["items"]:
            listing = self.listings.get((item["SellerSKU"], order["MarketplaceId"]))
            if listing is not None and listing.quantity is not None:
                listing.quantity = max(0, listing.quantity + sign * item["QuantityOrdered"])
                listing.updated = self.clock.now()

    def order_status(self, spec):
        order = self.orders.get(spec.get("id"))
        status = spec.get("status")
        if order is None or status not in ORDER_STATUSES:
            raise ValueError("id names an order; status one of " + ", ".join(ORDER_STATUSES))
        if status == "Canceled" and order["OrderStatus"] != "Canceled":
            self._move(order, +1)
        order["OrderStatus"] = status
        order["LastUpdateDate"] = self.clock.now()
        return self.order_view(order)


class Control:
    def __init__(self, standin, server):
        self.standin, self.server = standin, server

    def handle(self, method, path, query, body):
        route = path[len("/_control/"):]
        try:
            spec = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return json_reply(400, {"error": "body is not JSON"})
        standin = self.standin
        with standin.lock:
            try:
                standin.process_due()
                if method == "GET" and route == "state":
                    return json_reply(200, self.state())
                if method == "GET" and route == "log":
                    since = int((query.get("since") or ["0"])[0])
                    return Reply(200, standin.log.lines(since).encode(), {"Content-Type": "application/x-ndjson"})
                if method != "POST":
                    return json_reply(404, {"error": "unknown control route"})
                handler = getattr(self, "post_" + route.replace("/", "_"), None)
                if handler is None:
                    return json_reply(404, {"error": "unknown control route %r" % route})
                if not isinstance(spec, dict):
                    return json_reply(400, {"error": "body must be a JSON object"})
                return json_reply(200, handler(spec) or {"ok": True})
            except (ValueError, TypeError, KeyError) as error:
                return json_reply(400, {"error": str(error)})

    def state(self):
        s = self.standin
        return {"listings": [s.listing_snapshot(l) for l in s.listings.values()],
                "pending": [{"applyAt": p[0], "sku": p[1], "marketplaceId": p[2], "quantity": p[3],
                             "submissionId": p[4], "source": p[5]} for p in s.pending],
                "applications": s.applications,
                "feeds": [dict(s.feed_view(f), messages=f["messages"], invalid=f["invalid"]) for f in s.feeds.values()],
                "buckets": {op: b.status() for op, b in s.buckets.items()},
                "tokens": len([t for t in s.tokens if s.token_valid(t)]),
                "clock": {"now": s.clock.now(), "frozen": s.clock.frozen},
                "config": dataclasses.asdict(s.config),
                "faults": [dataclasses.asdict(f) for f in s.faults], "requests": s.log.sequence}

    def post_reset(self, spec):
        self.standin.reset()
        if "seed" in spec:
            self.standin.seed(spec["seed"])

    def post_seed(self, spec):
        self.standin.seed(spec)

    def post_listing(self, spec):
        return self.standin.set_listing(spec)

    def post_sale(self, spec):
        return self.standin.external_sale(spec)

    def post_order(self, spec):
        return self.standin.make_order(spec)

    def post_order_status(self, spec):
        return self.standin.order_status(spec)

    def post_config(self, spec):
        standin = self.standin
        standin.config.update(spec)
        if "limits" in spec:
            for operation, (rate, burst) in standin.config.limits.items():
                bucket = standin.buckets[operation]
                bucket._refill()
                if [bucket.rate, bucket.burst] != [float(rate), float(burst)]:
                    bucket.rate, bucket.burst, bucket.tokens = float(rate), float(burst), float(burst)
        return dataclasses.asdict(standin.config)

    def post_clock(self, spec):
        clock = self.standin.clock
        if spec.get("freeze") is True:
            clock.freeze()
        if spec.get("freeze") is False:
            clock.run()
        if "advance" in spec:
            seconds = float(spec["advance"])
            if seconds < 0:
                raise ValueError("advance must not be negative")
            clock.advance(seconds)
        self.standin.process_due()
        return {"now": clock.now(), "frozen": clock.frozen}

    def post_buckets(self, spec):
        for operation, tokens in spec.items():
            bucket = self.standin.buckets[operation]
            bucket._refill()
            bucket.tokens = max(0.0, min(bucket.burst, float(tokens)))
        return {op: b.status() for op, b in self.standin.buckets.items()}

    def post_tokens_expire(self, spec):
        """Token expiry mid-run: every access token issued so far stops working now."""
        self.standin.tokens.clear()

    def post_faults(self, spec):
        parsed = [Fault.from_json(f) for f in (spec["faults"] if "faults" in spec else [spec])]
        self.standin.faults.extend(parsed)
        return {"faults": [dataclasses.asdict(f) for f in self.standin.faults]}

    def post_faults_clear(self, spec):
        self.standin.faults.clear()

    def post_shutdown(self, spec):
        threading.Thread(target=self.server.shutdown, daemon=True).start()


# ----------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "amazon-standin"
    timeout = 60

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("amazon-standin: " + (format % args) + "\n")

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        self._was_reset = False
        url = urllib.parse.urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return self._send(json_reply(413, error_list("RequestEntityTooLarge", "The request is too large.")))
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path.startswith("/_control/"):
            return self._send(self.server.control.handle(method, url.path, query, body))
        headers = {k.lower(): v for k, v in self.headers.items()}
        base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._send(self.server.standin.handle(method, url.path, query, headers, body, base))

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply):
        if reply.action == "reset":
            return self._reset()
        if reply.action == "hang":
            return self._hang(reply.hang_seconds)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _reset(self):
        self._was_reset = True
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _hang(self, seconds):
        deadline = time.monotonic() + seconds
        for _ in range(int(seconds * 20) + 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                readable, _, _ = select.select([self.connection], [], [], min(0.05, remaining))
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    break
            except OSError:
                break
        self._was_reset = True
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def finish(self):
        if getattr(self, "_was_reset", False):
            return
        try:
            super().finish()
        except OSError:
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, standin, verbose=False):
        super().__init__(("127.0.0.1", port), Handler)
        self.standin, self.control, self.verbose = standin, Control(standin, self), verbose

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Amazon Selling Partner API stand-in (listings, feeds, LWA).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--seed", help="JSON file of listings (README.md)")
    parser.add_argument("--config", help="JSON file of settings (README.md)")
    parser.add_argument("--schemas", default=SCHEMA_DIR, help="the official amazon-sp-api schema directory")
    parser.add_argument("--request-log", help="append each request to this file as a JSON line")
    parser.add_argument("--freeze-clock", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args(argv)
    config = Config()
    if arguments.config:
        with open(arguments.config, encoding="utf-8") as file:
            config.update(json.load(file))
    standin = Standin(Schemas(arguments.schemas), config, arguments.request_log)
    if arguments.seed:
        with open(arguments.seed, encoding="utf-8") as file:
            standin.seed(json.load(file))
    if arguments.freeze_clock:
        standin.clock.freeze()
    server = Server(arguments.port, standin, arguments.verbose)
    port = server.server_address[1]
    if arguments.port_file:
        temporary = arguments.port_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write("%d\n" % port)
        os.replace(temporary, arguments.port_file)
    print("amazon-standin listening on http://127.0.0.1:%d" % port, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
