"""Tests of the Amazon Selling Partner API stand-in (amazon.py beside this file).

One stand-in process serves the whole module; every test starts from `/_control/reset` with
the same seed.  Every answer of the stand-in that the official models describe is checked
against them here too (Item, ListingsItemSubmissionResponse, Feed, ErrorList, the processing
report), so the stand-in cannot drift from the schemas it validates requests with.  The
stand-in runs with the interpreter running these tests: without python3-jsonschema the
module fails, never skips.
"""

import http.client
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

importlib.import_module("jsonschema")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import amazon  # noqa: E402  (the stand-in's Schemas, for checking its answers)

SELLER = "A1STANDINSELLER"
MARKET = "ATVPDKIKX0DER"
SEED = {"listings": [
    {"sku": "MUG-RED", "quantity": 10},
    {"sku": "MUG/BLUE 2", "quantity": 3},
    {"sku": "CAP", "quantity": 0, "buyable": False},
]}
TOKEN_FORM = urllib.parse.urlencode({
    "grant_type": "refresh_token", "refresh_token": "Atzr|standin-refresh",
    "client_id": "amzn1.application-oa2-client.standin", "client_secret": "standin-secret"})

PROCESS = None
PORT = None
DIRECTORY = None
SCHEMAS = amazon.Schemas()


def setUpModule():
    global PROCESS, PORT, DIRECTORY
    DIRECTORY = tempfile.mkdtemp(prefix="amazon-standin-")
    port_file = os.path.join(DIRECTORY, "port")
    PROCESS = subprocess.Popen([sys.executable, "-B", os.path.join(HERE, "amazon.py"), "--port-file", port_file],
                               stdout=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file):
            with open(port_file, encoding="utf-8") as file:
                PORT = int(file.read())
            return
        time.sleep(0.05)
    raise RuntimeError("the stand-in did not start")


def tearDownModule():
    PROCESS.terminate()
    PROCESS.wait(10)
    shutil.rmtree(DIRECTORY, ignore_errors=True)


def call(method, path, body=None, headers=None, raw=False):
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    data = body if isinstance(body, (bytes, type(None))) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if raw:
        return response.status, payload, dict(response.getheaders())
    return response.status, (json.loads(payload) if payload else None), dict(response.getheaders())


def control(route, body=None):
    status, answer, _ = call("POST", "/_control/" + route, body or {})
    assert status == 200, (route, answer)
    return answer


def state():
    return call("GET", "/_control/state")[1]


def token():
    status, answer, _ = call("POST", "/auth/o2/token", TOKEN_FORM,
                             {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, answer
    return answer["access_token"]


def item_path(sku, query="", seller=SELLER):
    return "/listings/2021-08-01/items/%s/%s?marketplaceIds=%s%s" % (
        seller, urllib.parse.quote(sku, safe=""), MARKET, query)


def patch_body(quantity, product_type="PRODUCT"):
    return {"productType": product_type, "patches": [{
        "op": "merge", "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]}]}


def valid(validator, value):
    errors = list(validator.iter_errors(value))
    return not errors, [e.message for e in errors[:3]]


class Base(unittest.TestCase):
    def setUp(self):
        control("reset", {"seed": SEED})
        self.token = token()
        self.auth = {"x-amz-access-token": self.token, "Content-Type": "application/json"}

    def patch(self, sku, body, query=""):
        return call("PATCH", item_path(sku, query), body, self.auth)

    def get(self, sku, query="&includedData=summaries,issues,fulfillmentAvailability"):
        return call("GET", item_path(sku, query), None, self.auth)

    def listing(self, sku):
        for entry in state()["listings"]:
            if entry["sku"] == sku:
                return entry
        return None


class TokenTest(Base):
    def test_refresh_and_errors(self):
        status, answer, _ = call("POST", "/auth/o2/token", TOKEN_FORM.replace("standin-refresh", "other"),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, answer["error"]), (400, "invalid_grant"))
        status, answer, _ = call("POST", "/auth/o2/token", TOKEN_FORM.replace("standin-secret", "x"),
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((status, answer["error"]), (401, "invalid_client"))
        self.assertTrue(self.token.startswith("Atza|"))

    def test_expiry_on_the_clock_and_mid_run(self):
        control("config", {"token_expires_in": 60})
        fresh = token()
        headers = {"x-amz-access-token": fresh}
        self.assertEqual(call("GET", item_path("MUG-RED"), None, headers)[0], 200)
        control("clock", {"advance": 61})
        status, answer, _ = call("GET", item_path("MUG-RED"), None, headers)
        self.assertEqual(status, 403)
        self.assertEqual(answer["errors"][0]["code"], "Unauthorized")
        self.assertTrue(valid(SCHEMAS.error_list, answer)[0])
        fresh = token()
        self.assertEqual(call("GET", item_path("MUG-RED"), None, {"x-amz-access-token": fresh})[0], 200)
        control("tokens/expire")
        self.assertEqual(call("GET", item_path("MUG-RED"), None, {"x-amz-access-token": fresh})[0], 403)


class ListingsTest(Base):
    def test_patch_accepted_then_applied_after_the_delay(self):
        control("config", {"apply_delay_seconds": 120})
        status, answer, headers = self.patch("MUG-RED", patch_body(4))
        self.assertEqual(status, 200)
        self.assertEqual(answer["status"], "ACCEPTED")
        self.assertTrue(valid(SCHEMAS.submission, answer)[0])
        self.assertEqual(headers["x-amzn-RateLimit-Limit"], "5.0")
        self.assertIn("x-amzn-RequestId", headers)
        self.assertEqual(self.get("MUG-RED")[1]["fulfillmentAvailability"][0]["quantity"], 10)
        control("clock", {"advance": 121})
        status, item, _ = self.get("MUG-RED")
        self.assertTrue(valid(SCHEMAS.item, item)[0], valid(SCHEMAS.item, item)[1])
        self.assertEqual(item["fulfillmentAvailability"], [{"fulfillmentChannelCode": "DEFAULT", "quantity": 4}])
        self.assertIn("BUYABLE", item["summaries"][0]["status"])
        applied = state()["applications"]
        self.assertEqual([(a["sku"], a["quantity"], a["delta"]) for a in applied], [("MUG-RED", 4, -6)])

    def test_a_sku_with_a_slash_and_a_space(self):
        status, answer, _ = self.patch("MUG/BLUE 2", patch_body(1))
        self.assertEqual((status, answer["sku"], answer["status"]), (200, "MUG/BLUE 2", "ACCEPTED"))
        self.assertEqual(self.listing("MUG/BLUE 2")["quantity"], 1)

    def test_an_unknown_sku_is_accepted_and_becomes_an_offer_only_listing(self):
        self.assertEqual(self.get("NEW-SKU")[0], 404)
        status, answer, _ = self.patch("NEW-SKU", patch_body(5))
        self.assertEqual((status, answer["status"]), (200, "ACCEPTED"))
        status, item, _ = self.get("NEW-SKU")
        self.assertEqual(status, 200)
        self.assertTrue(valid(SCHEMAS.item, item)[0])
        self.assertNotIn("BUYABLE", item["summaries"][0]["status"])
        self.assertEqual(item["issues"][0]["severity"], "ERROR")

    def test_invalid_value_preview_and_non_conforming_bodies(self):
        control("config", {"limits": {"patchListingsItem": [100, 100], "getListingsItem": [100, 100]}})
        status, answer, _ = self.patch("MUG-RED", patch_body(-1))
        self.assertEqual((status, answer["status"]), (200, "INVALID"))
        self.assertEqual(answer["issues"][0]["severity"], "ERROR")
        self.assertTrue(valid(SCHEMAS.submission, answer)[0])
        status, answer, _ = self.patch("MUG-RED", patch_body(2), "&mode=VALIDATION_PREVIEW")
        self.assertEqual(answer["status"], "VALID")
        self.assertEqual(self.listing("MUG-RED")["quantity"], 10, "a preview applies nothing")
        for body in ({"patches": patch_body(1)["patches"]},            # productType is required
                     {"productType": "PRODUCT", "patches": []},        # minItems 1
                     {"productType": "PRODUCT", "patches": [{"op": "move", "path": "/x"}]}):
            status, answer, _ = self.patch("MUG-RED", body)
            self.assertEqual(status, 400, body)
            self.assertEqual(answer["errors"][0]["code"], "InvalidInput")
            self.assertTrue(valid(SCHEMAS.error_list, answer)[0])
        self.assertEqual(call("PATCH", item_path("MUG-RED"), "{not json", self.auth)[0], 400)
        self.assertEqual(self.patch("MUG-RED", patch_body(1), "&mode=LIVE")[0], 400)
        self.assertEqual(call("PATCH", item_path("MUG-RED", seller="OTHER"), patch_body(1), self.auth)[0], 400)
        self.assertEqual(self.get("MUG-RED", "&includedData=nonsense")[0], 400)
        self.assertEqual(self.listing("MUG-RED")["quantity"], 10)

    def test_an_inactive_listing_has_no_buyable_status(self):
        control("listing", {"sku": "MUG-RED", "buyable": False})
        status, item, _ = self.get("MUG-RED")
        self.assertEqual(status, 200)
        self.assertNotIn("BUYABLE", item["summaries"][0]["status"])
        self.assertEqual(item["issues"][0]["severity"], "ERROR")

    def test_token_buckets_and_429(self):
        control("config", {"limits": {"patchListingsItem": [0.5, 3]}})
        control("clock", {"freeze": True})
        statuses = [self.patch("MUG-RED", patch_body(i))[0] for i in range(5)]
        self.assertEqual(statuses, [200, 200, 200, 429, 429])
        status, answer, headers = self.patch("MUG-RED", patch_body(1))
        self.assertEqual(answer["errors"][0]["code"], "QuotaExceeded")
        self.assertNotIn("x-amzn-RateLimit-Limit", headers)
        control("clock", {"advance": 2})
        status, _, headers = self.patch("MUG-RED", patch_body(1))
        self.assertEqual((status, headers["x-amzn-RateLimit-Limit"]), (200, "0.5"))

    def test_faults(self):
        control("faults", {"kind": "http_error", "status": 503, "match": "patchListingsItem"})
        self.assertEqual(self.patch("MUG-RED", patch_body(7))[0], 503)
        self.assertEqual(self.listing("MUG-RED")["quantity"], 10, "nothing applied")
        control("faults", {"kind": "malformed"})
        status, payload, _ = call("PATCH", item_path("MUG-RED"), patch_body(7), self.auth, raw=True)
        self.assertEqual(status, 200)
        with self.assertRaises(ValueError):
            json.loads(payload)
        control("faults", {"kind": "timeout", "seconds": 0.3})
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            self.patch("MUG-RED", patch_body(6))
        self.assertEqual(self.listing("MUG-RED")["quantity"], 6, "applied before the timeout")
        control("faults", {"kind": "reset"})
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            self.patch("MUG-RED", patch_body(5))
        log = [json.loads(l) for l in call("GET", "/_control/log", raw=True)[1].decode().splitlines()]
        self.assertEqual([e["fault"] for e in log if e["operation"] == "patchListingsItem"],
                         ["http_error", "malformed", "timeout", "reset"])


class FeedTest(Base):
    def feed(self, document, fault=None):
        status, created, headers = call("POST", "/feeds/2021-06-30/documents",
                                        {"contentType": "application/json; charset=UTF-8"}, self.auth)
        self.assertEqual(status, 201)
        self.assertEqual(headers["x-amzn-RateLimit-Limit"], "0.5")
        url = urllib.parse.urlsplit(created["url"])
        self.assertEqual(call("PUT", url.path, json.dumps(document), {"Content-Type": "application/json"})[0], 200)
        if fault:
            control("faults", fault)
        status, answer, _ = call("POST", "/feeds/2021-06-30/feeds",
                                 {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKET],
                                  "inputFeedDocumentId": created["feedDocumentId"]}, self.auth)
        self.assertEqual(status, 202, answer)
        return answer["feedId"]

    def status(self, feed_id):
        status, feed, _ = call("GET", "/feeds/2021-06-30/feeds/" + feed_id, None, self.auth)
        self.assertEqual(status, 200)
        self.assertTrue(valid(SCHEMAS.feed, feed)[0], valid(SCHEMAS.feed, feed)[1])
        return feed

    def report(self, feed):
        status, document, _ = call("GET", "/feeds/2021-06-30/documents/" + feed["resultFeedDocumentId"],
                                   None, self.auth)
        self.assertEqual(status, 200)
        report = call("GET", urllib.parse.urlsplit(document["url"]).path)[1]
        self.assertTrue(valid(SCHEMAS.report, report)[0], valid(SCHEMAS.report, report)[1])
        return report

    def document(self, messages):
        return {"header": {"sellerId": SELLER, "version": "2.0"}, "messages": [
            {"messageId": i + 1, "sku": sku, "operationType": "PATCH", "productType": "PRODUCT",
             "patches": patch_body(quantity)["patches"]} for i, (sku, quantity) in enumerate(messages)]}

    def test_the_official_example_validates(self):
        with open(os.path.join(amazon.SCHEMA_DIR, "listings-feed-schema-v2.example.json"), encoding="utf-8") as file:
            self.assertTrue(valid(SCHEMAS.feed_document, json.load(file))[0])

    def test_states_report_and_applications(self):
        control("clock", {"freeze": True})
        feed_id = self.feed(self.document([("MUG-RED", 2), ("CAP", -3), ("NEW", 4)]))
        self.assertEqual(self.status(feed_id)["processingStatus"], "IN_QUEUE")
        control("clock", {"advance": 1})
        self.assertEqual(self.status(feed_id)["processingStatus"], "IN_PROGRESS")
        control("clock", {"advance": 1})
        feed = self.status(feed_id)
        self.assertEqual(feed["processingStatus"], "DONE")
        report = self.report(feed)
        self.assertEqual(report["summary"]["messagesProcessed"], 3)
        self.assertEqual(report["summary"]["messagesInvalid"], 1)
        self.assertEqual([(i["messageId"], i["severity"]) for i in report["issues"]], [(2, "ERROR")])
        self.assertEqual(self.listing("MUG-RED")["quantity"], 2)
        self.assertEqual(self.listing("NEW")["buyable"], False)

    def test_a_non_conforming_document_and_fatal_and_cancelled(self):
        control("clock", {"freeze": True})
        bad = self.document([("MUG-RED", 2)])
        del bad["messages"][0]["productType"]
        feed_id = self.feed(bad)
        control("clock", {"advance": 5})
        report = self.report(self.status(feed_id))
        self.assertEqual(report["summary"]["messagesProcessed"], 0)
        self.assertNotIn("messageId", report["issues"][0])
        self.assertEqual(self.listing("MUG-RED")["quantity"], 10)
        fatal = self.feed(self.document([("MUG-RED", 2)]), {"kind": "feed_fatal"})
        cancelled = self.feed(self.document([("MUG-RED", 2)]), {"kind": "feed_cancelled"})
        control("clock", {"advance": 5})
        self.assertEqual(self.status(fatal)["processingStatus"], "FATAL")
        self.assertEqual(self.status(cancelled)["processingStatus"], "CANCELLED")
        self.assertEqual(self.listing("MUG-RED")["quantity"], 10)

    def test_non_conforming_feed_requests(self):
        self.assertEqual(call("POST", "/feeds/2021-06-30/documents", {}, self.auth)[0], 400)
        status, answer, _ = call("POST", "/feeds/2021-06-30/feeds",
                                 {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": []}, self.auth)
        self.assertEqual(status, 400)
        self.assertEqual(answer["errors"][0]["code"], "InvalidInput")
        self.assertEqual(call("GET", "/feeds/2021-06-30/feeds/123", None, self.auth)[0], 404)


if __name__ == "__main__":
    unittest.main()


class OrdersTest(Base):
    """getOrders / getOrderItems over orders made through the control API."""

    def orders(self, query):
        return call("GET", "/orders/v0/orders?MarketplaceIds=%s&%s" % (MARKET, query), None, self.auth)

    def test_orders_updated_after_a_time_in_pages_merchant_fulfilled_only(self):
        control("config", {"orders_page_size": 2})
        made = [control("order", {"items": [{"sku": "MUG-RED", "quantity": 2}]})["AmazonOrderId"] for _ in range(3)]
        control("order", {"items": [{"sku": "MUG-RED", "quantity": 1}], "fulfillmentChannel": "AFN"})
        status, answer, _ = self.orders("LastUpdatedAfter=2020-01-01T00:00:00Z&FulfillmentChannels=MFN")
        self.assertEqual(status, 200, answer)
        first = [o["AmazonOrderId"] for o in answer["payload"]["Orders"]]
        self.assertEqual(len(first), 2)
        token_text = urllib.parse.quote(answer["payload"]["NextToken"], safe="")
        status, answer, _ = self.orders("NextToken=" + token_text)
        self.assertEqual(status, 200, answer)
        self.assertNotIn("NextToken", answer["payload"])
        self.assertEqual(first + [o["AmazonOrderId"] for o in answer["payload"]["Orders"]], made)
        # Later than the last update: nothing; no time at all: refused.
        status, answer, _ = self.orders("LastUpdatedAfter=2100-01-01T00:00:00Z")
        self.assertEqual(answer["payload"]["Orders"], [])
        status, answer, _ = self.orders("FulfillmentChannels=MFN")
        self.assertEqual(status, 400)

    def test_items_and_a_cancellation_that_gives_the_listing_back(self):
        before = self.listing("MUG-RED")["quantity"]
        order = control("order", {"items": [{"sku": "MUG-RED", "quantity": 2}, {"sku": "MUG-2", "quantity": 1}]})
        self.assertEqual(self.listing("MUG-RED")["quantity"], before - 2)
        control("config", {"items_page_size": 1})
        path = "/orders/v0/orders/%s/orderItems" % order["AmazonOrderId"]
        status, answer, _ = call("GET", path, None, self.auth)
        self.assertEqual(status, 200, answer)
        self.assertEqual([(i["SellerSKU"], i["QuantityOrdered"]) for i in answer["payload"]["OrderItems"]],
                         [("MUG-RED", 2)])
        status, answer, _ = call("GET", path + "?NextToken=" + urllib.parse.quote(answer["payload"]["NextToken"]),
                                 None, self.auth)
        self.assertEqual([i["SellerSKU"] for i in answer["payload"]["OrderItems"]], ["MUG-2"])
        cancelled = control("order_status", {"id": order["AmazonOrderId"], "status": "Canceled"})
        self.assertEqual(cancelled["OrderStatus"], "Canceled")
        self.assertEqual(self.listing("MUG-RED")["quantity"], before)
        self.assertEqual(call("GET", "/orders/v0/orders/nope/orderItems", None, self.auth)[0], 404)

    def test_each_operation_has_its_own_rate_limit(self):
        control("config", {"limits": {"getOrders": [0.001, 2]}})
        statuses = [self.orders("LastUpdatedAfter=2020-01-01T00:00:00Z")[0] for _ in range(3)]
        self.assertEqual(statuses, [200, 200, 429])
        status, answer, _ = self.orders("LastUpdatedAfter=2020-01-01T00:00:00Z")
        self.assertEqual(answer["errors"][0]["code"], "QuotaExceeded")
        # getOrderItems draws on its own bucket.
        order = control("order", {"items": [{"sku": "MUG-RED", "quantity": 1}]})
        status, _, headers = call("GET", "/orders/v0/orders/%s/orderItems" % order["AmazonOrderId"], None, self.auth)
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("x-amzn-RateLimit-Limit"), "0.5")

