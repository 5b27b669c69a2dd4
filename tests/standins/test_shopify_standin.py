"""Tests of the Shopify Admin GraphQL stand-in (shopify.py beside this file).

One stand-in process serves the whole module; every test starts from `/_control/reset` with
the same seed, so tests do not depend on each other's order.  The stand-in runs with the
interpreter running these tests, so a missing graphql-core makes the module fail, never skip.
"""

import http.client
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

# The stand-in needs graphql-core: without it this module fails here, loudly.
importlib.import_module("graphql")

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "shopify.py")
TOKEN = "shpat_test_token"

ITEM = "gid://shopify/InventoryItem/%d"
LOCATION = "gid://shopify/Location/%d"
SEED = {
    "locations": [{"id": 1, "name": "Shop"}, {"id": 2, "name": "Warehouse"}, {"id": 3, "name": "Pop-up"}],
    "items": [{"id": 101, "sku": "MUG-RED"}, {"id": 102, "sku": "MUG-BLUE"}, {"id": 103, "sku": "CAP"},
              {"id": 104, "sku": "UNSTOCKED"}, {"id": 105, "sku": "BUNDLE", "mutable": False}],
    "levels": [
        {"inventoryItemId": ITEM % 101, "locationId": LOCATION % 1, "available": 10},
        {"inventoryItemId": ITEM % 102, "locationId": LOCATION % 1, "available": 5, "committed": 2},
        {"inventoryItemId": ITEM % 103, "locationId": LOCATION % 1, "available": 0},
        {"inventoryItemId": ITEM % 101, "locationId": LOCATION % 2, "available": 4},
        {"inventoryItemId": ITEM % 105, "locationId": LOCATION % 1, "available": 1},
    ],
}

SET_MUTATION = """
mutation Set($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri changes { name delta quantityAfterChange
      item { id } location { id } } }
    userErrors { code field message }
  }
}"""

SET_IDEMPOTENT = """
mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta } }
    userErrors { code field message }
  }
}"""

READ_LEVEL = """
query Level($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    id sku
    inventoryLevel(locationId: $location) {
      id
      quantities(names: ["available", "on_hand", "committed"]) { name quantity }
    }
  }
}"""

PROCESS = None
PORT = None
REQUEST_LOG_PATH = None


def setUpModule():
    global PROCESS, PORT, REQUEST_LOG_PATH
    directory = tempfile.mkdtemp(prefix="shopify-standin-")
    port_file = os.path.join(directory, "port")
    REQUEST_LOG_PATH = os.path.join(directory, "requests.jsonl")
    PROCESS = subprocess.Popen(
        [sys.executable, "-B", STANDIN, "--port-file", port_file, "--token", TOKEN,
         "--request-log", REQUEST_LOG_PATH],
        stdout=subprocess.PIPE, stderr=None)
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


def graphql_request(query, variables=None, version="2025-01", token=TOKEN, timeout=10):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Shopify-Access-Token"] = token
    return http_request("POST", "/admin/api/%s/graphql.json" % version, body, headers, timeout)


def quantity(item, location, value, **extra):
    return dict({"inventoryItemId": ITEM % item, "locationId": LOCATION % location, "quantity": value}, **extra)


def set_input(*quantities, name="available", **extra):
    return dict({"name": name, "reason": "correction", "referenceDocumentUri": "skuld://push/1",
                 "quantities": list(quantities)}, **extra)


def level_state(item, location):
    for level in control("state", method="GET")["levels"]:
        if level["inventoryItemId"] == ITEM % item and level["locationId"] == LOCATION % location:
            return level
    raise AssertionError("no level %d@%d" % (item, location))


def request_log():
    return [json.loads(line) for line in control("log", method="GET").decode().splitlines()]


class StandinTest(unittest.TestCase):
    def setUp(self):
        control("reset", {"seed": SEED})

    def gql(self, query, variables=None, version="2025-01", status=200, **options):
        """Sends a GraphQL request and checks what every GraphQL answer carries."""
        answer_status, headers, body = graphql_request(query, variables, version, **options)
        self.assertEqual(answer_status, status, body)
        answer = json.loads(body)
        cost = answer["extensions"]["cost"]
        self.assertEqual(set(cost), {"requestedQueryCost", "actualQueryCost", "throttleStatus"})
        self.assertEqual(set(cost["throttleStatus"]), {"maximumAvailable", "currentlyAvailable", "restoreRate"})
        return answer

    def set_quantities(self, *quantities, version="2025-01", **extra):
        return self.gql(SET_MUTATION, {"input": set_input(*quantities, **extra)}, version)

    def payload(self, answer, field="inventorySetQuantities"):
        self.assertNotIn("errors", answer)
        return answer["data"][field]

    def user_error_codes(self, answer, field="inventorySetQuantities"):
        return [error["code"] for error in self.payload(answer, field)["userErrors"]]

    def error_codes(self, answer):
        self.assertNotIn("data", answer)
        for error in answer["errors"]:
            self.assertIn("message", error)
        return [error["extensions"]["code"] for error in answer["errors"]]


class RoutingAndAuth(StandinTest):
    def test_versions_outside_the_supported_quarters_are_404(self):
        for version in ("2025-02", "2024-10", "2026-07", "2025-13"):
            status, _, body = graphql_request("{ __typename }", version=version)
            self.assertEqual(status, 404, version)
            self.assertEqual(json.loads(body), {"errors": "Not Found"})
        self.assertEqual(http_request("POST", "/admin/api/2025-1/graphql.json", b"{}")[0], 404)
        self.assertEqual(http_request("POST", "/admin/api/2025-01/other.json", b"{}")[0], 404)

    def test_every_supported_version_answers(self):
        for version in ("2025-01", "2025-04", "2025-07", "2025-10", "2026-01", "2026-04"):
            self.assertEqual(self.gql("{ __typename }", version=version)["data"], {"__typename": "QueryRoot"})

    def test_a_missing_or_wrong_token_is_401_with_shopify_body(self):
        expected = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        for token in (None, "shpat_wrong"):
            status, _, body = graphql_request("{ __typename }", token=token)
            self.assertEqual(status, 401)
            self.assertEqual(json.loads(body), expected)

    def test_a_rotated_token_fails_mid_run(self):
        self.gql("{ __typename }")
        control("tokens", {"tokens": ["shpat_new"]})
        self.assertEqual(graphql_request("{ __typename }")[0], 401)
        self.gql("{ __typename }", token="shpat_new")
        self.assertEqual([e["status"] for e in request_log()], [200, 401, 200])

    def test_a_body_that_is_not_json_is_400(self):
        status, _, body = http_request("POST", "/admin/api/2025-01/graphql.json", b"{nope",
                                       {"X-Shopify-Access-Token": TOKEN, "Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertIn("errors", json.loads(body))

    def test_an_application_graphql_body_is_the_document(self):
        status, _, body = http_request("POST", "/admin/api/2025-01/graphql.json", b"{ __typename }",
                                       {"X-Shopify-Access-Token": TOKEN, "Content-Type": "application/graphql"})
        self.assertEqual((status, json.loads(body)["data"]), (200, {"__typename": "QueryRoot"}))


class SchemaValidation(StandinTest):
    """Documents and variables are checked against the official extract, as Shopify does:
    HTTP 200, `errors` with message, locations and extensions.code, and no `data`."""

    def test_a_syntax_error(self):
        answer = self.gql("mutation { inventorySetQuantities(input: {) }")
        self.assertEqual(self.error_codes(answer), ["parseError"])
        self.assertEqual(set(answer["errors"][0]["locations"][0]), {"line", "column"})

    def test_an_unknown_field_of_the_official_payload(self):
        document = ('mutation { inventorySetQuantities(input: {name: "available", reason: "correction", '
                    'quantities: []}) { userErrors { code nope } } }')
        answer = self.gql(document)
        self.assertEqual(self.error_codes(answer), ["undefinedField"])
        self.assertEqual(answer["errors"][0]["locations"], [{"line": 1, "column": document.index("nope") + 1}])

    def test_an_unknown_field_of_the_hand_written_read_side(self):
        answer = self.gql('{ inventoryItem(id: "gid://shopify/InventoryItem/101") { inventoryQuantity } }')
        self.assertEqual(self.error_codes(answer), ["undefinedField"])

    def test_a_variable_of_the_wrong_type(self):
        answer = self.gql(SET_MUTATION, {"input": set_input(quantity(101, 1, "ten", compareQuantity=10))})
        self.assertEqual(self.error_codes(answer), ["INVALID_VARIABLE"])

    def test_an_input_field_unknown_to_the_schema(self):
        answer = self.gql(SET_MUTATION, {"input": set_input(quantity(101, 1, 3, compareQuantiy=10))})
        self.assertEqual(self.error_codes(answer), ["INVALID_VARIABLE"])

    def test_a_required_input_field_missing_from_a_literal(self):
        answer = self.gql('mutation { inventorySetQuantities(input: {name: "available", quantities: []}) '
                          '{ userErrors { code } } }')
        self.assertEqual(self.error_codes(answer), ["argumentLiteralsIncompatible"])

    def test_change_from_quantity_does_not_exist_before_2026_01(self):
        answer = self.gql(SET_MUTATION, {"input": set_input(quantity(101, 1, 3, changeFromQuantity=10))},
                          version="2025-10")
        self.assertEqual(self.error_codes(answer), ["INVALID_VARIABLE"])

    def test_the_idempotent_directive_does_not_exist_before_2026_01(self):
        answer = self.gql(SET_IDEMPOTENT, {"input": set_input(quantity(101, 1, 3, compareQuantity=10)), "key": "k"},
                          version="2025-10")
        self.assertEqual(self.error_codes(answer), ["undefinedDirective"])

    def test_compare_quantity_is_gone_in_2026_04(self):
        literal = ('mutation { inventorySetQuantities(input: {name: "available", reason: "correction", quantities: '
                   '[{inventoryItemId: "gid://shopify/InventoryItem/101", locationId: "gid://shopify/Location/1", '
                   'quantity: 3, compareQuantity: 10, changeFromQuantity: null}]}) @idempotent(key: "a") '
                   '{ userErrors { code } } }')
        self.assertEqual(self.error_codes(self.gql(literal, version="2026-04")), ["argumentLiteralsIncompatible"])
        answer = self.gql(SET_IDEMPOTENT, {"input": set_input(quantity(101, 1, 3, changeFromQuantity=None),
                                                              ignoreCompareQuantity=True), "key": "b"},
                          version="2026-04")
        self.assertEqual(self.error_codes(answer), ["INVALID_VARIABLE"])
        self.assertEqual(level_state(101, 1)["available"], 10)


class SetQuantities(StandinTest):
    def test_a_set_applies_and_answers_in_the_shape_asked_for(self):
        answer = self.gql("""mutation Set($input: InventorySetQuantitiesInput!) {
            result: inventorySetQuantities(input: $input) {
              group: inventoryAdjustmentGroup { __typename reason
                changes(quantityNames: ["available"]) { name delta quantityAfterChange item { sku } } }
              userErrors { code }
            } }""", {"input": set_input(quantity(101, 1, 7, compareQuantity=10))})
        self.assertEqual(answer["data"], {"result": {"group": {
            "__typename": "InventoryAdjustmentGroup", "reason": "correction",
            "changes": [{"name": "available", "delta": -3, "quantityAfterChange": 7, "item": {"sku": "MUG-RED"}}]},
            "userErrors": []}})
        self.assertEqual(level_state(101, 1)["available"], 7)

    def test_available_and_on_hand_move_together(self):
        answer = self.set_quantities(quantity(102, 1, 9, compareQuantity=7), name="on_hand")
        changes = self.payload(answer)["inventoryAdjustmentGroup"]["changes"]
        self.assertEqual([(c["name"], c["delta"], c["quantityAfterChange"]) for c in changes],
                         [("on_hand", 2, 9), ("available", 2, 7)])
        level = level_state(102, 1)
        self.assertEqual((level["available"], level["committed"], level["on_hand"]), (7, 2, 9))

    def test_a_stale_compare_quantity_applies_nothing(self):
        answer = self.set_quantities(quantity(101, 1, 1, compareQuantity=10), quantity(102, 1, 1, compareQuantity=4))
        payload = self.payload(answer)
        self.assertIsNone(payload["inventoryAdjustmentGroup"])
        self.assertEqual(payload["userErrors"][0]["code"], "COMPARE_QUANTITY_STALE")
        self.assertEqual(payload["userErrors"][0]["field"], ["input", "quantities", "1", "compareQuantity"])
        self.assertEqual((level_state(101, 1)["available"], level_state(102, 1)["available"]), (10, 5))

    def test_compare_quantity_is_required_unless_ignored(self):
        self.assertEqual(self.user_error_codes(self.set_quantities(quantity(101, 1, 1))), ["COMPARE_QUANTITY_REQUIRED"])
        answer = self.set_quantities(quantity(101, 1, 1), ignoreCompareQuantity=True)
        self.assertEqual(self.user_error_codes(answer), [])
        self.assertEqual(level_state(101, 1)["available"], 1)

    def test_the_user_errors_of_each_bad_quantity(self):
        control("level", {"inventoryItemId": ITEM % 103, "locationId": LOCATION % 1, "stocked": False})
        cases = [
            (quantity(999, 1, 1, compareQuantity=0), "INVALID_INVENTORY_ITEM", "inventoryItemId"),
            (quantity(101, 9, 1, compareQuantity=0), "INVALID_LOCATION", "locationId"),
            (dict(quantity(101, 1, 1, compareQuantity=0), inventoryItemId="gid://shopify/Product/101"),
             "INVALID_INVENTORY_ITEM", "inventoryItemId"),
            (quantity(104, 1, 1, compareQuantity=0), "ITEM_NOT_STOCKED_AT_LOCATION", "locationId"),
            (quantity(103, 1, 1, compareQuantity=0), "ITEM_NOT_STOCKED_AT_LOCATION", "locationId"),
            (quantity(105, 1, 1, compareQuantity=1), "NON_MUTABLE_INVENTORY_ITEM", "inventoryItemId"),
            (quantity(101, 1, -1, compareQuantity=10), "INVALID_QUANTITY_NEGATIVE", "quantity"),
            (quantity(101, 1, 1_000_000_001, compareQuantity=10), "INVALID_QUANTITY_TOO_HIGH", "quantity"),
        ]
        for entry, code, field in cases:
            payload = self.payload(self.set_quantities(entry))
            self.assertEqual([(e["code"], e["field"]) for e in payload["userErrors"]],
                             [(code, ["input", "quantities", "0", field])], entry)
        self.assertEqual(request_log()[-1]["applied"], [])

    def test_the_user_errors_of_the_input_as_a_whole(self):
        answer = self.gql(SET_MUTATION, {"input": dict(set_input(quantity(101, 1, 1, compareQuantity=10)),
                                                       name="committed", reason="because")})
        self.assertEqual(sorted(self.user_error_codes(answer)), ["INVALID_NAME", "INVALID_REASON"])
        duplicate = self.set_quantities(quantity(101, 1, 1, compareQuantity=10),
                                        quantity(101, 1, 2, compareQuantity=10))
        self.assertEqual(self.user_error_codes(duplicate), ["NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"])
        self.assertEqual(level_state(101, 1)["available"], 10)

    def test_at_most_250_quantities_per_call(self):
        seed = {"locations": [{"id": 1}], "levels": [{"item": n, "location": 1, "available": 1} for n in range(1, 252)]}
        control("seed", seed)
        many = [quantity(n, 1, 2, compareQuantity=1) for n in range(1, 252)]
        answer = self.gql(SET_MUTATION, {"input": set_input(*many)})
        self.assertEqual(self.error_codes(answer), ["MAX_INPUT_SIZE_EXCEEDED"])
        self.assertEqual(level_state(1, 1)["available"], 1)
        answer = self.gql(SET_MUTATION, {"input": set_input(*many[:250])})
        self.assertEqual(len(self.payload(answer)["inventoryAdjustmentGroup"]["changes"]), 500)
        self.assertEqual((level_state(250, 1)["available"], level_state(251, 1)["available"]), (2, 1))

    def test_setting_the_current_quantity_changes_nothing(self):
        payload = self.payload(self.set_quantities(quantity(101, 1, 10, compareQuantity=10)))
        self.assertEqual(payload, {"inventoryAdjustmentGroup": None, "userErrors": []})

    def test_partial_apply_when_configured(self):
        control("config", {"partial_apply": True})
        answer = self.set_quantities(quantity(101, 1, 1, compareQuantity=10), quantity(102, 1, 1, compareQuantity=4))
        self.assertEqual(self.user_error_codes(answer), ["COMPARE_QUANTITY_STALE"])
        self.assertEqual((level_state(101, 1)["available"], level_state(102, 1)["available"]), (1, 5))


class VersionRules(StandinTest):
    def test_2026_01_change_from_quantity(self):
        stale = self.set_quantities(quantity(101, 1, 3, changeFromQuantity=9), version="2026-01")
        self.assertEqual([(e["code"], e["field"]) for e in self.payload(stale)["userErrors"]],
                         [("CHANGE_FROM_QUANTITY_STALE", ["input", "quantities", "0", "changeFromQuantity"])])
        self.assertEqual(self.user_error_codes(self.set_quantities(quantity(101, 1, 3, changeFromQuantity=10),
                                                                   version="2026-01")), [])
        self.assertEqual(self.user_error_codes(self.set_quantities(quantity(101, 1, 4, changeFromQuantity=None),
                                                                   version="2026-01")), [])
        self.assertEqual(self.user_error_codes(self.set_quantities(quantity(101, 1, 5, compareQuantity=4),
                                                                   version="2026-01")), [])
        self.assertEqual(self.user_error_codes(self.set_quantities(quantity(101, 1, 6), version="2026-01")),
                         ["COMPARE_QUANTITY_REQUIRED"])
        self.assertEqual(level_state(101, 1)["available"], 5)

    def test_2026_04_requires_change_from_quantity_on_every_quantity(self):
        answer = self.gql(SET_IDEMPOTENT, {"key": "k1", "input": set_input(
            quantity(101, 1, 3, changeFromQuantity=10), quantity(102, 1, 3))}, version="2026-04")
        self.assertEqual(self.error_codes(answer), ["INVALID_FIELD_ARGUMENTS"])
        self.assertIn("changeFromQuantity", answer["errors"][0]["message"])
        self.assertEqual(level_state(101, 1)["available"], 10)
        answer = self.gql(SET_IDEMPOTENT, {"key": "k2", "input": set_input(
            quantity(101, 1, 3, changeFromQuantity=10), quantity(102, 1, 3, changeFromQuantity=None))},
            version="2026-04")
        self.assertEqual(self.user_error_codes(answer), [])
        self.assertEqual((level_state(101, 1)["available"], level_state(102, 1)["available"]), (3, 3))

    def test_2026_04_explicit_null_literal_opts_out(self):
        document = ('mutation { inventorySetQuantities(input: {name: "available", reason: "correction", '
                    'quantities: [{inventoryItemId: "gid://shopify/InventoryItem/101", '
                    'locationId: "gid://shopify/Location/1", quantity: 2, changeFromQuantity: null}]}) '
                    '@idempotent(key: "%s") { userErrors { code } } }')
        self.assertEqual(self.user_error_codes(self.gql(document % "n1", version="2026-04")), [])
        self.assertEqual(level_state(101, 1)["available"], 2)
        omitted = document.replace(", changeFromQuantity: null", "")
        self.assertEqual(self.error_codes(self.gql(omitted % "n2", version="2026-04")), ["INVALID_FIELD_ARGUMENTS"])

    def test_2026_04_requires_the_idempotent_directive_by_default(self):
        answer = self.set_quantities(quantity(101, 1, 3, changeFromQuantity=10), version="2026-04")
        self.assertEqual(self.error_codes(answer), ["BAD_REQUEST"])
        control("config", {"idempotent_required_from": None})
        answer = self.set_quantities(quantity(101, 1, 3, changeFromQuantity=10), version="2026-04")
        self.assertEqual(self.user_error_codes(answer), [])


class Idempotency(StandinTest):
    def send(self, key, *quantities, version="2026-01", **options):
        return self.gql(SET_IDEMPOTENT, {"key": key, "input": set_input(*quantities)}, version, **options)

    def test_the_same_key_and_input_replays_without_applying_again(self):
        first = self.payload(self.send("key-1", quantity(101, 1, 3, changeFromQuantity=10)))
        control("sale", {"inventoryItemId": ITEM % 101, "locationId": LOCATION % 1, "quantity": 1})
        again = self.payload(self.send("key-1", quantity(101, 1, 3, changeFromQuantity=10)))
        self.assertEqual(again, first)
        self.assertEqual(level_state(101, 1)["available"], 2)
        log = request_log()
        self.assertEqual([(e["replayed"], len(e["applied"])) for e in log], [(False, 2), (True, 0)])
        self.assertEqual(log[1]["idempotencyKeys"], ["key-1"])

    def test_the_same_key_with_other_input_is_a_mismatch(self):
        self.send("key-2", quantity(101, 1, 3, changeFromQuantity=10))
        answer = self.send("key-2", quantity(101, 1, 4, changeFromQuantity=3))
        self.assertEqual(self.user_error_codes(answer), ["IDEMPOTENCY_KEY_PARAMETER_MISMATCH"])
        self.assertEqual(level_state(101, 1)["available"], 3)

    def test_a_concurrent_request_with_the_key_in_flight(self):
        control("faults", {"kind": "delay", "seconds": 1.0, "match": "mutation"})
        results = {}
        first = threading.Thread(target=lambda: results.setdefault(
            "first", self.send("key-3", quantity(101, 1, 3, changeFromQuantity=10))))
        first.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "key-3" not in control("state", method="GET")["idempotencyKeys"]:
            time.sleep(0.02)
        second = self.send("key-3", quantity(101, 1, 3, changeFromQuantity=10))
        first.join(timeout=10)
        self.assertEqual(self.user_error_codes(second), ["IDEMPOTENCY_CONCURRENT_REQUEST"])
        self.assertEqual(self.user_error_codes(results["first"]), [])
        third = self.send("key-3", quantity(101, 1, 3, changeFromQuantity=10))
        self.assertEqual(self.payload(third), self.payload(results["first"]))
        self.assertEqual(sum(len(e["applied"]) for e in request_log()), 2)

    def test_a_failed_attempt_burns_its_key_from_2026_04(self):
        control("faults", {"kind": "http_error", "status": 500, "fail_idempotency_key": True})
        status, _, _ = graphql_request(SET_IDEMPOTENT, {"key": "key-4", "input": set_input(
            quantity(101, 1, 3, changeFromQuantity=10))}, version="2026-04")
        self.assertEqual(status, 500)
        answer = self.send("key-4", quantity(101, 1, 3, changeFromQuantity=10), version="2026-04")
        self.assertEqual(self.user_error_codes(answer), ["IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"])
        answer = self.send("key-5", quantity(101, 1, 3, changeFromQuantity=10), version="2026-04")
        self.assertEqual(self.user_error_codes(answer), [])

    def test_a_key_is_forgotten_after_its_retention(self):
        control("clock", {"freeze": True})
        control("config", {"idempotency_ttl_seconds": 60})
        self.send("key-6", quantity(101, 1, 3, changeFromQuantity=None))
        control("level", {"inventoryItemId": ITEM % 101, "locationId": LOCATION % 1, "available": 8})
        control("clock", {"advance": 59})
        self.send("key-6", quantity(101, 1, 3, changeFromQuantity=None))
        self.assertEqual(level_state(101, 1)["available"], 8)
        control("clock", {"advance": 2})
        self.send("key-6", quantity(101, 1, 3, changeFromQuantity=None))
        self.assertEqual(level_state(101, 1)["available"], 3)


class Reads(StandinTest):
    def read(self, item, location, version="2025-01"):
        return self.gql(READ_LEVEL, {"item": ITEM % item, "location": LOCATION % location}, version)["data"]

    def test_a_level_in_the_real_shape(self):
        data = self.read(102, 1)
        self.assertEqual(data["inventoryItem"]["sku"], "MUG-BLUE")
        level = data["inventoryItem"]["inventoryLevel"]
        self.assertRegex(level["id"], r"^gid://shopify/InventoryLevel/\d+\?inventory_item_id=102$")
        self.assertEqual(level["quantities"], [{"name": "available", "quantity": 5}, {"name": "on_hand", "quantity": 7},
                                               {"name": "committed", "quantity": 2}])

    def test_an_external_sale_shows_in_the_next_read(self):
        after = control("sale", {"inventoryItemId": ITEM % 101, "locationId": LOCATION % 1, "quantity": 3})
        self.assertEqual((after["available"], after["committed"], after["on_hand"]), (7, 3, 10))
        quantities = self.read(101, 1, version="2026-04")["inventoryItem"]["inventoryLevel"]["quantities"]
        self.assertEqual([q["quantity"] for q in quantities], [7, 10, 3])
        control("sale", {"inventoryItemId": ITEM % 101, "locationId": LOCATION % 1, "quantity": 8, "fulfilled": True})
        self.assertEqual(level_state(101, 1)["available"], -1)
        answer = self.set_quantities(quantity(101, 1, 0, compareQuantity=7))
        self.assertEqual(self.user_error_codes(answer), ["COMPARE_QUANTITY_STALE"])

    def test_unknown_and_unstocked_read_as_null(self):
        self.assertIsNone(self.read(104, 1)["inventoryItem"]["inventoryLevel"])
        self.assertIsNone(self.read(999, 1)["inventoryItem"])
        control("item", {"inventoryItemId": ITEM % 101, "exists": False})
        self.assertIsNone(self.read(101, 1)["inventoryItem"])

    def test_nodes_reads_many_items_at_once(self):
        data = self.gql("""query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
            ... on InventoryItem { sku inventoryLevel(locationId: "gid://shopify/Location/2") {
              quantities(names: ["available"]) { quantity } } } } }""",
                        {"ids": [ITEM % 101, ITEM % 102, "gid://shopify/Product/1"]})["data"]
        self.assertEqual(data["nodes"], [
            {"__typename": "InventoryItem", "id": ITEM % 101, "sku": "MUG-RED",
             "inventoryLevel": {"quantities": [{"quantity": 4}]}},
            {"__typename": "InventoryItem", "id": ITEM % 102, "sku": "MUG-BLUE", "inventoryLevel": None},
            None])

    def test_a_location_pages_through_its_levels(self):
        page = """query($after: String) { location(id: "gid://shopify/Location/1") {
            inventoryLevels(first: 2, after: $after) { edges { cursor node { item { sku } } }
              pageInfo { hasNextPage endCursor } } } }"""
        skus, after = [], None
        for _ in range(5):
            levels = self.gql(page, {"after": after})["data"]["location"]["inventoryLevels"]
            skus.extend(edge["node"]["item"]["sku"] for edge in levels["edges"])
            after = levels["pageInfo"]["endCursor"]
            if not levels["pageInfo"]["hasNextPage"]:
                break
        self.assertEqual(skus, ["MUG-RED", "MUG-BLUE", "CAP", "BUNDLE"])

    def test_an_inventory_level_by_id(self):
        level_id = self.read(101, 2)["inventoryItem"]["inventoryLevel"]["id"]
        data = self.gql("query($id: ID!) { inventoryLevel(id: $id) { location { name } item { sku } "
                        "quantities(names: [\"available\"]) { quantity } } }", {"id": level_id})["data"]
        self.assertEqual(data["inventoryLevel"], {"location": {"name": "Warehouse"}, "item": {"sku": "MUG-RED"},
                                                  "quantities": [{"quantity": 4}]})

    def test_an_invalid_quantity_name_is_a_field_error(self):
        answer = self.gql('{ inventoryItem(id: "gid://shopify/InventoryItem/101") { inventoryLevel(locationId: '
                          '"gid://shopify/Location/1") { quantities(names: ["availble"]) { quantity } } } }')
        self.assertEqual([e["extensions"]["code"] for e in answer["errors"]], ["INVALID_QUANTITY_NAME"])


class CostBucket(StandinTest):
    def test_the_bucket_throttles_and_restores_with_the_clock(self):
        control("clock", {"freeze": True})
        control("config", {"bucket_capacity": 30, "restore_rate": 10})
        control("bucket", {"currentlyAvailable": 30})
        for units, points_left in ((1, 20), (2, 10), (0, 0)):
            cost = self.set_quantities(quantity(101, 1, units), ignoreCompareQuantity=True)["extensions"]["cost"]
            self.assertEqual(cost["throttleStatus"], {"maximumAvailable": 30.0, "currentlyAvailable": points_left,
                                                      "restoreRate": 10.0})
            self.assertEqual((cost["requestedQueryCost"], cost["actualQueryCost"]), (10, 10))
        throttled = self.set_quantities(quantity(101, 1, 5), ignoreCompareQuantity=True)
        self.assertEqual(throttled["errors"], [{"message": "Throttled", "extensions": {
            "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}])
        self.assertIsNone(throttled["extensions"]["cost"]["actualQueryCost"])
        self.assertEqual(level_state(101, 1)["available"], 0)
        control("clock", {"advance": 0.5})
        self.assertIn("errors", self.set_quantities(quantity(101, 1, 5), ignoreCompareQuantity=True))
        control("clock", {"advance": 0.5})
        answer = self.set_quantities(quantity(101, 1, 5), ignoreCompareQuantity=True)
        self.assertEqual(self.user_error_codes(answer), [])
        self.assertEqual(level_state(101, 1)["available"], 5)

    def test_throttled_with_429_and_retry_after(self):
        control("clock", {"freeze": True})
        control("config", {"throttle_status": 429, "restore_rate": 4})
        control("bucket", {"currentlyAvailable": 2})
        status, headers, body = graphql_request(SET_MUTATION, {"input": set_input(quantity(101, 1, 1))})
        self.assertEqual(status, 429)
        self.assertEqual(headers["Retry-After"], "2")
        self.assertEqual(json.loads(body)["errors"][0]["extensions"]["code"], "THROTTLED")

    def test_per_quantity_cost_and_query_cost(self):
        control("config", {"per_quantity_cost": 2})
        cost = self.set_quantities(quantity(101, 1, 1), quantity(102, 1, 1), ignoreCompareQuantity=True)
        self.assertEqual(cost["extensions"]["cost"]["requestedQueryCost"], 14)
        read = self.gql('{ location(id: "gid://shopify/Location/1") { name inventoryLevels(first: 5) '
                        '{ nodes { id item { sku } } } } }')
        self.assertEqual(read["extensions"]["cost"]["requestedQueryCost"], 1 + 2 + 5 * 2)

    def test_a_query_over_the_single_query_limit(self):
        control("config", {"max_query_cost": 100})
        answer = self.gql('{ location(id: "gid://shopify/Location/1") { inventoryLevels(first: 250) '
                          '{ nodes { id } } } }')
        self.assertEqual(self.error_codes(answer), ["MAX_COST_EXCEEDED"])
        self.assertEqual(answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"], 2000)


class Faults(StandinTest):
    def test_server_errors_then_recovery(self):
        control("faults", {"kind": "http_error", "status": 503, "count": 2})
        body = {"input": set_input(quantity(101, 1, 3, compareQuantity=10))}
        self.assertEqual([graphql_request(SET_MUTATION, body)[0] for _ in range(3)], [503, 503, 200])
        self.assertEqual(level_state(101, 1)["available"], 3)
        self.assertEqual([e["fault"] for e in request_log()], ["http_error", "http_error", None])

    def test_a_server_error_after_the_change_was_applied(self):
        control("faults", {"kind": "http_error", "status": 502, "apply": True})
        status, _, _ = graphql_request(SET_MUTATION, {"input": set_input(quantity(101, 1, 3, compareQuantity=10))})
        self.assertEqual(status, 502)
        self.assertEqual(level_state(101, 1)["available"], 3)

    def test_a_connection_reset(self):
        control("faults", {"kind": "reset"})
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        variables = {"input": set_input(quantity(101, 1, 3, compareQuantity=10))}
        body = json.dumps({"query": SET_MUTATION, "variables": variables})
        connection.request("POST", "/admin/api/2025-01/graphql.json", body,
                           {"X-Shopify-Access-Token": TOKEN, "Content-Type": "application/json"})
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            connection.getresponse().read()
        connection.close()
        self.assertEqual(level_state(101, 1)["available"], 10)
        control("faults", {"kind": "reset", "apply": True})
        with self.assertRaises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            graphql_request(SET_MUTATION, {"input": set_input(quantity(101, 1, 3, compareQuantity=10))})
        self.assertEqual(level_state(101, 1)["available"], 3)
        self.assertEqual([e.get("outcome") for e in request_log()], ["reset", "reset"])

    def test_a_malformed_json_body(self):
        control("faults", {"kind": "malformed"})
        status, _, body = graphql_request("{ __typename }")
        self.assertEqual(status, 200)
        with self.assertRaises(ValueError):
            json.loads(body)

    def test_a_timeout_after_the_change_was_applied_then_an_idempotent_retry(self):
        control("faults", {"kind": "timeout", "seconds": 3})
        variables = {"key": "retry-1", "input": set_input(quantity(101, 1, 3, changeFromQuantity=10))}
        started = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError, urllib.error.URLError)):
            graphql_request(SET_IDEMPOTENT, variables, version="2026-01", timeout=0.5)
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(level_state(101, 1)["available"], 3)
        retry = self.gql(SET_IDEMPOTENT, variables, version="2026-01")
        self.assertEqual(self.user_error_codes(retry), [])
        self.assertEqual(level_state(101, 1)["available"], 3)
        self.assertEqual([(e.get("outcome"), e["replayed"], len(e["applied"])) for e in request_log()],
                         [("hang", False, 2), (None, True, 0)])

    def test_a_throttled_burst_applies_nothing(self):
        control("faults", {"kind": "throttle", "count": 2, "status": 429})
        body = {"input": set_input(quantity(101, 1, 3, compareQuantity=10))}
        statuses = [graphql_request(SET_MUTATION, body)[0] for _ in range(3)]
        self.assertEqual(statuses, [429, 429, 200])
        self.assertEqual(level_state(101, 1)["available"], 3)

    def test_a_fault_for_mutations_lets_queries_through(self):
        control("faults", {"kind": "http_error", "match": "mutation"})
        self.gql("{ __typename }")
        status, _, _ = graphql_request(SET_MUTATION, {"input": set_input(quantity(101, 1, 3, compareQuantity=10))})
        self.assertEqual(status, 503)

    def test_listings_changed_under_the_worker(self):
        control("level", {"inventoryItemId": ITEM % 101, "locationId": LOCATION % 2, "stocked": False})
        control("location", {"locationId": LOCATION % 1, "active": False})
        answer = self.set_quantities(quantity(101, 2, 1, compareQuantity=4), quantity(102, 1, 1, compareQuantity=5))
        self.assertEqual(self.user_error_codes(answer), ["ITEM_NOT_STOCKED_AT_LOCATION", "INVALID_LOCATION"])
        control("item", {"inventoryItemId": ITEM % 101, "exists": False})
        answer = self.set_quantities(quantity(101, 2, 1, compareQuantity=4))
        self.assertEqual(self.user_error_codes(answer), ["INVALID_INVENTORY_ITEM"])

    def test_a_bad_fault_is_refused(self):
        status, _, body = http_request("POST", "/_control/faults", json.dumps({"kind": "gremlins"}).encode())
        self.assertEqual(status, 400)
        self.assertIn("kind", json.loads(body)["error"])


class AdjustQuantities(StandinTest):
    ADJUST = """mutation($input: InventoryAdjustQuantitiesInput!) { inventoryAdjustQuantities(input: $input) {
        inventoryAdjustmentGroup { changes { name delta quantityAfterChange } } userErrors { code field } } }"""

    def adjust(self, version="2025-01", name="available", **change):
        change = dict({"inventoryItemId": ITEM % 101, "locationId": LOCATION % 1}, **change)
        return self.gql(self.ADJUST, {"input": {"name": name, "reason": "correction", "changes": [change]}}, version)

    def test_a_delta_and_its_rules(self):
        payload = self.payload(self.adjust(delta=-4), "inventoryAdjustQuantities")
        self.assertEqual(payload["inventoryAdjustmentGroup"]["changes"][0],
                         {"name": "available", "delta": -4, "quantityAfterChange": 6})
        self.assertEqual(self.user_error_codes(self.adjust(name="on_hand", delta=1), "inventoryAdjustQuantities"),
                         ["INVALID_QUANTITY_DOCUMENT"])
        stale = self.adjust(version="2026-01", delta=1, changeFromQuantity=10)
        self.assertEqual(self.user_error_codes(stale, "inventoryAdjustQuantities"), ["CHANGE_FROM_QUANTITY_STALE"])
        self.assertEqual(level_state(101, 1)["available"], 6)


class RequestLogAndState(StandinTest):
    def test_each_request_is_logged_as_a_json_line(self):
        self.set_quantities(quantity(101, 1, 3, compareQuantity=10))
        self.set_quantities(quantity(101, 1, 4, compareQuantity=10))
        first, second = request_log()
        self.assertEqual(first["version"], "2025-01")
        self.assertEqual((first["operation"], first["operationName"], first["fields"]),
                         ("mutation", "Set", ["inventorySetQuantities"]))
        self.assertEqual(first["variables"]["input"]["quantities"][0]["quantity"], 3)
        self.assertEqual((first["status"], first["userErrors"]), (200, []))
        self.assertEqual(first["applied"], [
            {"item": ITEM % 101, "location": LOCATION % 1, "name": "available", "delta": -7, "quantityAfterChange": 3},
            {"item": ITEM % 101, "location": LOCATION % 1, "name": "on_hand", "delta": -7, "quantityAfterChange": 3}])
        self.assertEqual(second["userErrors"], ["COMPARE_QUANTITY_STALE"])
        self.assertIsInstance(first["time"], float)
        since = control("log?since=%d" % first["seq"], method="GET").decode().splitlines()
        self.assertEqual([json.loads(line)["seq"] for line in since], [second["seq"]])
        with open(REQUEST_LOG_PATH) as file:
            mirrored = [json.loads(line) for line in file]
        self.assertEqual(mirrored[-2:], [first, second])

    def test_state_shows_listings_clock_bucket_and_config(self):
        state = control("state", method="GET")
        self.assertEqual(len(state["levels"]), 5)
        self.assertEqual(state["bucket"]["maximumAvailable"], 2000.0)
        self.assertEqual(state["config"]["tokens"], [TOKEN])
        self.assertFalse(state["clock"]["frozen"])

    def test_a_bad_setting_is_refused(self):
        status, _, body = http_request("POST", "/_control/config", json.dumps({"throttle_status": 418}).encode())
        self.assertEqual(status, 400)
        self.assertIn("throttle_status", json.loads(body)["error"])


if __name__ == "__main__":
    unittest.main()


ORDERS_QUERY = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id legacyResourceId createdAt updatedAt cancelledAt sourceName
      physicalLocation { id } lineItems(first: 20) { pageInfo { hasNextPage } nodes { id sku quantity } } } }
  }
}"""


class WebhookReceiver:
    """A local HTTP server that records what the stand-in delivers and answers `status`."""

    def __init__(self, status=200):
        import http.server
        receiver = self
        self.status = status
        self.received = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/webhooks/shopify" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def settle(timeout=10):
    """The webhook status once nothing is pending (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        status = control("webhooks", method="GET")
        if status["pending"] == 0 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


class Orders(StandinTest):
    def test_an_order_lowers_available_and_raises_committed(self):
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 3}, {"sku": None, "quantity": 1}]})
        self.assertEqual(order["source_name"], "web")
        self.assertEqual([line["quantity"] for line in order["line_items"]], [3, 1])
        level = level_state(101, 1)
        self.assertEqual((level["available"], level["committed"], level["on_hand"]), (7, 3, 10))
        self.assertEqual(level_state(101, 2)["available"], 4)

    def test_a_pos_order_draws_on_its_location(self):
        order = control("order", {"source_name": "pos", "location_id": 2,
                                  "line_items": [{"sku": "MUG-RED", "quantity": 1}]})
        self.assertEqual(order["location_id"], 2)
        self.assertEqual(level_state(101, 2)["available"], 3)
        self.assertEqual(level_state(101, 1)["available"], 10)

    def test_cancel_and_refunds_give_units_back_once(self):
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 4}]})
        line = order["line_items"][0]["id"]
        refund = control("refund", {"id": order["id"], "lines": [
            {"line_item_id": line, "quantity": 1, "restock_type": "cancel"},
            {"line_item_id": line, "quantity": 1, "restock_type": "no_restock"}]})
        self.assertEqual([r["restock_type"] for r in refund["refund_line_items"]], ["cancel", "no_restock"])
        self.assertEqual(refund["order_id"], order["id"])
        self.assertEqual(level_state(101, 1)["available"], 7)
        cancelled = control("cancel", {"id": order["id"]})
        self.assertIsNotNone(cancelled["cancelled_at"])
        level = level_state(101, 1)
        self.assertEqual((level["available"], level["committed"]), (10, 0))
        status, _, _ = http_request("POST", "/_control/cancel", json.dumps({"id": order["id"]}).encode())
        self.assertEqual(status, 400)

    def test_a_cancellation_refunds_what_the_lines_still_hold(self):
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 4},
                                                 {"sku": "CAP", "quantity": 2}]})
        mug, cap = (l["id"] for l in order["line_items"])
        control("refund", {"id": order["id"], "lines": [
            {"line_item_id": mug, "quantity": 1, "restock_type": "return"}]})
        cancelled = control("cancel", {"id": order["id"]})
        self.assertEqual(len(cancelled["refunds"]), 2)
        refund = cancelled["refunds"][1]
        self.assertEqual(refund["order_id"], order["id"])
        self.assertEqual([(r["line_item_id"], r["quantity"], r["restock_type"])
                          for r in refund["refund_line_items"]], [(mug, 3, "cancel"), (cap, 2, "cancel")])
        self.assertEqual(level_state(101, 1)["available"], 10)
        self.assertEqual([l["current_quantity"] for l in cancelled["line_items"]], [0, 0])
        status, _, body = graphql_request(REFUNDS_QUERY, {"id": "gid://shopify/Order/%d" % order["id"]})
        self.assertEqual(status, 200)
        node = json.loads(body)["data"]["order"]
        lines = [(n["lineItem"]["id"], n["quantity"], n["restockType"])
                 for n in node["refunds"][1]["refundLineItems"]["nodes"]]
        self.assertEqual(node["refunds"][1]["legacyResourceId"], str(refund["id"]))
        self.assertEqual(lines, [("gid://shopify/LineItem/%d" % mug, 3, "CANCEL"),
                                 ("gid://shopify/LineItem/%d" % cap, 2, "CANCEL")])

    def test_a_cancellation_without_restock_or_refund(self):
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 2}]})
        cancelled = control("cancel", {"id": order["id"], "restock": False})
        self.assertEqual([r["restock_type"] for r in cancelled["refunds"][0]["refund_line_items"]],
                         ["no_restock"])
        self.assertEqual(level_state(101, 1)["available"], 8)
        other = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 1}]})
        cancelled = control("cancel", {"id": other["id"], "refund": False})
        self.assertEqual(cancelled["refunds"], [])
        self.assertEqual(level_state(101, 1)["available"], 8)
        for spec in ({"id": order["id"] + 2, "refund": 1}, {"id": order["id"] + 2, "restock": "yes"}):
            status, _, _ = http_request("POST", "/_control/cancel", json.dumps(spec).encode())
            self.assertEqual(status, 400)

    def test_bad_orders_are_refused(self):
        for spec in ({}, {"line_items": []}, {"line_items": [{"sku": "X", "quantity": 0}]},
                     {"line_items": [{"sku": 5, "quantity": 1}]}, {"location_id": "gid://shopify/Item/1",
                                                                  "line_items": [{"sku": "X"}]}):
            status, _, body = http_request("POST", "/_control/order", json.dumps(spec).encode())
            self.assertEqual(status, 400, (spec, body))
        status, _, _ = http_request("POST", "/_control/refund", json.dumps({"id": 1, "lines": []}).encode())
        self.assertEqual(status, 400)

    def test_rest_times_are_in_the_shops_zone_and_graphql_times_in_utc(self):
        control("clock", {"now": 1795000000})
        order = control("order", {"line_items": [{"sku": "CAP", "quantity": 1}]})
        self.assertTrue(order["created_at"].endswith("-05:00"), order["created_at"])
        node = self.gql(ORDERS_QUERY, {"first": 5})["data"]["orders"]["edges"][0]["node"]
        self.assertEqual(node["createdAt"], "2026-11-18T11:06:40Z")
        self.assertEqual(order["created_at"], "2026-11-18T06:06:40-05:00")


class OrdersQuery(StandinTest):
    def test_the_fields_the_gateway_reads(self):
        order = control("order", {"source_name": "pos", "location_id": 2,
                                  "line_items": [{"sku": "MUG-RED", "quantity": 2}]})
        answer = self.gql(ORDERS_QUERY, {"first": 10})
        self.assertNotIn("errors", answer)
        node = answer["data"]["orders"]["edges"][0]["node"]
        self.assertEqual(node["id"], "gid://shopify/Order/%d" % order["id"])
        self.assertEqual(node["legacyResourceId"], str(order["id"]))
        self.assertEqual(node["sourceName"], "pos")
        self.assertEqual(node["physicalLocation"], {"id": LOCATION % 2})
        self.assertIsNone(node["cancelledAt"])
        self.assertEqual(node["lineItems"]["nodes"],
                         [{"id": "gid://shopify/LineItem/%d" % order["line_items"][0]["id"], "sku": "MUG-RED",
                           "quantity": 2}])

    def test_line_properties_are_custom_attributes(self):
        order = control("order", {"line_items": [
            {"sku": "MUG-RED", "quantity": 1, "properties": [{"name": "_skuld_hold", "value": "7001"}]},
            {"sku": "CAP", "quantity": 1}]})
        self.assertEqual(order["line_items"][0]["properties"], [{"name": "_skuld_hold", "value": "7001"}])
        self.assertEqual(order["line_items"][1]["properties"], [])
        answer = self.gql(ORDERS_QUERY.replace("nodes { id sku quantity }",
                                               "nodes { id sku quantity customAttributes { key value } }"),
                          {"first": 10})
        self.assertNotIn("errors", answer)
        lines = answer["data"]["orders"]["edges"][0]["node"]["lineItems"]["nodes"]
        self.assertEqual([line["customAttributes"] for line in lines],
                         [[{"key": "_skuld_hold", "value": "7001"}], []])
        with self.assertRaises(AssertionError):
            control("order", {"line_items": [{"sku": "CAP", "quantity": 1, "properties": [{"value": "x"}]}]})

    def test_a_refund_with_an_exchange_carries_its_return_and_exchange_lines(self):
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 2}]})
        line = order["line_items"][0]["id"]
        refund = control("refund", {"id": order["id"], "lines": [{"line_item_id": line, "quantity": 1}],
                                    "exchange": [{"sku": "CAP", "quantity": 1}]})
        exchange, = refund["return"]["exchange_line_items"]
        self.assertEqual((exchange["quantity"], exchange["line_item"]["sku"]), (1, "CAP"))
        self.assertNotEqual(exchange["line_item"]["id"], line)
        plain = control("refund", {"id": order["id"], "lines": [{"line_item_id": line, "quantity": 1}]})
        self.assertNotIn("return", plain)
        with self.assertRaises(AssertionError):
            control("refund", {"id": order["id"], "lines": [{"line_item_id": line, "quantity": 1}],
                               "exchange": [{"sku": "CAP", "quantity": 0}]})

    def test_pages_sorted_by_updated_at_with_stable_cursors(self):
        control("clock", {"freeze": True, "now": 1790000000})
        ids = []
        for n in range(5):
            ids.append(control("order", {"line_items": [{"sku": "CAP", "quantity": 1}]})["id"])
            control("clock", {"advance": 10})
        control("cancel", {"id": ids[0]})          # now the latest updated
        seen, after = [], None
        for _ in range(10):
            page = self.gql(ORDERS_QUERY, {"first": 2, "after": after})["data"]["orders"]
            seen.extend(int(e["node"]["legacyResourceId"]) for e in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        self.assertEqual(seen, ids[1:] + ids[:1])

    def test_the_updated_at_filter(self):
        control("clock", {"freeze": True, "now": 1790000000})
        first = control("order", {"line_items": [{"sku": "CAP", "quantity": 1}]})["id"]
        control("clock", {"advance": 100})
        second = control("order", {"line_items": [{"sku": "CAP", "quantity": 1}]})["id"]
        t0 = "2026-09-21T14:13:20Z"            # 1790000000
        t1 = "2026-09-21T14:15:00Z"            # 1790000100
        for query, expected in (("updated_at:>'%s'" % t0, [second]),
                                ("updated_at:>='%s'" % t0, [first, second]),
                                ("updated_at:<%s" % t1, [first]),
                                ("created_at:>'%s' AND updated_at:<'2030-01-01T00:00:00Z'" % t0, [second])):
            edges = self.gql(ORDERS_QUERY, {"first": 10, "query": query})["data"]["orders"]["edges"]
            self.assertEqual([int(e["node"]["legacyResourceId"]) for e in edges], expected, query)

    def test_an_unknown_search_term_and_a_bad_cursor_are_errors(self):
        answer = self.gql(ORDERS_QUERY, {"first": 10, "query": "status:open"})
        self.assertEqual(answer["errors"][0]["extensions"]["code"], "INVALID_SEARCH_QUERY")
        answer = self.gql(ORDERS_QUERY, {"first": 10, "after": "not-a-cursor!"})
        self.assertEqual(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST")
        answer = self.gql(ORDERS_QUERY, {"first": 251})
        self.assertIn("errors", answer)

    def test_the_read_side_is_validated(self):
        answer = self.gql("{ orders(first: 1) { nodes { id lineItemz { id } } } }")
        self.assertEqual(self.error_codes(answer), ["undefinedField"])
        answer = self.gql("{ orders(first: 1, sortKey: SHIPPED_AT) { nodes { id } } }")
        self.assertEqual(self.error_codes(answer), ["argumentLiteralsIncompatible"])

    def test_the_query_is_charged(self):
        answer = self.gql(ORDERS_QUERY, {"first": 10})
        self.assertGreater(answer["extensions"]["cost"]["requestedQueryCost"], 100)
        self.assertLess(answer["extensions"]["cost"]["requestedQueryCost"], 1000)


REFUNDS_QUERY = """query($id: ID!) { order(id: $id) { id updatedAt refunds(first: 5) { id legacyResourceId createdAt
  refundLineItems(first: 10) { pageInfo { hasNextPage } nodes { id quantity restockType location { id } lineItem { id sku } } }
  return { id exchangeLineItems(first: 5) { pageInfo { hasNextPage } nodes { id quantity lineItem { id sku } } } } } } }"""


class OrderRefunds(StandinTest):
    def test_a_refund_and_its_exchange_read_as_the_webhook_names_them(self):
        control("clock", {"now": 1795000000})
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 3}]})
        line = order["line_items"][0]["id"]
        gql_id = "gid://shopify/Order/%d" % order["id"]
        before = self.gql(REFUNDS_QUERY, {"id": gql_id})["data"]["order"]
        self.assertEqual(before["refunds"], [])
        control("clock", {"advance": 60})
        control("refund", {"id": order["id"], "lines": [
            {"line_item_id": line, "quantity": 1, "restock_type": "cancel"},
            {"line_item_id": line, "quantity": 1, "restock_type": "no_restock"}]})
        exchange = control("refund", {"id": order["id"], "lines": [
            {"line_item_id": line, "quantity": 1, "restock_type": "return"}],
            "exchange": [{"sku": "CAP", "quantity": 2}]})
        read = self.gql(REFUNDS_QUERY, {"id": gql_id})["data"]["order"]
        self.assertGreater(read["updatedAt"], before["updatedAt"], "a refund moves updatedAt")
        first, second = read["refunds"]
        rest = control("state", method="GET")["orders"][0]["refunds"]
        self.assertEqual([int(r["legacyResourceId"]) for r in read["refunds"]], [r["id"] for r in rest])
        lines = first["refundLineItems"]["nodes"]
        self.assertEqual([n["restockType"] for n in lines], ["CANCEL", "NO_RESTOCK"])
        self.assertEqual([n["id"] for n in lines],
                         ["gid://shopify/RefundLineItem/%d" % r["id"] for r in rest[0]["refund_line_items"]])
        self.assertEqual(lines[0]["lineItem"], {"id": "gid://shopify/LineItem/%d" % line, "sku": "MUG-RED"})
        self.assertEqual(lines[0]["location"], {"id": "gid://shopify/Location/1"})
        self.assertEqual(first["createdAt"], "2026-11-18T11:07:40Z")
        self.assertIsNone(first["return"])
        exchanged = second["return"]["exchangeLineItems"]["nodes"]
        rest_exchange = exchange["return"]["exchange_line_items"]
        self.assertEqual(second["return"]["id"], "gid://shopify/Return/%d" % exchange["return"]["id"])
        self.assertEqual(exchanged, [{"id": "gid://shopify/ExchangeLineItem/%d" % rest_exchange[0]["id"],
                                      "quantity": 2, "lineItem": {
                                          "id": "gid://shopify/LineItem/%d" % rest_exchange[0]["line_item"]["id"],
                                          "sku": "CAP"}}])


EDIT_QUERY = """query($id: ID!) { order(id: $id) { id lineItems(first: 20) { nodes { id sku quantity currentQuantity } }
  agreements(first: 5) { pageInfo { hasNextPage } nodes { id reason happenedAt
    sales(first: 10) { nodes { actionType quantity ... on ProductSale { lineItem { id sku } } } } } } } }"""


class OrderEdits(StandinTest):
    def test_an_edit_moves_units_and_shows_in_the_views(self):
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 4}, {"sku": "CAP", "quantity": 1}]})
        mug, cap = (line["id"] for line in order["line_items"])
        edit = control("edit", {"id": order["id"], "lines": [{"line_item_id": mug, "delta": -3},
                                                             {"line_item_id": cap, "delta": 2}],
                                "add": [{"sku": "MUG-RED", "quantity": 2}]})["order_edit"]
        self.assertEqual(edit["order_id"], order["id"])
        self.assertEqual(edit["line_items"]["removals"], [{"id": mug, "delta": 3}])
        additions = edit["line_items"]["additions"]
        self.assertEqual(additions[0], {"id": cap, "delta": 2})
        self.assertEqual(additions[1]["delta"], 2)
        # MUG-RED: 4 ordered, 3 removed, 2 on a new line: 3 committed.
        level = level_state(101, 1)
        self.assertEqual((level["available"], level["committed"]), (7, 3))
        node = self.gql(EDIT_QUERY, {"id": "gid://shopify/Order/%d" % order["id"]})["data"]["order"]
        lines = {int(n["id"].rsplit("/", 1)[1]): (n["quantity"], n["currentQuantity"])
                 for n in node["lineItems"]["nodes"]}
        self.assertEqual(lines, {mug: (4, 1), cap: (3, 3), additions[1]["id"]: (2, 2)})
        agreements = node["agreements"]["nodes"]
        self.assertEqual([a["reason"] for a in agreements], ["ORDER", "ORDER_EDIT"])
        self.assertEqual(agreements[1]["id"], "gid://shopify/SalesAgreement/%d" % edit["id"])
        sales = [(s["lineItem"]["id"].rsplit("/", 1)[1], s["quantity"], s["actionType"])
                 for s in agreements[1]["sales"]["nodes"]]
        self.assertEqual(sales, [(str(mug), -3, "UPDATE"), (str(cap), 2, "ORDER"),
                                 (str(additions[1]["id"]), 2, "ORDER")])
        cancelled = control("cancel", {"id": order["id"]})
        self.assertEqual([l["current_quantity"] for l in cancelled["line_items"]], [0, 0, 0])
        level = level_state(101, 1)
        self.assertEqual((level["available"], level["committed"]), (10, 0))

    def test_bad_edits_are_refused(self):
        order = control("order", {"line_items": [{"sku": "CAP", "quantity": 2}]})
        line = order["line_items"][0]["id"]
        for spec in ({"id": order["id"]}, {"id": order["id"], "lines": [{"line_item_id": line, "delta": 0}]},
                     {"id": order["id"], "lines": [{"line_item_id": line, "delta": -3}]},
                     {"id": order["id"], "lines": [{"line_item_id": 1, "delta": 1}]},
                     {"id": order["id"], "add": [{"sku": "CAP", "quantity": 0}]}):
            status, _, body = http_request("POST", "/_control/edit", json.dumps(spec).encode())
            self.assertEqual(status, 400, (spec, body))
        control("cancel", {"id": order["id"]})
        status, _, _ = http_request("POST", "/_control/edit", json.dumps(
            {"id": order["id"], "lines": [{"line_item_id": line, "delta": 1}]}).encode())
        self.assertEqual(status, 400)


class Webhooks(StandinTest):
    def setUp(self):
        super().setUp()
        self.receiver = WebhookReceiver()

    def tearDown(self):
        self.receiver.close()

    def subscribe(self, secret="whsec", **config):
        if config:
            control("config", config)
        control("webhooks", {"url": self.receiver.url, "secret": secret})

    def test_a_delivery_is_signed_and_carries_shopifys_headers(self):
        import base64
        import hashlib
        import hmac
        self.subscribe()
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 1}]})
        status = settle()
        self.assertEqual(status["counts"], {"delivered": 1})
        headers, body = self.receiver.received[0]
        headers = {k.lower(): v for k, v in headers.items()}
        self.assertEqual(headers["x-shopify-topic"], "orders/create")
        self.assertEqual(headers["x-shopify-shop-domain"], "skuld-standin.myshopify.com")
        expected = base64.b64encode(hmac.new(b"whsec", body, hashlib.sha256).digest()).decode()
        self.assertEqual(headers["x-shopify-hmac-sha256"], expected)
        self.assertTrue(headers["x-shopify-webhook-id"])
        self.assertEqual(json.loads(body)["id"], order["id"])

    def test_cancel_and_refund_topics(self):
        self.subscribe()
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 2}]})
        control("refund", {"id": order["id"], "lines": [{"line_item_id": order["line_items"][0]["id"],
                                                         "quantity": 1, "restock_type": "cancel"}]})
        control("cancel", {"id": order["id"]})
        settle()
        topics = sorted(h["X-Shopify-Topic"] for h, _ in self.receiver.received)
        self.assertEqual(topics, ["orders/cancelled", "orders/create", "refunds/create", "refunds/create"])
        bodies = [json.loads(b) for h, b in self.receiver.received if h["X-Shopify-Topic"] == "refunds/create"]
        self.assertEqual([[r["restock_type"] for r in b["refund_line_items"]] for b in bodies],
                         [["cancel"], ["cancel"]])
        cancelled = [json.loads(b) for h, b in self.receiver.received if h["X-Shopify-Topic"] == "orders/cancelled"]
        self.assertEqual([r["id"] for r in cancelled[0]["refunds"]], [b["id"] for b in bodies])

    def test_orders_edited_is_delivered_to_a_subscription_that_names_it(self):
        self.subscribe()
        order = control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 2}]})
        control("edit", {"id": order["id"], "lines": [{"line_item_id": order["line_items"][0]["id"], "delta": 1}]})
        settle()
        self.assertEqual([h["X-Shopify-Topic"] for h, _ in self.receiver.received], ["orders/create"])
        control("webhooks", {"url": self.receiver.url, "secret": "whsec",
                             "topics": ["orders/create", "orders/edited"]})
        edit = control("edit", {"id": order["id"], "lines": [{"line_item_id": order["line_items"][0]["id"],
                                                              "delta": -1}]})
        settle()
        headers, body = self.receiver.received[-1]
        self.assertEqual(headers["X-Shopify-Topic"], "orders/edited")
        self.assertEqual(json.loads(body), edit)

    def test_failures_are_retried_with_backoff_and_bounded(self):
        self.receiver.status = 401
        self.subscribe(webhook_max_attempts=3, webhook_retry_initial_seconds=0.1)
        control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 1}]})
        status = settle()
        self.assertEqual(status["counts"], {"failed": 1})
        self.assertEqual([a["status"] for a in status["attempts"]], [401, 401, 401])
        ids = {h["X-Shopify-Webhook-Id"] for h, _ in self.receiver.received}
        self.assertEqual(len(ids), 1, "a retry keeps its webhook id")

    def test_a_retry_succeeds_once_the_receiver_answers(self):
        self.receiver.status = 503
        self.subscribe(webhook_retry_initial_seconds=0.2)
        control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 1}]})
        time.sleep(0.1)
        self.receiver.status = 200
        status = settle()
        self.assertEqual(status["counts"], {"delivered": 1})
        self.assertEqual(status["deliveries"][0]["statuses"][-1], 200)

    def test_no_answer_is_retried(self):
        self.subscribe(webhook_max_attempts=2, webhook_retry_initial_seconds=0.05, webhook_timeout_seconds=0.5)
        control("webhooks", {"url": "http://127.0.0.1:1/nobody", "secret": "s"})
        control("order", {"line_items": [{"sku": "MUG-RED", "quantity": 1}]})
        status = settle()
        self.assertEqual(status["counts"], {"failed": 1})
        self.assertEqual([a["status"] for a in status["attempts"]], [None, None])

    def test_duplicates_late_deliveries_and_drops(self):
        self.subscribe(webhook_duplicate_rate=0.5, webhook_late_rate=0.5, webhook_late_seconds=0.3,
                       webhook_seed=4)
        for _ in range(20):
            control("order", {"line_items": [{"sku": "CAP", "quantity": 1}]})
        status = settle()
        deliveries = status["deliveries"]
        self.assertGreater(sum(d["duplicate"] for d in deliveries), 3)
        self.assertGreater(sum(d["late"] for d in deliveries), 3)
        events = {d["eventId"] for d in deliveries}
        self.assertEqual(len(events), 20)
        received_orders = [json.loads(body)["id"] for _, body in self.receiver.received]
        self.assertNotEqual(received_orders, sorted(received_orders), "late ones arrive out of order")
        control("config", {"webhook_drop": True})
        control("order", {"line_items": [{"sku": "CAP", "quantity": 1}]})
        self.assertEqual(settle()["counts"].get("dropped"), 1)

    def test_a_bad_subscription_is_refused(self):
        for spec in ({"url": "ftp://x", "secret": "s"}, {"url": self.receiver.url},
                     {"url": self.receiver.url, "secret": "s", "topics": ["orders/paid"]}):
            status, _, _ = http_request("POST", "/_control/webhooks", json.dumps(spec).encode())
            self.assertEqual(status, 400, spec)
        status, _, _ = http_request("POST", "/_control/config", json.dumps({"webhook_drop_rate": 2}).encode())
        self.assertEqual(status, 400)
