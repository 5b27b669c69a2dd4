#!/usr/bin/env python3
"""Square Inventory API stand-in: what the skuld-push worker's Square driver talks to in tests.

What this file owns
  An HTTP server on 127.0.0.1 that answers, the way Square does at Square-Version 2025-08-20,
    POST /v2/inventory/changes/batch-create     (BatchChangeInventory)
    POST /v2/inventory/counts/batch-retrieve    (BatchRetrieveInventoryCounts)
    GET  /v2/inventory/{catalog_object_id}      (RetrieveInventoryCount)
    GET  /v2/orders/{order_id}                  (RetrieveOrder)
  plus a control API under `/_control/` through which a test seeds catalog objects, locations
  and counts, makes sales and adjustments on Square's side, makes, cancels and refunds orders
  (each announced by a signed order.* or refund.* notification, delivered by webhooks.py with
  retries, duplicates and late deliveries), drives the clock, injects faults and reads the
  state and the request log.  README.md beside this file is the user's guide;
  this header is the specification.

What is checked against the official schema, and what is modelled by hand
  * Every request body is validated with python3-jsonschema against the operation's request
    schema in Square's own OpenAPI file (schema/square-inventory-2025-08-20.openapi.json, a
    copy of shared/channel-schemas/square/).  OpenAPI 3.0 schema objects are turned into JSON
    Schema draft 7 mechanically (`openapi_to_jsonschema`): `$ref`s inlined, `nullable: true`
    adds null to `type` and `enum`, descriptive keys dropped.  A body that does not conform is
    answered 400 `{"errors": [{"category": "INVALID_REQUEST_ERROR", "code", "detail", "field"}]}`
    with the ErrorCode the violation maps to (VALIDATION_CODES) and the field as a dotted path
    (`changes[0].physical_count.quantity`); the codes are the schema's, the detail texts are not
    Square's word for word.
  * Answers are built to conform to the response schemas; the tests check them against those.
  * Business rules are modelled by hand from Square's documentation and CHANNELS.md; the
    [unverified] ones are settings: the 24-hour window of a physical count's occurred_at, the
    100-change limit, all-or-nothing batches, error codes and field paths of unknown objects and
    locations, idempotency (same key + same body: the stored answer, nothing applied; same key
    + other body: IDEMPOTENCY_KEY_REUSED), ignore_unchanged_counts, counts computed in
    occurred_at order, the token bucket behind 429 RATE_LIMITED.

Invariants
  * State (objects, locations, histories, bucket, idempotency records, faults, log, config)
    changes only while `Standin.lock` is held; a request's execution holds it from start to end,
    so every call is atomic.  An injected `delay` sleeps before taking it.
  * A batch-create applies all of its changes or none.
  * A change is applied at most once per idempotency key; a replay is marked `replayed`.
  * An IN_STOCK count is always recomputed from the history: the latest physical count (by
    occurred_at, then arrival) and every adjustment after it.
  * Every wait is bounded: hangs and delays by `max_hang_seconds`, request bodies by
    MAX_BODY_BYTES, the in-memory log by MAX_LOG_ENTRIES (oldest dropped first).
"""

import argparse
import base64
import copy
import dataclasses
import datetime
import decimal
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema

import webhooks

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA_PATH = os.path.join(HERE, "schema", "square-inventory-2025-08-20.openapi.json")

DEFAULT_TOKEN = "EAAAEstandin-square-token"
DEFAULT_VERSIONS = ("2025-08-20",)
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_LOG_ENTRIES = 100_000
MAX_ERRORS = 10                           # errors reported for one non-conforming body
SQUARE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
QUANTITY = re.compile(r"^-?\d{1,20}(\.\d{1,5})?$")       # up to 5 digits after the point
RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
STATES = ("CUSTOM", "IN_STOCK", "SOLD", "RETURNED_BY_CUSTOMER", "RESERVED_FOR_SALE", "SOLD_ONLINE",
          "ORDERED_FROM_VENDOR", "RECEIVED_FROM_VENDOR", "IN_TRANSIT_TO", "NONE", "WASTE",
          "UNLINKED_RETURN", "COMPOSED", "DECOMPOSED", "SUPPORTED_BY_NEWER_VERSION", "IN_TRANSIT")

OPERATIONS = {
    ("POST", "/v2/inventory/changes/batch-create"): ("batch-create", "BatchChangeInventoryRequest"),
    ("POST", "/v2/inventory/counts/batch-retrieve"): ("batch-retrieve", "BatchRetrieveInventoryCountsRequest"),
}
RETRIEVE_PATH = re.compile(r"^/v2/inventory/([^/]+)$")
ORDER_PATH = re.compile(r"^/v2/orders/([^/]+)$")      # RetrieveOrder
WRITE_OPERATIONS = ("batch-create",)


# ----------------------------------------------------------------------------------------
# The official schema
# ----------------------------------------------------------------------------------------

VALIDATION_KEYS = ("type", "properties", "required", "items", "enum", "minLength", "maxLength",
                   "minimum", "maximum", "minItems", "maxItems", "additionalProperties", "pattern")


def _nullable(schema):
    schema = dict(schema)
    if isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    if "enum" in schema:
        schema["enum"] = list(schema["enum"]) + [None]
    return schema


def openapi_to_jsonschema(node, components, stack=()):
    """One OpenAPI 3.0 schema object as JSON Schema draft 7, with every $ref inlined."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n, components, stack) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in stack:                       # a recursive type: accepted as anything
            return {}
        target = openapi_to_jsonschema(components[name], components, stack + (name,))
        target["x-name"] = name
        return _nullable(target) if node.get("nullable") else target
    out = {}
    for key in VALIDATION_KEYS:
        if key not in node:
            continue
        value = node[key]
        if key == "properties":
            value = {k: openapi_to_jsonschema(v, components, stack) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = openapi_to_jsonschema(value, components, stack)
        out[key] = value
    return _nullable(out) if node.get("nullable") else out


class Schema:
    """The request and response schemas of the three operations, from the OpenAPI file."""

    def __init__(self, document):
        if document.get("openapi", "").split(".")[0] != "3":
            raise SystemExit("not an OpenAPI 3 document")
        components = document["components"]["schemas"]
        self.version_default = None
        for header in document["components"]["securitySchemes"]["oauth2"].get("x-additional-headers", []):
            if header.get("name") == "Square-Version":
                self.version_default = header["schema"]["default"]
        self.validators = {}
        for name in components:
            converted = openapi_to_jsonschema({"$ref": "#/components/schemas/" + name}, components)
            self.validators[name] = jsonschema.Draft7Validator(converted)

    def errors(self, name, instance):
        """Square errors for every way instance breaks schema `name` (at most MAX_ERRORS)."""
        found = sorted(self.validators[name].iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [square_validation_error(e) for e in found[:MAX_ERRORS]]


def field_path(parts):
    text = ""
    for part in parts:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text


EXPECTED = {"string": "EXPECTED_STRING", "integer": "EXPECTED_INTEGER", "number": "EXPECTED_FLOAT",
            "boolean": "EXPECTED_BOOLEAN", "object": "EXPECTED_OBJECT", "array": "EXPECTED_ARRAY"}
VALIDATION_CODES = {"required": "MISSING_REQUIRED_PARAMETER", "enum": "INVALID_ENUM_VALUE",
                    "maxLength": "VALUE_TOO_LONG", "minLength": "VALUE_TOO_SHORT",
                    "maximum": "VALUE_TOO_HIGH", "minimum": "VALUE_TOO_LOW",
                    "maxItems": "ARRAY_LENGTH_TOO_LONG", "minItems": "ARRAY_LENGTH_TOO_SHORT",
                    "pattern": "VALUE_REGEX_MISMATCH"}


def square_validation_error(error):
    """A jsonschema ValidationError as Square's Error object."""
    path = list(error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        return square_error("MISSING_REQUIRED_PARAMETER", "Field must be set",
                            field_path(path + missing[:1]))
    if kind == "type":
        wanted = error.validator_value[0] if isinstance(error.validator_value, list) else error.validator_value
        article = "an" if wanted[0] in "aeiou" else "a"
        return square_error(EXPECTED.get(wanted, "INCORRECT_TYPE"), "Expected %s %s value" % (article, wanted),
                            field_path(path))
    if kind == "enum":
        name = error.schema.get("x-name", "enum")
        return square_error("INVALID_ENUM_VALUE", "`%s` is not a valid enum value for `%s`" % (error.instance, name),
                            field_path(path))
    if kind in ("maxLength", "minLength"):
        if kind == "minLength" and error.instance == "":
            return square_error("VALUE_EMPTY", "Field must not be blank", field_path(path))
        return square_error(VALIDATION_CODES[kind], "Field must not be %s than %d length" % (
            "greater" if kind == "maxLength" else "less", error.validator_value), field_path(path))
    if kind in ("maximum", "minimum"):
        return square_error(VALIDATION_CODES[kind], "Field must not be %s than %s" % (
            "greater" if kind == "maximum" else "less", error.validator_value), field_path(path))
    return square_error(VALIDATION_CODES.get(kind, "BAD_REQUEST"), error.message, field_path(path))


def square_error(code, detail, field=None, category="INVALID_REQUEST_ERROR"):
    error = {"category": category, "code": code, "detail": detail}
    if field:
        error["field"] = field
    return error


# ----------------------------------------------------------------------------------------
# Clock, bucket, quantities, times
# ----------------------------------------------------------------------------------------

class Clock:
    """Seconds since the epoch; runs with real time unless frozen, and can be moved by hand."""

    def __init__(self):
        self._base = time.time()
        self._started = time.monotonic()
        self.frozen = False

    def now(self):
        return self._base if self.frozen else self._base + (time.monotonic() - self._started)

    def freeze(self):
        self._base, self.frozen = self.now(), True

    def run(self):
        self._base, self._started, self.frozen = self.now(), time.monotonic(), False

    def advance(self, seconds):
        self._base += seconds

    def set(self, seconds):
        self._base, self._started = seconds, time.monotonic()


class TokenBucket:
    """`capacity` requests, refilled at `rate` per clock second; one request takes one token."""

    def __init__(self, clock, capacity, rate):
        self.clock = clock
        self.capacity = float(capacity)
        self.rate = float(rate)
        self.level = float(capacity)
        self.updated = clock.now()

    def _refill(self):
        now = self.clock.now()
        self.level = min(self.capacity, self.level + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def try_take(self):
        self._refill()
        if self.level < 1.0:
            return False
        self.level -= 1.0
        return True

    def seconds_until_one(self):
        self._refill()
        return 0.0 if self.level >= 1.0 or self.rate <= 0 else (1.0 - self.level) / self.rate

    def status(self):
        self._refill()
        return {"capacity": self.capacity, "rate": self.rate, "level": self.level}


def quantity_text(value):
    """A Decimal as Square writes a quantity: no exponent, no trailing zeros."""
    value = value.quantize(decimal.Decimal("0.00001"), rounding=decimal.ROUND_FLOOR).normalize()
    text = format(value, "f")
    return "0" if text in ("-0", "0") else text


def parse_quantity(text):
    if not isinstance(text, str) or not QUANTITY.match(text):
        return None
    return decimal.Decimal(text)


def parse_time(text):
    """Seconds since the epoch of an RFC 3339 timestamp, or None."""
    match = RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    zone = match.group(8)
    offset = datetime.timedelta(0) if zone == "Z" else (1 if zone[0] == "+" else -1) * datetime.timedelta(
        hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone(offset))
    except ValueError:
        return None
    return moment.timestamp() + float(match.group(7) or 0)


def time_text(seconds):
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


# ----------------------------------------------------------------------------------------
# Catalog objects, locations and their histories
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class CatalogObject:
    id: str
    type: str = "ITEM_VARIATION"
    exists: bool = True           # false: deleted, answered NOT_FOUND


@dataclasses.dataclass
class Location:
    id: str
    name: str = ""
    active: bool = True           # false: INVALID_VALUE on location_id [unverified]


@dataclasses.dataclass
class Record:
    """One change in the history of (object, location): a physical count or an adjustment."""
    id: str
    kind: str                     # PHYSICAL_COUNT | ADJUSTMENT
    occurred_at: float
    created_at: float
    sequence: int
    quantity: decimal.Decimal
    state: str = "IN_STOCK"       # PHYSICAL_COUNT
    from_state: str = ""          # ADJUSTMENT
    to_state: str = ""
    reference_id: str = None
    source: str = "api"           # api | control

    def view(self, object_id, location_id):
        common = {"id": self.id, "catalog_object_id": object_id, "catalog_object_type": "ITEM_VARIATION",
                  "location_id": location_id, "quantity": quantity_text(self.quantity),
                  "occurred_at": time_text(self.occurred_at), "created_at": time_text(self.created_at)}
        if self.reference_id is not None:
            common["reference_id"] = self.reference_id
        if self.kind == "PHYSICAL_COUNT":
            return {"type": "PHYSICAL_COUNT", "physical_count": dict(common, state=self.state)}
        return {"type": "ADJUSTMENT", "adjustment": dict(common, from_state=self.from_state, to_state=self.to_state)}


class Inventory:
    """Objects, locations, and the history of every (object, location)."""

    def __init__(self, clock):
        self.clock = clock
        self.objects = {}
        self.locations = {}
        self.history = {}                    # (object, location) -> [Record]
        self.sequence = 0

    def seed(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a seed is a JSON object")
        self.objects.clear()
        self.locations.clear()
        self.history.clear()
        for entry in spec.get("locations", []):
            self.update_location(entry)
        for entry in spec.get("objects", []):
            self.update_object(entry)
        # Seeded counts lie two days back: anything the tests send comes after them.
        for entry in spec.get("counts", []):
            self.external_count(dict({"occurred_at": self.clock.now() - 2 * 86400}, **entry))

    @staticmethod
    def _text(entry, name):
        value = entry.get(name)
        if not isinstance(value, str) or not value or len(value) > 100:
            raise ValueError("%s must be a string of 1 to 100 characters" % name)
        return value

    def update_object(self, entry):
        object_id = self._text(entry, "id")
        target = self.objects.setdefault(object_id, CatalogObject(object_id))
        for name in ("type", "exists"):
            if name in entry:
                setattr(target, name, entry[name])
        return target

    def update_location(self, entry):
        location_id = self._text(entry, "id")
        target = self.locations.setdefault(location_id, Location(location_id))
        for name in ("name", "active"):
            if name in entry:
                setattr(target, name, entry[name])
        return target

    def _append(self, object_id, location_id, record):
        self.history.setdefault((object_id, location_id), []).append(record)

    def next_record(self, kind, occurred_at, quantity, **fields):
        self.sequence += 1
        return Record("STANDIN%06d" % self.sequence, kind, occurred_at, self.clock.now(), self.sequence,
                      quantity, **fields)

    def _control_target(self, entry):
        object_id = self._text(entry, "catalog_object_id")
        location_id = self._text(entry, "location_id")
        self.objects.setdefault(object_id, CatalogObject(object_id))
        self.locations.setdefault(location_id, Location(location_id))
        quantity = parse_quantity(str(entry.get("quantity")))
        if quantity is None:
            raise ValueError("quantity must be a decimal (a string or a number)")
        occurred_at = entry.get("occurred_at", self.clock.now())
        if isinstance(occurred_at, str):
            occurred_at = parse_time(occurred_at)
        if not isinstance(occurred_at, (int, float)) or isinstance(occurred_at, bool):
            raise ValueError("occurred_at must be RFC 3339 or seconds since the epoch")
        return object_id, location_id, quantity, float(occurred_at)

    def external_count(self, entry):
        """A physical count made on Square's side (a stocktake in the Square app)."""
        object_id, location_id, quantity, occurred_at = self._control_target(entry)
        self._append(object_id, location_id,
                     self.next_record("PHYSICAL_COUNT", occurred_at, quantity, source="control"))
        return self.count_view(object_id, location_id)

    def external_adjustment(self, entry, from_state="IN_STOCK", to_state="SOLD"):
        """An adjustment on Square's side: a sale at a Square till or online (IN_STOCK -> SOLD)."""
        object_id, location_id, quantity, occurred_at = self._control_target(entry)
        from_state = entry.get("from_state", from_state)
        to_state = entry.get("to_state", to_state)
        if from_state not in STATES or to_state not in STATES or from_state == to_state:
            raise ValueError("from_state and to_state must be two different InventoryStates")
        self._append(object_id, location_id, self.next_record(
            "ADJUSTMENT", occurred_at, quantity, from_state=from_state, to_state=to_state, source="control"))
        return self.count_view(object_id, location_id)

    def in_stock(self, object_id, location_id):
        """(quantity, calculated_at) of the IN_STOCK count, or None when nothing was recorded."""
        records = self.history.get((object_id, location_id))
        if not records:
            return None
        value = decimal.Decimal(0)
        for record in sorted(records, key=lambda r: (r.occurred_at, r.sequence)):
            if record.kind == "PHYSICAL_COUNT" and record.state == "IN_STOCK":
                value = record.quantity
            elif record.kind == "ADJUSTMENT":
                if record.to_state == "IN_STOCK":
                    value += record.quantity
                if record.from_state == "IN_STOCK":
                    value -= record.quantity
        return value, max(r.created_at for r in records)

    def last_physical_count(self, object_id, location_id):
        counts = [r for r in self.history.get((object_id, location_id), []) if r.kind == "PHYSICAL_COUNT"]
        return max(counts, key=lambda r: (r.occurred_at, r.sequence)) if counts else None

    def count_view(self, object_id, location_id):
        found = self.in_stock(object_id, location_id)
        if found is None:
            return None
        value, calculated_at = found
        return {"catalog_object_id": object_id, "catalog_object_type": "ITEM_VARIATION", "state": "IN_STOCK",
                "location_id": location_id, "quantity": quantity_text(value),
                "calculated_at": time_text(calculated_at)}

    def snapshot(self):
        return {"objects": [dataclasses.asdict(o) for o in self.objects.values()],
                "locations": [dataclasses.asdict(l) for l in self.locations.values()],
                "counts": [c for c in (self.count_view(o, l) for o, l in self.history) if c is not None],
                "history": [dict(r.view(o, l), source=r.source) for (o, l), records in self.history.items()
                            for r in records]}


# ----------------------------------------------------------------------------------------
# Configuration, faults and the request log
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Config:
    tokens: list = dataclasses.field(default_factory=lambda: [DEFAULT_TOKEN])
    expired_tokens: list = dataclasses.field(default_factory=list)   # 401 ACCESS_TOKEN_EXPIRED
    revoked_tokens: list = dataclasses.field(default_factory=list)   # 401 ACCESS_TOKEN_REVOKED
    read_only_tokens: list = dataclasses.field(default_factory=list)  # 403 INSUFFICIENT_SCOPES on writes
    versions: list = dataclasses.field(default_factory=lambda: list(DEFAULT_VERSIONS))
    bucket_capacity: float = 20.0             # requests in a burst [unverified: undocumented]
    restore_rate: float = 10.0                # requests per second [unverified]
    retry_after_on_429: bool = False          # CHANNELS.md: Square sends no Retry-After
    max_changes: int = 100                    # changes per batch-create
    max_retrieve_ids: int = 1000              # catalog_object_ids per batch-retrieve [unverified]
    page_size: int = 1000                     # counts per page when no limit is given [unverified]
    window_seconds: float = 86400.0           # a physical count's occurred_at: at most this old
    future_tolerance_seconds: float = 1.0     # ... and at most this far ahead [unverified]
    error_field_paths: bool = True            # field "changes[N].physical_count.x", else "x" [unverified]
    idempotency_ttl_seconds: float = 86400.0  # how long a key is remembered [unverified]
    max_hang_seconds: float = 30.0            # bound of `timeout` and `delay` faults
    merchant_id: str = "MLSTANDIN0001"        # merchant_id of notifications
    webhook_timeout_seconds: float = 5.0      # a delivery not answered by then failed
    webhook_max_attempts: int = 8             # attempts per delivery, the first included
    webhook_retry_initial_seconds: float = 1.0    # first retry after this, doubling ...
    webhook_retry_max_seconds: float = 60.0   # ... up to this [unverified: Square retries for 24 h]
    webhook_duplicate_rate: float = 0.0       # share of events delivered twice (same event_id)
    webhook_duplicate_same_id: bool = False   # (no use to Square: its duplicates share event_id)
    webhook_delay_seconds: float = 0.0        # every delivery this late
    webhook_late_rate: float = 0.0            # share delivered late ...
    webhook_late_seconds: float = 2.0         # ... by up to this much more (real seconds)
    webhook_drop: bool = False                # every delivery dropped
    webhook_drop_rate: float = 0.0            # share of deliveries dropped
    webhook_seed: int = 1                     # the random draws (duplicates, lateness, drops)

    LISTS = ("tokens", "expired_tokens", "revoked_tokens", "read_only_tokens", "versions")

    def update(self, changes):
        """Applies a JSON object of settings; raises ValueError naming a bad one."""
        fields = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError("unknown setting %r" % key)
            current = getattr(self, key)
            if key in self.LISTS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("%s must be a list of strings" % key)
                if key == "versions" and not all(SQUARE_VERSION.match(v) for v in value):
                    raise ValueError("versions are YYYY-MM-DD")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError("%s must be true or false" % key)
            elif isinstance(current, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError("%s must be a non-negative number" % key)
                if key.startswith("webhook_") and key.endswith("_rate") and value > 1:
                    raise ValueError("%s is a share, 0..1" % key)
                value = type(current)(value)
            elif isinstance(current, str):
                if not isinstance(value, str) or not value:
                    raise ValueError("%s must be a non-empty text" % key)
            setattr(self, key, value)


FAULT_KINDS = ("http_error", "reset", "rate_limit", "malformed", "timeout", "delay")


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour, used by the next `count` API requests that match."""
    kind: str
    count: int = 1
    match: str = "any"           # any | write (batch-create) | read (batch-retrieve, retrieve)
    apply: bool = False          # run the request (and apply its changes) before misbehaving
    status: int = 503            # http_error: the status
    body: object = None          # http_error / malformed: the body to send instead
    seconds: float = 5.0         # timeout: how long to hold the connection; delay: the delay
    retry_after: int = 0         # http_error / rate_limit: a Retry-After header (seconds), 0: none

    @staticmethod
    def from_json(spec):
        if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
            raise ValueError("a fault needs kind: one of " + ", ".join(FAULT_KINDS))
        unknown = set(spec) - {f.name for f in dataclasses.fields(Fault)}
        if unknown:
            raise ValueError("unknown fault fields: " + ", ".join(sorted(unknown)))
        values = dict(spec)
        values.setdefault("apply", spec["kind"] == "timeout")
        fault = Fault(**values)
        if not isinstance(fault.count, int) or isinstance(fault.count, bool) or not 1 <= fault.count <= 1_000_000:
            raise ValueError("count must be an integer from 1 to 1000000")
        if fault.match not in ("any", "write", "read"):
            raise ValueError("match must be any, write or read")
        if fault.kind == "http_error" and not 500 <= fault.status <= 599:
            raise ValueError("http_error status must be 5xx")
        if not isinstance(fault.seconds, (int, float)) or fault.seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        return fault


class RequestLog:
    """Every API request, in order, as JSON objects; mirrored to a file as JSON lines."""

    def __init__(self, path=None):
        self.entries = []
        self.sequence = 0
        self.path = path

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
    """What the HTTP layer does with a request."""
    status: int = 200
    body: bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    action: str = "send"         # send | reset | hang
    hang_seconds: float = 0.0


def json_reply(status, value, headers=None):
    return Reply(status, json.dumps(value).encode(), dict(headers or {}, **{"Content-Type": "application/json"}))


def errors_reply(status, *errors, headers=None):
    return json_reply(status, {"errors": list(errors)}, headers)


@dataclasses.dataclass
class IdempotencyRecord:
    fingerprint: str
    status: int
    body: bytes
    at: float


SERVER_ERRORS = {
    500: ("INTERNAL_SERVER_ERROR", "An internal error has occurred, and the API was unable to service your request."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable."),
    504: ("GATEWAY_TIMEOUT", "Gateway timeout."),
}


# ----------------------------------------------------------------------------------------
# The API
# ----------------------------------------------------------------------------------------

class Standin:
    """The whole stand-in: schema, state, and the answer to each API request."""

    def __init__(self, schema, config, request_log_path=None):
        self.schema = schema
        self.config = config
        self.initial_config = copy.deepcopy(config)
        self.lock = threading.Lock()
        self.clock = Clock()
        self.inventory = Inventory(self.clock)
        self.bucket = TokenBucket(self.clock, config.bucket_capacity, config.restore_rate)
        self.idempotency = {}            # key -> IdempotencyRecord
        self.faults = []
        self.log = RequestLog(request_log_path)
        self.orders = Orders(self.clock, self.inventory)
        self.webhooks = webhooks.Webhooks(config, WEBHOOK_TYPES, webhook_headers)

    def reset(self):
        """Back to the settings it started with: forgets requests, faults and idempotency keys,
        fills the bucket and lets the clock run; keeps the inventory and the clock's time."""
        self.config = copy.deepcopy(self.initial_config)
        self.idempotency.clear()
        self.faults.clear()
        self.log.entries.clear()
        self.clock.run()
        self.bucket = TokenBucket(self.clock, self.config.bucket_capacity, self.config.restore_rate)
        self.webhooks.reset(self.config)

    def take_fault(self, operation):
        kind = "write" if operation in WRITE_OPERATIONS else "read"
        for fault in self.faults:
            if fault.match in ("any", kind):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # -- the request ---------------------------------------------------------------------

    def handle(self, method, path, query, headers, body):
        """Answers one API request (anything outside /_control/)."""
        entry = {"method": method, "path": path, "operation": None, "version": headers.get("Square-Version"),
                 "body": None, "status": None, "errors": [], "idempotencyKey": None, "replayed": False,
                 "applied": [], "ignored": 0, "fault": None}
        operation, schema_name, object_id = self._route(method, path)
        entry["operation"] = operation
        if operation is None:
            with self.lock:
                entry["time"] = self.clock.now()
                return self._finish(entry, errors_reply(404, square_error("NOT_FOUND", "Not found.", None,
                                                                          "INVALID_REQUEST_ERROR")))
        fault = None
        with self.lock:
            peek = next((f for f in self.faults if f.match in ("any", "write" if operation in WRITE_OPERATIONS
                                                               else "read")), None)
            delay = peek.seconds if peek is not None and peek.kind == "delay" else 0.0
        if delay > 0:
            time.sleep(min(delay, self.config.max_hang_seconds))
        with self.lock:
            entry["time"] = self.clock.now()
            refusal = self._check_headers(operation, headers)
            if refusal is not None:
                return self._finish(entry, refusal)
            if not self.bucket.try_take():
                return self._finish(entry, self._rate_limited())
            fault = self.take_fault(operation)
            if fault is not None:
                entry["fault"] = fault.kind
                if not fault.apply and fault.kind != "delay":
                    return self._finish(entry, self._fault_reply(fault, None))
            reply = self._answer(operation, schema_name, object_id, query, headers, body, entry)
            if fault is not None and fault.apply:
                reply = self._fault_reply(fault, reply)
            return self._finish(entry, reply)

    @staticmethod
    def _route(method, path):
        if (method, path) in OPERATIONS:
            operation, schema_name = OPERATIONS[(method, path)]
            return operation, schema_name, None
        match = RETRIEVE_PATH.match(path)
        if method == "GET" and match is not None and match.group(1) not in ("changes", "counts"):
            return "retrieve", None, urllib.parse.unquote(match.group(1))
        match = ORDER_PATH.match(path)
        if method == "GET" and match is not None:
            return "retrieve-order", None, urllib.parse.unquote(match.group(1))
        return None, None, None

    def _finish(self, entry, reply):
        entry["status"] = reply.status if reply.action == "send" else None
        if reply.action != "send":
            entry["outcome"] = reply.action
        if reply.action == "send" and reply.status != 200 and not entry["errors"]:
            try:
                entry["errors"] = [e.get("code") for e in json.loads(reply.body).get("errors", [])]
            except (ValueError, AttributeError):
                pass
        self.log.append(entry)
        return reply

    def _check_headers(self, operation, headers):
        """The refusal of a request whose token or Square-Version is wrong, or None."""
        authorization = headers.get("Authorization") or ""
        token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None
        config = self.config
        if token in config.expired_tokens:
            return errors_reply(401, square_error("ACCESS_TOKEN_EXPIRED", "The access token has expired.",
                                                  None, "AUTHENTICATION_ERROR"))
        if token in config.revoked_tokens:
            return errors_reply(401, square_error("ACCESS_TOKEN_REVOKED", "The access token has been revoked.",
                                                  None, "AUTHENTICATION_ERROR"))
        if token not in config.tokens and token not in config.read_only_tokens:
            return errors_reply(401, square_error(
                "UNAUTHORIZED", "This request could not be authorized." if token else
                "The `Authorization` http header of your request was malformed. The header value is expected "
                "to be of the format \"Bearer TOKEN\" (without quotation marks).", None, "AUTHENTICATION_ERROR"))
        if token in config.read_only_tokens and token not in config.tokens and operation in WRITE_OPERATIONS:
            return errors_reply(403, square_error(
                "INSUFFICIENT_SCOPES", "The merchant has not given your application sufficient permissions to "
                "do that. The application must request the INVENTORY_WRITE permission.", None,
                "AUTHENTICATION_ERROR"))
        version = headers.get("Square-Version")
        if version is not None and not SQUARE_VERSION.match(version):
            return errors_reply(400, square_error("INVALID_SQUARE_VERSION_FORMAT",
                                                  "Invalid Square-Version format: %s" % version))
        if version is not None and version not in config.versions:
            return errors_reply(400, square_error("API_VERSION_INCOMPATIBLE",
                                                  "Square-Version %s is not supported" % version))
        return None

    def _rate_limited(self):
        headers = {}
        if self.config.retry_after_on_429:
            headers["Retry-After"] = str(max(1, int(self.bucket.seconds_until_one() + 0.999)))
        return errors_reply(429, square_error("RATE_LIMITED", "Rate limit exceeded.", None, "RATE_LIMIT_ERROR"),
                            headers=headers)

    def _answer(self, operation, schema_name, object_id, query, headers, body, entry):
        if operation == "retrieve":
            return self.retrieve(object_id, query)
        if operation == "retrieve-order":
            order = self.orders.orders.get(object_id)
            if order is None:
                return errors_reply(404, square_error("NOT_FOUND", "Could not find order with id `%s`." % object_id,
                                                      None, "INVALID_REQUEST_ERROR"))
            return json_reply(200, {"order": order.view()})
        media = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/json":
            return errors_reply(400, square_error("INVALID_CONTENT_TYPE",
                                                  "Content-Type must be application/json"))
        try:
            request = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            return errors_reply(400, square_error("BAD_REQUEST", "invalid UTF-8 in the request body"))
        except ValueError as error:
            return errors_reply(400, square_error("BAD_REQUEST", "%s (line %d, character %d)" % (
                error.msg, error.lineno, error.colno)))
        entry["body"] = request
        problems = self.schema.errors(schema_name, request)
        if problems:
            return errors_reply(400, *problems)
        if operation == "batch-create":
            return self.batch_create(request, entry)
        return self.batch_retrieve(request)

    # -- batch-create ----------------------------------------------------------------------

    def batch_create(self, request, entry):
        key = request["idempotency_key"]
        entry["idempotencyKey"] = key
        fingerprint = json.dumps(request, sort_keys=True, separators=(",", ":"))
        now = self.clock.now()
        record = self.idempotency.get(key)
        if record is not None and now - record.at > self.config.idempotency_ttl_seconds:
            record = None
        if record is not None:
            if record.fingerprint != fingerprint:
                return errors_reply(400, square_error(
                    "IDEMPOTENCY_KEY_REUSED", "The idempotency key can only be retried with the same request "
                    "data.", "idempotency_key"))
            entry["replayed"] = True
            return Reply(record.status, record.body, {"Content-Type": "application/json"})
        reply = self._batch_create_run(request, entry, now)
        self.idempotency[key] = IdempotencyRecord(fingerprint, reply.status, reply.body, now)
        return reply

    def _field(self, index, name):
        kind = self._change_kind
        return "changes[%d].%s.%s" % (index, kind, name) if self.config.error_field_paths else name

    def _check_change(self, index, change, now):
        """(errors, normalised change) for one InventoryChange; rules modelled by hand."""
        kind = change.get("type")
        errors = []
        if kind is None:
            return [square_error("MISSING_REQUIRED_PARAMETER", "Field must be set",
                                 "changes[%d].type" % index)], None
        if kind == "TRANSFER":
            return [square_error("INVALID_VALUE", "Inventory transfers need a Square for Retail Plus "
                                 "subscription.", "changes[%d].type" % index)], None
        self._change_kind = "physical_count" if kind == "PHYSICAL_COUNT" else "adjustment"
        body = change.get(self._change_kind)
        if not isinstance(body, dict):
            return [square_error("MISSING_REQUIRED_PARAMETER", "Field must be set",
                                 "changes[%d].%s" % (index, self._change_kind))], None
        needed = ("catalog_object_id", "location_id", "quantity", "occurred_at") + (
            ("state",) if kind == "PHYSICAL_COUNT" else ("from_state", "to_state"))
        for name in needed:
            if body.get(name) is None:
                errors.append(square_error("MISSING_REQUIRED_PARAMETER", "Field must be set",
                                           self._field(index, name)))
        if errors:
            return errors, None
        object_id, location_id = body["catalog_object_id"], body["location_id"]
        target = self.inventory.objects.get(object_id)
        if target is None or not target.exists:
            errors.append(square_error("NOT_FOUND", "Item variation with catalog object ID `%s` not found."
                                       % object_id, self._field(index, "catalog_object_id")))
        elif target.type != "ITEM_VARIATION":
            errors.append(square_error("INVALID_VALUE", "Object `%s` is of type %s; inventory is tracked for "
                                       "ITEM_VARIATION objects." % (object_id, target.type),
                                       self._field(index, "catalog_object_id")))
        location = self.inventory.locations.get(location_id)
        if location is None:
            errors.append(square_error("NOT_FOUND", "Location `%s` not found." % location_id,
                                       self._field(index, "location_id")))
        elif not location.active:
            errors.append(square_error("INVALID_VALUE", "Location `%s` is not active." % location_id,
                                       self._field(index, "location_id")))
        quantity = parse_quantity(body["quantity"])
        if quantity is None or quantity < 0:
            errors.append(square_error("INVALID_VALUE", "`%s` is not a valid quantity: a non-negative decimal "
                                       "with at most 5 digits after the point." % body["quantity"],
                                       self._field(index, "quantity")))
        occurred_at = parse_time(body["occurred_at"])
        if occurred_at is None:
            errors.append(square_error("INVALID_TIME", "`%s` is not an RFC 3339 timestamp." % body["occurred_at"],
                                       self._field(index, "occurred_at")))
        elif occurred_at > now + self.config.future_tolerance_seconds:
            errors.append(square_error("INVALID_TIME", "occurred_at must not be in the future.",
                                       self._field(index, "occurred_at")))
        elif kind == "PHYSICAL_COUNT" and occurred_at < now - self.config.window_seconds:
            errors.append(square_error("INVALID_TIME", "occurred_at of a physical count must be within the "
                                       "last 24 hours.", self._field(index, "occurred_at")))
        if kind == "PHYSICAL_COUNT" and body["state"] != "IN_STOCK":
            errors.append(square_error("INVALID_VALUE", "A physical count is taken of the IN_STOCK state.",
                                       self._field(index, "state")))
        if kind == "ADJUSTMENT" and body["from_state"] == body["to_state"]:
            errors.append(square_error("INVALID_VALUE", "from_state and to_state must differ.",
                                       self._field(index, "to_state")))
        normal = dict(body, kind=kind, quantity=quantity, occurred_at=occurred_at)
        return errors, normal

    def _batch_create_run(self, request, entry, now):
        changes = request.get("changes") or []
        if len(changes) > self.config.max_changes:
            return errors_reply(400, square_error("ARRAY_LENGTH_TOO_LONG", "Field must not have more than %d "
                                                  "elements" % self.config.max_changes, "changes"))
        errors, normal = [], []
        for index, change in enumerate(changes):
            problems, checked = self._check_change(index, change, now)
            errors.extend(problems)
            normal.append(checked)
        if errors:                       # all or nothing [unverified]
            return errors_reply(400, *errors)
        ignore_unchanged = request.get("ignore_unchanged_counts")
        ignore_unchanged = True if ignore_unchanged is None else ignore_unchanged
        inventory = self.inventory
        created, touched = [], []
        for change in sorted(normal, key=lambda c: c["occurred_at"]):
            object_id, location_id = change["catalog_object_id"], change["location_id"]
            if (object_id, location_id) not in touched:
                touched.append((object_id, location_id))
            before = inventory.in_stock(object_id, location_id)
            if change["kind"] == "PHYSICAL_COUNT":
                last = inventory.last_physical_count(object_id, location_id)
                if ignore_unchanged and last is not None and last.quantity == change["quantity"]:
                    entry["ignored"] += 1
                    continue
                record = inventory.next_record("PHYSICAL_COUNT", change["occurred_at"], change["quantity"],
                                               state="IN_STOCK", reference_id=change.get("reference_id"))
            else:
                record = inventory.next_record("ADJUSTMENT", change["occurred_at"], change["quantity"],
                                               from_state=change["from_state"], to_state=change["to_state"],
                                               reference_id=change.get("reference_id"))
            inventory.history.setdefault((object_id, location_id), []).append(record)
            after = inventory.in_stock(object_id, location_id)
            old = before[0] if before is not None else decimal.Decimal(0)
            entry["applied"].append({"catalog_object_id": object_id, "location_id": location_id,
                                     "type": change["kind"], "quantity": quantity_text(change["quantity"]),
                                     "occurred_at": time_text(change["occurred_at"]),
                                     "before": quantity_text(old), "after": quantity_text(after[0]),
                                     "delta": quantity_text(after[0] - old)})
            created.append(record.view(object_id, location_id))
        counts = [c for c in (inventory.count_view(o, l) for o, l in touched) if c is not None]
        return json_reply(200, {"counts": counts, "changes": created})

    # -- reads -----------------------------------------------------------------------------

    def _counts(self, objects=None, locations=None, states=None, updated_after=None):
        if states is not None and "IN_STOCK" not in states:
            return []
        found = []
        for (object_id, location_id) in self.inventory.history:
            if objects is not None and object_id not in objects:
                continue
            if locations is not None and location_id not in locations:
                continue
            target = self.inventory.objects.get(object_id)
            if target is not None and not target.exists:
                continue
            count = self.inventory.count_view(object_id, location_id)
            if count is None:
                continue
            calculated = self.inventory.in_stock(object_id, location_id)[1]
            if updated_after is not None and calculated <= updated_after:
                continue
            found.append((calculated, count))
        found.sort(key=lambda c: -c[0])       # newest first
        return [c for _, c in found]

    def batch_retrieve(self, request):
        objects = request.get("catalog_object_ids")
        if objects is not None and len(objects) > self.config.max_retrieve_ids:
            return errors_reply(400, square_error("ARRAY_LENGTH_TOO_LONG", "Field must not have more than %d "
                                                  "elements" % self.config.max_retrieve_ids, "catalog_object_ids"))
        updated_after = request.get("updated_after")
        if updated_after is not None:
            updated_after = parse_time(updated_after)
            if updated_after is None:
                return errors_reply(400, square_error("INVALID_TIME", "updated_after is not RFC 3339.",
                                                      "updated_after"))
        start = 0
        if request.get("cursor") is not None:
            try:
                start = int(base64.urlsafe_b64decode(request["cursor"].encode()).decode())
            except (ValueError, UnicodeDecodeError):
                return errors_reply(400, square_error("INVALID_CURSOR", "The cursor is not valid.", "cursor"))
        counts = self._counts(set(objects) if objects is not None else None,
                              set(request["location_ids"]) if request.get("location_ids") is not None else None,
                              request.get("states"), updated_after)
        limit = request.get("limit") or self.config.page_size
        page = counts[start:start + limit]
        answer = {"counts": page}
        if start + limit < len(counts):
            answer["cursor"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        return json_reply(200, answer)

    def retrieve(self, object_id, query):
        locations = None
        if query.get("location_ids"):
            locations = set(",".join(query["location_ids"]).split(","))
        return json_reply(200, {"counts": self._counts({object_id}, locations)})

    # -- faults ------------------------------------------------------------------------------

    def _fault_reply(self, fault, answered):
        """The reply a fault puts in place of `answered` (None when nothing ran)."""
        headers = {"Content-Type": "application/json"}
        if fault.retry_after:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.kind == "http_error":
            code, detail = SERVER_ERRORS.get(fault.status, ("INTERNAL_SERVER_ERROR", "Server error."))
            body = fault.body if fault.body is not None else {
                "errors": [square_error(code, detail, None, "API_ERROR")]}
            return Reply(fault.status, (body if isinstance(body, str) else json.dumps(body)).encode(), headers)
        if fault.kind == "rate_limit":
            reply = errors_reply(429, square_error("RATE_LIMITED", "Rate limit exceeded.", None, "RATE_LIMIT_ERROR"))
            reply.headers.update(headers)
            return reply
        if fault.kind == "reset":
            return Reply(action="reset")
        if fault.kind == "malformed":
            if fault.body is not None:
                text = fault.body if isinstance(fault.body, str) else json.dumps(fault.body)
            else:
                whole = answered.body if answered is not None else b'{"counts":[{"catalog_object_id":"X"}]}'
                text = whole[: max(1, len(whole) // 2)].decode("utf-8", "replace")
            return Reply(200, text.encode(), {"Content-Type": "application/json"})
        if fault.kind == "timeout":
            return Reply(action="hang", hang_seconds=min(fault.seconds, self.config.max_hang_seconds))
        return answered if answered is not None else errors_reply(500, square_error(
            "INTERNAL_SERVER_ERROR", "unhandled fault", None, "API_ERROR"))


# ----------------------------------------------------------------------------------------
# The control API
# ----------------------------------------------------------------------------------------

class Control:
    """`/_control/...`: JSON in, JSON out; 400 with {"error": ...} on a bad request."""

    def __init__(self, standin, server):
        self.standin = standin
        self.server = server

    def handle(self, method, path, query, body):
        route = path[len("/_control/"):]
        try:
            spec = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return json_reply(400, {"error": "body is not JSON"})
        standin = self.standin
        with standin.lock:
            try:
                if method == "GET" and route == "state":
                    return json_reply(200, self.state())
                if method == "GET" and route == "webhooks":
                    since = int((query.get("since") or ["0"])[0])
                    return json_reply(200, standin.webhooks.status(since))
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
            except (ValueError, TypeError, decimal.InvalidOperation) as error:
                return json_reply(400, {"error": str(error)})

    def state(self):
        standin = self.standin
        return dict(standin.inventory.snapshot(),
                    clock={"now": standin.clock.now(), "frozen": standin.clock.frozen},
                    bucket=standin.bucket.status(),
                    config=dataclasses.asdict(standin.config),
                    faults=[dataclasses.asdict(f) for f in standin.faults],
                    idempotencyKeys=sorted(standin.idempotency),
                    requests=standin.log.sequence)

    def post_seed(self, spec):
        self.standin.inventory.seed(spec)
        return self.standin.inventory.snapshot()

    def post_reset(self, spec):
        self.standin.reset()
        if "seed" in spec:
            self.standin.inventory.seed(spec["seed"])

    def post_config(self, spec):
        standin = self.standin
        standin.config.update(spec)
        if "bucket_capacity" in spec or "restore_rate" in spec:
            bucket = standin.bucket
            bucket._refill()
            bucket.capacity = float(standin.config.bucket_capacity)
            bucket.rate = float(standin.config.restore_rate)
            bucket.level = min(bucket.level, bucket.capacity)
        return dataclasses.asdict(standin.config)

    def post_clock(self, spec):
        clock = self.standin.clock
        if "now" in spec:
            clock.set(float(spec["now"]))
        if spec.get("freeze") is True:
            clock.freeze()
        if spec.get("freeze") is False:
            clock.run()
        if "advance" in spec:
            seconds = float(spec["advance"])
            if seconds < 0:
                raise ValueError("advance must not be negative")
            clock.advance(seconds)
        return {"now": clock.now(), "frozen": clock.frozen}

    def post_bucket(self, spec):
        bucket = self.standin.bucket
        if "level" in spec:
            bucket._refill()
            bucket.level = max(0.0, min(bucket.capacity, float(spec["level"])))
        return bucket.status()

    def post_faults(self, spec):
        parsed = [Fault.from_json(f) for f in (spec["faults"] if "faults" in spec else [spec])]
        self.standin.faults.extend(parsed)
        return {"faults": [dataclasses.asdict(f) for f in self.standin.faults]}

    def post_faults_clear(self, spec):
        self.standin.faults.clear()

    def post_count(self, spec):
        return self.standin.inventory.external_count(spec)

    def post_sale(self, spec):
        return self.standin.inventory.external_adjustment(spec, "IN_STOCK", "SOLD")

    def post_adjustment(self, spec):
        if "from_state" not in spec or "to_state" not in spec:
            raise ValueError("an adjustment names from_state and to_state")
        return self.standin.inventory.external_adjustment(spec)

    def post_object(self, spec):
        return dataclasses.asdict(self.standin.inventory.update_object(spec))

    def post_location(self, spec):
        return dataclasses.asdict(self.standin.inventory.update_location(spec))

    def post_tokens(self, spec):
        self.standin.config.update({k: v for k, v in spec.items() if k in Config.LISTS and k != "versions"})

    def _notify(self, order, kind, refund=None):
        standin = self.standin
        config = standin.config
        now = time_text(standin.clock.now())
        if refund is not None:
            data = {"type": "refund", "id": refund["id"], "object": {"refund": refund}}
        else:
            data = {"type": "order_" + kind, "id": order.id,
                    "object": {"order_" + kind: order.summary()}}
        event_type = ("refund." if refund is not None else "order.") + kind
        return standin.webhooks.publish(event_type, lambda event_id: {
            "merchant_id": config.merchant_id, "type": event_type, "event_id": event_id,
            "created_at": now, "data": data}, order.id)

    def post_order(self, spec):
        """An order (online, or at a till with pos: true): IN_STOCK -> SOLD at once, then
        order.created is delivered."""
        order = self.standin.orders.create(spec)
        return dict(order.view(), eventId=self._notify(order, "created"))

    def post_cancel(self, spec):
        order = self.standin.orders.cancel(spec)
        return dict(order.view(), eventId=self._notify(order, "updated"))

    def post_update(self, spec):
        """An OPEN order's quantities changed (UpdateOrder); order.updated is delivered."""
        order = self.standin.orders.update(spec)
        return dict(order.view(), eventId=self._notify(order, "updated"))

    def post_refund(self, spec):
        order, refund = self.standin.orders.refund(spec)
        return {"order": order.view(), "refund": refund,
                "eventId": self._notify(order, "created", refund=refund)}

    def post_webhooks(self, spec):
        return self.standin.webhooks.subscribe(spec)

    def post_shutdown(self, spec):
        threading.Thread(target=self.server.shutdown, daemon=True).start()


# ----------------------------------------------------------------------------------------
# Orders, and the notifications that announce them
# ----------------------------------------------------------------------------------------

WEBHOOK_TYPES = ("order.created", "order.updated", "refund.created", "refund.updated")


def webhook_headers(delivery, config):
    """Square's headers of one delivery: x-square-hmacsha256-signature, the base64
    HMAC-SHA256 of the notification URL followed by the raw body, keyed with the
    subscription's signature key; and the retry headers."""
    import hashlib
    import hmac
    url = delivery.notification_url or delivery.url
    signature = base64.b64encode(hmac.new(delivery.secret.encode(), url.encode() + delivery.body,
                                          hashlib.sha256).digest())
    headers = {"x-square-hmacsha256-signature": signature.decode(), "Square-Version": DEFAULT_VERSIONS[0]}
    if delivery.attempts > 1:
        headers["square-retry-number"] = str(delivery.attempts - 1)
        headers["square-retry-reason"] = "http_error"
    return headers


@dataclasses.dataclass
class Order:
    id: str
    location_id: str
    state: str                   # OPEN | COMPLETED | CANCELED
    created_at: float
    closed_at: float = None
    source: str = "Online Store"
    line_items: list = dataclasses.field(default_factory=list)   # {uid, catalog_object_id, quantity}
    returns: list = dataclasses.field(default_factory=list)
    version: int = 1
    updated_at: float = 0.0

    def view(self):
        """The Order as RetrieveOrder answers it (the fields used here)."""
        order = {"id": self.id, "location_id": self.location_id, "state": self.state,
                 "source": {"name": self.source}, "version": self.version,
                 "created_at": time_text(self.created_at), "updated_at": time_text(self.updated_at),
                 "line_items": [dict(line, quantity=str(line["quantity"]), item_type="ITEM")
                                for line in self.line_items]}
        if self.closed_at is not None:
            order["closed_at"] = time_text(self.closed_at)
        if self.returns:
            order["returns"] = copy.deepcopy(self.returns)
        return order

    def summary(self):
        """order_created / order_updated: the notification's summary (no lines)."""
        return {"order_id": self.id, "location_id": self.location_id, "state": self.state,
                "version": self.version, "created_at": time_text(self.created_at),
                "updated_at": time_text(self.updated_at)}


class Orders:
    """Orders made through the control API; each moves the catalog object's IN_STOCK count at
    its location (when the object is known there) as Square's own sales do."""

    def __init__(self, clock, inventory):
        self.clock = clock
        self.inventory = inventory
        self.orders = {}
        self.sequence = 0

    def _id(self, prefix):
        self.sequence += 1
        return "%s%018d" % (prefix, self.sequence)

    def _move(self, order, line, quantity, from_state, to_state):
        if (line["catalog_object_id"], order.location_id) in self.inventory.history:
            self.inventory.external_adjustment({"catalog_object_id": line["catalog_object_id"],
                                                "location_id": order.location_id, "quantity": quantity},
                                               from_state, to_state)

    def _get(self, spec):
        order = self.orders.get(spec.get("order_id"))
        if order is None:
            raise ValueError("no order %r" % spec.get("order_id"))
        return order

    def create(self, spec):
        location_id = spec.get("location_id")
        lines = spec.get("lines")
        state = spec.get("state", "OPEN")
        if not isinstance(location_id, str) or not location_id:
            raise ValueError("location_id must be a non-empty text")
        if state not in ("OPEN", "COMPLETED"):
            raise ValueError("state must be OPEN or COMPLETED")
        if not isinstance(lines, list) or not lines:
            raise ValueError("lines must be a non-empty list")
        now = self.clock.now()
        created = spec.get("created_at", now)         # a till's sale posted late names its time
        if isinstance(created, str):
            created = parse_time(created)
        if not isinstance(created, (int, float)) or isinstance(created, bool):
            raise ValueError("created_at must be RFC 3339 or seconds since the epoch")
        order = Order(self._id("ORD"), location_id, state, float(created), updated_at=now,
                      source="Square Point of Sale" if spec.get("pos") else "Online Store")
        if state == "COMPLETED":
            order.closed_at = float(created)
        for index, line in enumerate(lines):
            quantity = line.get("quantity") if isinstance(line, dict) else None
            if not isinstance(line, dict) or not isinstance(line.get("catalog_object_id"), str) or \
                    isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                raise ValueError("a line is {catalog_object_id, quantity > 0}")
            order.line_items.append({"uid": "%s-L%d" % (order.id, index + 1),
                                     "catalog_object_id": line["catalog_object_id"], "quantity": quantity})
        self.orders[order.id] = order
        for line in order.line_items:
            self._move(order, line, line["quantity"], "IN_STOCK", "SOLD")
        return order

    def cancel(self, spec):
        order = self._get(spec)
        if order.state != "OPEN":
            raise ValueError("only an OPEN order can be canceled")
        order.state = "CANCELED"
        order.version += 1
        order.updated_at = self.clock.now()
        for line in order.line_items:
            self._move(order, line, line["quantity"], "SOLD", "IN_STOCK")
        return order

    def update(self, spec):
        """UpdateOrder of an OPEN order's lines: {order_id, lines: [{uid, quantity}] to change
        (quantity 0 removes the line), add: [{catalog_object_id, quantity}] new lines}. The
        order's version goes up by one, as Square's does on every update; the units move
        IN_STOCK <-> SOLD by the difference."""
        order = self._get(spec)
        if order.state != "OPEN":
            raise ValueError("only an OPEN order can be updated")
        changes = spec.get("lines", [])
        additions = spec.get("add", [])
        if not isinstance(changes, list) or not isinstance(additions, list) or not (changes or additions):
            raise ValueError("lines ([{uid, quantity >= 0}]) or add ([{catalog_object_id, quantity > 0}])")
        by_uid = {line["uid"]: line for line in order.line_items}
        for change in changes:
            quantity = change.get("quantity") if isinstance(change, dict) else None
            if not isinstance(change, dict) or change.get("uid") not in by_uid or \
                    isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
                raise ValueError("a changed line is {uid of the order, quantity >= 0}")
        for line in additions:
            quantity = line.get("quantity") if isinstance(line, dict) else None
            if not isinstance(line, dict) or not isinstance(line.get("catalog_object_id"), str) or \
                    isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                raise ValueError("an added line is {catalog_object_id, quantity > 0}")
        for change in changes:
            line = by_uid[change["uid"]]
            delta = change["quantity"] - line["quantity"]
            if delta > 0:
                self._move(order, line, delta, "IN_STOCK", "SOLD")
            elif delta < 0:
                self._move(order, line, -delta, "SOLD", "IN_STOCK")
            line["quantity"] = change["quantity"]
        order.line_items = [line for line in order.line_items if line["quantity"] > 0]
        for line in additions:
            order.added = getattr(order, "added", 0) + 1
            added = {"uid": "%s-A%d" % (order.id, order.added), "catalog_object_id": line["catalog_object_id"],
                     "quantity": line["quantity"]}
            order.line_items.append(added)
            self._move(order, added, added["quantity"], "IN_STOCK", "SOLD")
        order.version += 1
        order.updated_at = self.clock.now()
        return order

    def refund(self, spec):
        """Items refunded: a return order (returns[] naming the sold lines) and its refund."""
        order = self._get(spec)
        lines = spec.get("lines")
        if not isinstance(lines, list) or not lines:
            raise ValueError("lines must be a non-empty list of {uid, quantity}")
        by_uid = {line["uid"]: line for line in order.line_items}
        now = self.clock.now()
        returned = Order(self._id("RET"), order.location_id, "COMPLETED", now, closed_at=now, updated_at=now,
                         source=order.source)
        return_lines = []
        for index, line in enumerate(lines):
            sold = by_uid.get(line.get("uid")) if isinstance(line, dict) else None
            quantity = line.get("quantity") if isinstance(line, dict) else None
            if sold is None or isinstance(quantity, bool) or not isinstance(quantity, int) or \
                    not 0 < quantity <= sold["quantity"]:
                raise ValueError("a refund line names a line uid of the order and 0 < quantity <= sold")
            return_lines.append({"uid": "%s-R%d" % (returned.id, index + 1), "source_line_item_uid": sold["uid"],
                                 "catalog_object_id": sold["catalog_object_id"], "quantity": str(quantity)})
        returned.returns = [{"uid": returned.id + "-RETURN", "source_order_id": order.id,
                             "return_line_items": return_lines}]
        self.orders[returned.id] = returned
        refund = {"id": self._id("REF"), "order_id": returned.id, "location_id": order.location_id,
                  "status": spec.get("status", "COMPLETED"), "created_at": time_text(now),
                  "reason": "Returning items"}
        return returned, refund


# ----------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "square-standin"
    timeout = 60                 # an idle keep-alive connection is closed after this

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("square-standin: " + (format % args) + "\n")

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        self._was_reset = False
        url = urllib.parse.urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return self._send(errors_reply(413, square_error("REQUEST_ENTITY_TOO_LARGE", "Request body too large")))
        query = urllib.parse.parse_qs(url.query)
        if url.path.startswith("/_control/"):
            return self._send(self.server.control.handle(method, url.path, query, body))
        self._send(self.server.standin.handle(method, url.path, query, self.headers, body))

    def _read_body(self):
        """The request body (Content-Length), or None when over MAX_BODY_BYTES."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
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
        """Closes the connection with a TCP reset and no reply."""
        self._was_reset = True
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _hang(self, seconds):
        """Holds the connection without replying until the client gives up or `seconds` pass."""
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
        self.standin = standin
        self.control = Control(standin, self)
        self.verbose = verbose

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def load_schema(path):
    with open(path, encoding="utf-8") as file:
        return Schema(json.load(file))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Square Inventory API stand-in.")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA_PATH, help="Square's OpenAPI file (inventory)")
    parser.add_argument("--seed", help="JSON file of objects, locations and counts (README.md, 'Seed format')")
    parser.add_argument("--config", help="JSON file of settings (README.md, 'Settings')")
    parser.add_argument("--request-log", help="append each request to this file as a JSON line")
    parser.add_argument("--token", action="append", help="accepted access token (repeatable)")
    parser.add_argument("--bucket-capacity", type=float)
    parser.add_argument("--restore-rate", type=float)
    parser.add_argument("--freeze-clock", action="store_true", help="start with the clock stopped")
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args(argv)

    config = Config()
    settings = {}
    if arguments.config:
        with open(arguments.config, encoding="utf-8") as file:
            settings.update(json.load(file))
    for name in ("bucket_capacity", "restore_rate"):
        if getattr(arguments, name) is not None:
            settings[name] = getattr(arguments, name)
    if arguments.token:
        settings["tokens"] = arguments.token
    config.update(settings)
    standin = Standin(load_schema(arguments.schema), config, arguments.request_log)
    if arguments.seed:
        with open(arguments.seed, encoding="utf-8") as file:
            standin.inventory.seed(json.load(file))
    if arguments.freeze_clock:
        standin.clock.freeze()
    server = Server(arguments.port, standin, arguments.verbose)
    port = server.server_address[1]
    if arguments.port_file:
        temporary = arguments.port_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write("%d\n" % port)
        os.replace(temporary, arguments.port_file)
    print("square-standin listening on http://127.0.0.1:%d" % port, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
