"""Tests of the Square Inventory API stand-in (square.py beside this file).

One stand-in process serves the whole module; every test starts from `/_control/reset` with
the same seed, so tests do not depend on each other's order.  The stand-in runs with the
interpreter running these tests, so a missing python3-jsonschema makes the module fail, never
skip.  Every 200 answer is checked against the response schema of Square's OpenAPI file.
"""

import http.client
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

# The stand-in needs jsonschema: without it this module fails here, loudly.
importlib.import_module("jsonschema")

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "square.py")
sys.path.insert(0, HERE)
square = importlib.import_module("square")

TOKEN = "EAAAEtest-token"
VERSION = "2025-08-20"
CREATE = "/v2/inventory/changes/batch-create"
RETRIEVE = "/v2/inventory/counts/batch-retrieve"
SEED = {
    "locations": [{"id": "L1", "name": "Web"}, {"id": "L2", "name": "Shop"}, {"id": "L3", "active": False}],
    "objects": [{"id": "VAR1"}, {"id": "VAR2"}, {"id": "VAR3"}, {"id": "ITEM9", "type": "ITEM"},
                {"id": "GONE", "exists": False}],
    "counts": [{"catalog_object_id": "VAR1", "location_id": "L1", "quantity": "5"},
               {"catalog_object_id": "VAR2", "location_id": "L1", "quantity": "2.5"},
               {"catalog_object_id": "VAR1", "location_id": "L2", "quantity": "1"}],
}

PROCESS = None
PORT = None
REQUEST_LOG_PATH = None
SCHEMA = square.load_schema(square.DEFAULT_SCHEMA_PATH)


def setUpModule():
    global PROCESS, PORT, REQUEST_LOG_PATH
    directory = tempfile.mkdtemp(prefix="square-standin-")
    port_file = os.path.join(directory, "port")
    REQUEST_LOG_PATH = os.path.join(directory, "requests.jsonl")
    PROCESS = subprocess.Popen(
        [sys.executable, "-B", STANDIN, "--port-file", port_file, "--token", TOKEN,
         "--request-log", REQUEST_LOG_PATH], stdout=subprocess.PIPE, stderr=None)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not os.path.exists(port_file):
        if PROCESS.poll() is not None:
            raise RuntimeError("the stand-in exited with status %d" % PROCESS.returncode)
        time.sleep(0.02)
    with open(port_file) as file:
        PORT = int(file.read())
    announced = PROCESS.stdout.readline().decode()
    if ("127.0.0.1:%d" % PORT) not in announced:
        raise RuntimeError("unexpected start-up line %r" % announced)


def tearDownModule():
    if PROCESS is None:
        return
    try:
        control("shutdown")
        PROCESS.wait(timeout=5)
    except Exception:
        PROCESS.kill()
        PROCESS.wait(timeout=5)
    PROCESS.stdout.close()


def http_request(method, path, body=None, headers=None, timeout=10):
    """(status, headers, body bytes) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (PORT, path), data=body, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def control(route, spec=None, method="POST"):
    body = None if method == "GET" else json.dumps(spec or {}).encode()
    status, _, answer = http_request(method, "/_control/" + route, body, {"Content-Type": "application/json"})
    if status != 200:
        raise AssertionError("control %s: %d %s" % (route, status, answer.decode()))
    return answer if route.startswith("log") else json.loads(answer)


def api(path, body, token=TOKEN, version=VERSION, method="POST", timeout=10, raw=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    if version is not None:
        headers["Square-Version"] = version
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    return http_request(method, path, data, headers, timeout)


def now():
    return control("state", method="GET")["clock"]["now"]


def count_change(object_id, quantity, occurred_at=None, location="L1"):
    return {"type": "PHYSICAL_COUNT", "physical_count": {
        "catalog_object_id": object_id, "location_id": location, "state": "IN_STOCK", "quantity": quantity,
        "occurred_at": square.time_text(occurred_at if occurred_at is not None else now() - 1)}}


def shown(object_id, location="L1"):
    for count in control("state", method="GET")["counts"]:
        if count["catalog_object_id"] == object_id and count["location_id"] == location:
            return count["quantity"]
    return None


def request_log():
    return [json.loads(line) for line in control("log", method="GET").decode().splitlines()]


class StandinTest(unittest.TestCase):
    def setUp(self):
        control("reset", {"seed": SEED})

    def call(self, path, body, status=200, schema=None, **options):
        """Sends a request; checks the status and that the answer conforms to its schema."""
        answer_status, headers, raw = api(path, body, **options)
        self.assertEqual(answer_status, status, raw)
        answer = json.loads(raw)
        if status == 200 and schema is not None:
            self.assertEqual(SCHEMA.errors(schema, answer), [])
        if status != 200:
            self.assertEqual(SCHEMA.errors("BatchChangeInventoryResponse", answer), [])
            self.assertTrue(answer["errors"])
        return answer

    def create(self, *changes, key="k", status=200, **options):
        body = {"idempotency_key": key, "ignore_unchanged_counts": False, "changes": list(changes)}
        body.update(options.pop("extra", {}))
        return self.call(CREATE, body, status, "BatchChangeInventoryResponse", **options)

    def codes(self, answer):
        return [error["code"] for error in answer["errors"]]


class AuthAndVersions(StandinTest):
    def test_a_missing_or_wrong_token_is_unauthorized(self):
        for token in (None, "EAAAEother"):
            answer = self.call(RETRIEVE, {}, 401, token=token)
            self.assertEqual(answer["errors"][0]["category"], "AUTHENTICATION_ERROR")
            self.assertEqual(self.codes(answer), ["UNAUTHORIZED"])

    def test_expired_revoked_and_read_only_tokens(self):
        control("tokens", {"tokens": [], "expired_tokens": [TOKEN], "revoked_tokens": ["R"],
                           "read_only_tokens": ["RO"]})
        self.assertEqual(self.codes(self.call(RETRIEVE, {}, 401)), ["ACCESS_TOKEN_EXPIRED"])
        self.assertEqual(self.codes(self.call(RETRIEVE, {}, 401, token="R")), ["ACCESS_TOKEN_REVOKED"])
        self.call(RETRIEVE, {}, 200, "BatchRetrieveInventoryCountsResponse", token="RO")
        self.assertEqual(self.codes(self.create(count_change("VAR1", "1"), status=403, token="RO")),
                         ["INSUFFICIENT_SCOPES"])
        self.assertEqual(shown("VAR1"), "5")

    def test_square_version(self):
        self.assertEqual(self.codes(self.call(RETRIEVE, {}, 400, version="2025-8-20")),
                         ["INVALID_SQUARE_VERSION_FORMAT"])
        self.assertEqual(self.codes(self.call(RETRIEVE, {}, 400, version="2031-01-01")),
                         ["API_VERSION_INCOMPATIBLE"])
        self.call(RETRIEVE, {}, 200, version=None)    # the application's default version

    def test_unknown_routes_are_404(self):
        self.assertEqual(api("/v2/inventory/batch-change", {})[0], 404)   # retired
        self.assertEqual(api(CREATE, None, method="GET")[0], 404)


class Schema(StandinTest):
    def test_the_official_schema_is_loaded(self):
        self.assertEqual(SCHEMA.version_default, VERSION)
        self.assertIn("BatchChangeInventoryRequest", SCHEMA.validators)

    def test_non_conforming_bodies_are_invalid_request_errors(self):
        change = count_change("VAR1", "1")
        change["physical_count"]["state"] = "ON_THE_MOON"
        change["physical_count"]["location_id"] = 7
        answer = self.call(CREATE, {"changes": [change], "ignore_unchanged_counts": "no"}, 400)
        for error in answer["errors"]:
            self.assertEqual(error["category"], "INVALID_REQUEST_ERROR")
        found = {(e["code"], e.get("field")) for e in answer["errors"]}
        self.assertEqual(found, {("MISSING_REQUIRED_PARAMETER", "idempotency_key"),
                                 ("EXPECTED_BOOLEAN", "ignore_unchanged_counts"),
                                 ("EXPECTED_STRING", "changes[0].physical_count.location_id"),
                                 ("INVALID_ENUM_VALUE", "changes[0].physical_count.state")})
        self.assertEqual(shown("VAR1"), "5")

    def test_lengths_and_limits_come_from_the_schema(self):
        answer = self.create(count_change("VAR1", "1"), key="x" * 129, status=400)
        self.assertEqual([(e["code"], e["field"]) for e in answer["errors"]], [("VALUE_TOO_LONG", "idempotency_key")])
        answer = self.call(RETRIEVE, {"limit": 1001}, 400)
        self.assertEqual(self.codes(answer), ["VALUE_TOO_HIGH"])
        answer = self.call(RETRIEVE, {"states": ["IN_STOCK", "MISPLACED"]}, 400)
        self.assertEqual(answer["errors"][0]["field"], "states[1]")

    def test_nullable_fields_take_null(self):
        self.call(RETRIEVE, {"catalog_object_ids": None, "cursor": None, "limit": None}, 200,
                  "BatchRetrieveInventoryCountsResponse")

    def test_a_body_that_is_not_json(self):
        status, _, raw = api(CREATE, None, raw=b"{idempotency_key")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(raw)["errors"][0]["code"], "BAD_REQUEST")


class BatchCreate(StandinTest):
    def test_a_physical_count_sets_the_count(self):
        answer = self.create(count_change("VAR1", "7"), count_change("VAR2", "0.12345"))
        counts = {c["catalog_object_id"]: c["quantity"] for c in answer["counts"]}
        self.assertEqual(counts, {"VAR1": "7", "VAR2": "0.12345"})
        self.assertEqual([c["physical_count"]["state"] for c in answer["changes"]], ["IN_STOCK"] * 2)
        self.assertEqual(shown("VAR1"), "7")
        self.assertEqual(shown("VAR1", "L2"), "1")
        entry = request_log()[-1]
        self.assertEqual([(a["catalog_object_id"], a["delta"]) for a in entry["applied"]],
                         [("VAR1", "2"), ("VAR2", "-2.37655")])

    def test_counts_are_the_latest_physical_count_plus_later_adjustments(self):
        t = now()
        control("sale", {"catalog_object_id": "VAR1", "location_id": "L1", "quantity": 1, "occurred_at": t - 60})
        self.assertEqual(shown("VAR1"), "4")
        # A count that occurred before the sale: the sale still applies after it.
        answer = self.create(count_change("VAR1", "10", t - 120), key="a")
        self.assertEqual(answer["counts"][0]["quantity"], "9")
        # A count after the sale replaces everything before it.
        self.create(count_change("VAR1", "10", t - 30), key="b")
        self.assertEqual(shown("VAR1"), "10")
        control("adjustment", {"catalog_object_id": "VAR1", "location_id": "L1", "quantity": "3",
                               "from_state": "NONE", "to_state": "IN_STOCK"})
        self.assertEqual(shown("VAR1"), "13")

    def test_ignore_unchanged_counts_drops_a_repeated_count(self):
        t = now()
        self.create(count_change("VAR1", "6", t - 50), key="a")
        control("sale", {"catalog_object_id": "VAR1", "location_id": "L1", "quantity": 2, "occurred_at": t - 20})
        # Square's default (true): the same count again is ignored, although sales moved it.
        body = {"idempotency_key": "b", "changes": [count_change("VAR1", "6", t - 1)]}
        self.call(CREATE, body, 200, "BatchChangeInventoryResponse")
        self.assertEqual(shown("VAR1"), "4")
        self.assertEqual(request_log()[-1]["ignored"], 1)
        self.create(count_change("VAR1", "6", t - 1), key="c")
        self.assertEqual(shown("VAR1"), "6")

    def test_the_same_key_and_body_replays_and_applies_nothing(self):
        body = count_change("VAR1", "8")
        first = self.create(body, key="same")
        control("sale", {"catalog_object_id": "VAR1", "location_id": "L1", "quantity": 1})
        again = self.create(body, key="same")
        self.assertEqual(first, again)
        self.assertEqual(shown("VAR1"), "7")
        log = request_log()
        self.assertTrue(log[-1]["replayed"])
        self.assertEqual(log[-1]["applied"], [])

    def test_the_same_key_with_another_body_is_idempotency_key_reused(self):
        self.create(count_change("VAR1", "8"), key="same")
        answer = self.create(count_change("VAR1", "9"), key="same", status=400)
        self.assertEqual([(e["code"], e["field"]) for e in answer["errors"]],
                         [("IDEMPOTENCY_KEY_REUSED", "idempotency_key")])
        self.assertEqual(shown("VAR1"), "8")

    def test_occurred_at_within_24_hours_and_not_in_the_future(self):
        t = now()
        for when in (t - 86400 - 5, t + 60):
            answer = self.create(count_change("VAR1", "3", when), key=str(when), status=400)
            self.assertEqual([(e["code"], e["field"]) for e in answer["errors"]],
                             [("INVALID_TIME", "changes[0].physical_count.occurred_at")])
        self.create(count_change("VAR1", "3", t - 86400 + 60), key="in")
        control("clock", {"advance": 120})
        answer = self.create(count_change("VAR1", "4", t - 86400 + 60), key="late", status=400)
        self.assertEqual(self.codes(answer), ["INVALID_TIME"])
        self.assertEqual(shown("VAR1"), "3")

    def test_unknown_objects_and_locations_refuse_the_whole_batch(self):
        answer = self.create(count_change("VAR2", "1"), count_change("NOPE", "1"), count_change("GONE", "1"),
                             count_change("ITEM9", "1"), count_change("VAR3", "1", location="L9"),
                             count_change("VAR3", "1", location="L3"), status=400)
        self.assertEqual([(e["code"], e["field"]) for e in answer["errors"]], [
            ("NOT_FOUND", "changes[1].physical_count.catalog_object_id"),
            ("NOT_FOUND", "changes[2].physical_count.catalog_object_id"),
            ("INVALID_VALUE", "changes[3].physical_count.catalog_object_id"),
            ("NOT_FOUND", "changes[4].physical_count.location_id"),
            ("INVALID_VALUE", "changes[5].physical_count.location_id")])
        self.assertIn("`NOPE`", answer["errors"][0]["detail"])
        self.assertEqual(shown("VAR2"), "2.5", "all or nothing")
        control("config", {"error_field_paths": False})
        answer = self.create(count_change("NOPE", "1"), key="k2", status=400)
        self.assertEqual(answer["errors"][0]["field"], "catalog_object_id")

    def test_quantities_and_the_change_limit(self):
        answer = self.create(count_change("VAR1", "1.123456"), count_change("VAR2", "-1"), status=400)
        self.assertEqual(self.codes(answer), ["INVALID_VALUE", "INVALID_VALUE"])
        changes = [count_change("VAR1", str(i)) for i in range(101)]
        answer = self.create(*changes, key="many", status=400)
        self.assertEqual([(e["code"], e["field"]) for e in answer["errors"]], [("ARRAY_LENGTH_TOO_LONG", "changes")])


class Reads(StandinTest):
    def test_batch_retrieve_filters_by_object_location_and_state(self):
        answer = self.call(RETRIEVE, {"catalog_object_ids": ["VAR1", "VAR2", "NOPE"], "location_ids": ["L1"],
                                      "states": ["IN_STOCK"]}, 200, "BatchRetrieveInventoryCountsResponse")
        self.assertEqual(sorted((c["catalog_object_id"], c["quantity"]) for c in answer["counts"]),
                         [("VAR1", "5"), ("VAR2", "2.5")])
        answer = self.call(RETRIEVE, {"states": ["SOLD"]}, 200)
        self.assertEqual(answer["counts"], [])
        self.assertEqual(len(self.call(RETRIEVE, {}, 200)["counts"]), 3)

    def test_pages_follow_the_cursor_newest_first(self):
        self.create(count_change("VAR3", "4"))
        first = self.call(RETRIEVE, {"limit": 2}, 200, "BatchRetrieveInventoryCountsResponse")
        self.assertEqual(len(first["counts"]), 2)
        self.assertEqual(first["counts"][0]["catalog_object_id"], "VAR3")
        second = self.call(RETRIEVE, {"limit": 2, "cursor": first["cursor"]}, 200)
        self.assertEqual(len(second["counts"]), 2)
        self.assertNotIn("cursor", second)
        self.assertEqual(self.codes(self.call(RETRIEVE, {"cursor": "???"}, 400)), ["INVALID_CURSOR"])

    def test_retrieve_one_object(self):
        status, _, raw = api("/v2/inventory/VAR1?location_ids=L2", None, method="GET")
        self.assertEqual(status, 200)
        answer = json.loads(raw)
        self.assertEqual(SCHEMA.errors("RetrieveInventoryCountResponse", answer), [])
        self.assertEqual([c["quantity"] for c in answer["counts"]], ["1"])


class RateLimits(StandinTest):
    def test_an_empty_bucket_answers_429_rate_limited(self):
        control("config", {"bucket_capacity": 3, "restore_rate": 0})
        control("clock", {"freeze": True})
        for _ in range(3):
            self.call(RETRIEVE, {}, 200)
        status, headers, raw = api(RETRIEVE, {})
        self.assertEqual(status, 429)
        self.assertEqual(json.loads(raw), {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED",
                                                       "detail": "Rate limit exceeded."}]})
        self.assertIsNone(headers.get("Retry-After"))
        self.assertEqual(self.codes(self.create(count_change("VAR1", "9"), status=429)), ["RATE_LIMITED"])
        self.assertEqual(shown("VAR1"), "5")

    def test_the_bucket_refills_on_the_stand_in_clock(self):
        control("config", {"bucket_capacity": 2, "restore_rate": 1, "retry_after_on_429": True})
        control("clock", {"freeze": True})
        control("bucket", {"level": 0})
        status, headers, _ = api(RETRIEVE, {})
        self.assertEqual(status, 429)
        self.assertEqual(headers.get("Retry-After"), "1")
        control("clock", {"advance": 1})
        self.call(RETRIEVE, {}, 200)


class Faults(StandinTest):
    def test_a_5xx_after_apply_and_a_retry_with_the_same_key(self):
        control("faults", {"kind": "http_error", "status": 503, "apply": True})
        change = count_change("VAR1", "11")
        answer = self.create(change, key="r", status=503)
        self.assertEqual(answer["errors"][0]["code"], "SERVICE_UNAVAILABLE")
        self.assertEqual(shown("VAR1"), "11")
        self.create(change, key="r")
        log = request_log()
        self.assertEqual([len(e["applied"]) for e in log], [1, 0])
        self.assertTrue(log[-1]["replayed"])

    def test_a_5xx_without_apply_changes_nothing(self):
        control("faults", {"kind": "http_error", "status": 500})
        self.create(count_change("VAR1", "11"), key="r", status=500)
        self.assertEqual(shown("VAR1"), "5")
        self.create(count_change("VAR1", "11"), key="r")
        self.assertEqual(shown("VAR1"), "11")

    def test_reset_malformed_rate_limit_and_delay(self):
        control("faults", {"faults": [{"kind": "reset"}, {"kind": "malformed"}, {"kind": "rate_limit", "count": 2},
                                      {"kind": "delay", "seconds": 0.5}]})
        with self.assertRaises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            api(RETRIEVE, {})
        status, _, raw = api(RETRIEVE, {})
        self.assertEqual(status, 200)
        with self.assertRaises(ValueError):
            json.loads(raw)
        self.assertEqual(api(RETRIEVE, {})[0], 429)
        self.assertEqual(api(RETRIEVE, {})[0], 429)
        started = time.monotonic()
        self.call(RETRIEVE, {}, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.45)

    def test_a_timeout_after_apply(self):
        control("faults", {"kind": "timeout", "seconds": 3, "match": "write"})
        with self.assertRaises((socket.timeout, TimeoutError, urllib.error.URLError, ConnectionError)):
            api(CREATE, {"idempotency_key": "t", "ignore_unchanged_counts": False,
                         "changes": [count_change("VAR1", "12")]}, timeout=0.5)
        self.assertEqual(shown("VAR1"), "12")
        self.assertEqual(request_log()[-1]["outcome"], "hang")

    def test_control_refuses_bad_requests(self):
        for route, spec in (("faults", {"kind": "meteor"}), ("faults", {"kind": "http_error", "status": 404}),
                            ("config", {"restore_rate": -1}), ("sale", {"catalog_object_id": "VAR1"})):
            status, _, _ = http_request("POST", "/_control/" + route, json.dumps(spec).encode())
            self.assertEqual(status, 400, route)

    def test_the_request_log_file_mirrors_the_log(self):
        self.call(RETRIEVE, {}, 200)
        with open(REQUEST_LOG_PATH, encoding="utf-8") as file:
            last = json.loads(file.read().splitlines()[-1])
        self.assertEqual(last["operation"], "batch-retrieve")
        self.assertEqual(last["version"], VERSION)


class Receiver:
    """A local HTTP server that keeps every notification posted to it (headers, body)."""

    def __init__(self):
        import http.server
        import threading
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/webhooks/square" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, count, seconds=10):
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


class Orders(StandinTest):
    """Orders made through the control API, their signed notifications and RetrieveOrder."""

    NOTIFICATION_URL = "https://shop.example/webhooks/square"

    def setUp(self):
        super().setUp()
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)
        control("webhooks", {"url": self.receiver.url, "secret": "sig-key",
                             "notification_url": self.NOTIFICATION_URL})

    def signed(self, headers, body):
        import base64
        import hashlib
        import hmac
        expected = base64.b64encode(hmac.new(b"sig-key", self.NOTIFICATION_URL.encode() + body,
                                             hashlib.sha256).digest()).decode()
        return headers.get("x-square-hmacsha256-signature") == expected

    def test_an_order_is_announced_signed_and_read_back_with_its_lines(self):
        order = control("order", {"location_id": "L1", "lines": [{"catalog_object_id": "VAR1", "quantity": 2}]})
        self.assertEqual(shown("VAR1"), "3", "IN_STOCK -> SOLD at once")
        (headers, body), = self.receiver.wait(1)
        self.assertTrue(self.signed(headers, body))
        event = json.loads(body)
        self.assertEqual(event["type"], "order.created")
        self.assertEqual(event["event_id"], order["eventId"])
        self.assertEqual(event["data"]["object"]["order_created"]["order_id"], order["id"])
        self.assertNotIn("line_items", event["data"]["object"]["order_created"])
        status, _, raw = api("/v2/orders/" + order["id"], None, method="GET")
        self.assertEqual(status, 200, raw)
        line, = json.loads(raw)["order"]["line_items"]
        self.assertEqual((line["catalog_object_id"], line["quantity"]), ("VAR1", "2"))
        self.assertEqual(api("/v2/orders/nope", None, method="GET")[0], 404)
        self.assertEqual(api("/v2/orders/" + order["id"], None, method="GET", token="bad")[0], 401)

    def test_duplicates_share_the_event_id_and_cancel_and_refund_are_announced(self):
        control("config", {"webhook_duplicate_rate": 1.0})
        order = control("order", {"location_id": "L1", "lines": [{"catalog_object_id": "VAR1", "quantity": 1}]})
        control("cancel", {"order_id": order["id"]})
        self.assertEqual(shown("VAR1"), "5", "a cancellation gives the units back")
        sold = control("order", {"location_id": "L1", "state": "COMPLETED",
                                 "lines": [{"catalog_object_id": "VAR1", "quantity": 2}]})
        refund = control("refund", {"order_id": sold["id"], "lines": [{"uid": sold["line_items"][0]["uid"],
                                                                       "quantity": 1}]})
        received = self.receiver.wait(8)
        self.assertEqual(len(received), 8)
        events = [json.loads(body) for _, body in received]
        self.assertTrue(all(self.signed(h, b) for h, b in received))
        self.assertEqual(sorted(e["type"] for e in events),
                         sorted(["order.created", "order.updated", "order.created", "refund.created"] * 2))
        for event_id in {e["event_id"] for e in events}:
            self.assertEqual(sum(1 for e in events if e["event_id"] == event_id), 2)
        returned = json.loads(api("/v2/orders/" + refund["order"]["id"], None, method="GET")[2])["order"]
        line, = returned["returns"][0]["return_line_items"]
        self.assertEqual((line["source_line_item_uid"], line["quantity"]), (sold["line_items"][0]["uid"], "1"))
        self.assertEqual(returned["returns"][0]["source_order_id"], sold["id"])


    def test_an_update_changes_quantities_bumps_the_version_and_is_announced(self):
        order = control("order", {"location_id": "L1", "lines": [{"catalog_object_id": "VAR1", "quantity": 2}]})
        uid = order["line_items"][0]["uid"]
        updated = control("update", {"order_id": order["id"], "lines": [{"uid": uid, "quantity": 3}],
                                     "add": [{"catalog_object_id": "VAR1", "quantity": 1}]})
        self.assertEqual(updated["version"], 2)
        self.assertEqual([line["quantity"] for line in updated["line_items"]], ["3", "1"])
        self.assertEqual(shown("VAR1"), "1", "IN_STOCK follows the difference")
        removed = control("update", {"order_id": order["id"], "lines": [{"uid": uid, "quantity": 0}]})
        self.assertEqual((removed["version"], len(removed["line_items"])), (3, 1))
        self.assertEqual(shown("VAR1"), "4")
        received = self.receiver.wait(3)
        summaries = [json.loads(body)["data"]["object"] for _, body in received]
        self.assertEqual(sorted(s.get("order_updated", s.get("order_created"))["version"] for s in summaries),
                         [1, 2, 3])
        status, _, raw = api("/v2/orders/" + order["id"], None, method="GET")
        self.assertEqual(json.loads(raw)["order"]["version"], 3)
        with self.assertRaises(Exception):
            control("update", {"order_id": order["id"], "lines": [{"uid": "nope", "quantity": 1}]})
        control("cancel", {"order_id": order["id"]})
        with self.assertRaises(Exception):
            control("update", {"order_id": order["id"], "add": [{"catalog_object_id": "VAR1", "quantity": 1}]})


class Helpers(unittest.TestCase):
    def test_quantities_and_times(self):
        self.assertEqual(square.quantity_text(square.decimal.Decimal("2.50")), "2.5")
        self.assertEqual(square.quantity_text(square.decimal.Decimal("-0")), "0")
        self.assertIsNone(square.parse_quantity("1e3"))
        self.assertEqual(square.parse_time("1970-01-01T00:00:01.500Z"), 1.5)
        self.assertEqual(square.parse_time("1970-01-01T01:00:00+01:00"), 0)
        self.assertIsNone(square.parse_time("1970-01-01 00:00:00Z"))
        self.assertEqual(square.time_text(1.5), "1970-01-01T00:00:01.500Z")


if __name__ == "__main__":
    unittest.main()
