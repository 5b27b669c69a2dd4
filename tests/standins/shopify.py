#!/usr/bin/env python3
"""Shopify Admin GraphQL stand-in: the inventory API the skuld-push worker talks to in tests.

What this file owns
  An HTTP server on 127.0.0.1 that answers `POST /admin/api/{YYYY-MM}/graphql.json` the way
  Shopify does for the inventory mutations and the reads needed to reconcile them, plus a
  control API under `/_control/` through which a test seeds listings, drives the clock,
  injects faults and reads the state and the request log.  README.md beside this file is the
  user's guide; this header is the specification.

What is checked against the official schema, and what is modelled by hand
  * Every document is parsed and validated, and its variables coerced, with graphql-core
    against a schema built from Shopify's own 2025-01 introspection extract
    (schema/shopify-admin-2025-01-inventory.introspection.json, type entries unchanged).
  * Later versions are that extract plus the input differences in `apply_version_rules`,
    derived from Shopify's changelog: 2026-01 adds `changeFromQuantity` and `@idempotent`,
    2026-04 removes `compareQuantity`/`ignoreCompareQuantity` and requires
    `changeFromQuantity` on every quantity at run time (an explicit null opts out).
  * The extract omits the read side (QueryRoot, InventoryItem, InventoryLevel, Location, ...).
    Those types are written by hand in READ_SIDE_SDL with the field names and shapes of the
    real API; documents are validated against them too, but they are not official.
  * Orders (Orders) are created, cancelled and refunded through the control API and move the
    levels as real orders do; their webhooks are delivered, signed, by a background thread
    (Webhooks) with retries, duplicates, late and dropped deliveries; the `orders` query and
    its types are in READ_SIDE_SDL, written by hand (not official).
  * Business rules (userErrors, all-or-nothing, idempotency, the cost bucket, error bodies)
    are modelled by hand from the public documentation; the items marked [unverified] in
    ../../../shared/CHANNELS.md are configurable.

Invariants
  * State (listings, bucket, idempotency records, faults, log, config) changes only while
    `Standin.lock` is held; a request's execution holds it from start to end, so every call
    is atomic.  The one exception is an injected `delay`, which releases it while sleeping so
    that a second request can observe the first one in flight.
  * A mutation call applies all of its quantities or none (unless `partial_apply` is set).
  * A quantity is changed at most once per idempotency key: a replay returns the stored
    payload and applies nothing; the request log marks it `replayed`.
  * Every GraphQL answer (HTTP 200 or 429) carries `extensions.cost`.
  * Every wait is bounded: hangs by `max_hang_seconds`, delays by the same, request bodies by
    MAX_BODY_BYTES, the in-memory log by MAX_LOG_ENTRIES (oldest dropped first).
"""

import argparse
import base64
import copy
import dataclasses
import datetime
import json
import logging
import os
import re
import select
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import graphql

import webhooks

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA_PATH = os.path.join(HERE, "schema", "shopify-admin-2025-01-inventory.introspection.json")

GRAPHQL_PATH = re.compile(r"^/admin/api/(\d{4}-\d{2})/graphql\.json$")
QUARTERLY_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$")
DEFAULT_VERSIONS = ("2025-01", "2025-04", "2025-07", "2025-10", "2026-01", "2026-04")
DEFAULT_TOKEN = "shpat_standin"

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_LOG_ENTRIES = 100_000
MAX_INPUT_ARRAY = 250                    # quantities / changes per mutation call
QUANTITY_LIMIT = 1_000_000_000           # inventorySetQuantities: |total| at most this
ADJUST_LIMIT = 2_000_000_000             # inventoryAdjustQuantities: |result| at most this
INVALID_TOKEN_BODY = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
THROTTLE_DOCS = "https://shopify.dev/api/usage/rate-limits"

# Reasons accepted by inventorySetQuantities / inventoryAdjustQuantities (shopify.dev,
# "inventory quantities and states").
REASONS = frozenset((
    "correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
    "movement_received", "movement_canceled", "other", "promotion", "quality_control",
    "received", "reservation_created", "reservation_deleted", "reservation_updated",
    "restock", "safety_stock", "shrinkage",
))
# Quantity names an inventory level holds; on_hand is derived from the others.
STORED_QUANTITY_NAMES = ("available", "committed", "reserved", "damaged", "safety_stock",
                         "quality_control", "incoming")
ON_HAND_PARTS = ("available", "committed", "reserved", "damaged", "safety_stock", "quality_control")
READABLE_QUANTITY_NAMES = frozenset(STORED_QUANTITY_NAMES + ("on_hand",))
SETTABLE_QUANTITY_NAMES = ("available", "on_hand")


# ----------------------------------------------------------------------------------------
# API versions
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class VersionRules:
    """What one Admin API version accepts for the inventory mutations."""
    compare_quantity: bool        # compareQuantity and ignoreCompareQuantity exist
    change_from_quantity: bool    # changeFromQuantity and @idempotent(key:) exist
    change_from_required: bool    # every quantity must name changeFromQuantity (null opts out)
    previous_attempt_code: bool   # IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED exists [unverified: from 2026-04]


# The userError codes added after 2025-01, with Shopify's descriptions (used as messages).
CHANGE_FROM_STALE_MESSAGE = "The changeFromQuantity value does not match persisted value."
IDEMPOTENCY_MESSAGES = {
    "IDEMPOTENCY_CONCURRENT_REQUEST": "This request is currently in progress, please try again.",
    "IDEMPOTENCY_KEY_PARAMETER_MISMATCH":
        "The same idempotency key cannot be used with different operation parameters.",
    "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED":
        "A previous request with this idempotency key failed. Retry with a new idempotency key.",
}


def rules_for(version):
    return VersionRules(
        compare_quantity=version < "2026-04",
        change_from_quantity=version >= "2026-01",
        change_from_required=version >= "2026-04",
        previous_attempt_code=version >= "2026-04",
    )


# ----------------------------------------------------------------------------------------
# graphql-core 2 (Debian 12's python3-graphql-core) and 3: the few calls that differ
# ----------------------------------------------------------------------------------------

GRAPHQL_CORE_MAJOR = int(graphql.__version__.split(".")[0])
if GRAPHQL_CORE_MAJOR not in (2, 3):
    raise ImportError("shopify stand-in: graphql-core 2 or 3 is required, found " + graphql.__version__)


def ast_kind(node):
    """The AST node's kind without graphql-core 3's "Node" suffix: "Field", "ObjectValue", ..."""
    name = type(node).__name__
    return name[:-4] if name.endswith("Node") else name


def operation_kind(operation):
    return getattr(operation.operation, "value", operation.operation)


def introspect(schema):
    if GRAPHQL_CORE_MAJOR == 2:
        return graphql.graphql(schema, graphql.introspection_query).data
    return graphql.introspection_from_schema(schema)


def dict_resolver(source, info, **_):
    return source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)


def make_executable(schema):
    """graphql-core 2 gives a client schema's fields a resolver that refuses to run; read
    fields from the dicts the stand-in resolves to instead, as graphql-core 3 does."""
    if GRAPHQL_CORE_MAJOR == 2:
        for named in schema.get_type_map().values():
            # A client schema's custom scalar (DateTime, UnsignedInt64, ...) serializes every
            # value to None there, which execution refuses: pass the stand-in's texts through.
            if isinstance(named, graphql.GraphQLScalarType) and named.name not in BUILT_IN_NAMES:
                named.serialize = lambda value: value
            if isinstance(named, graphql.GraphQLObjectType) and not named.name.startswith("__"):
                for field in named.fields.values():
                    field.resolver = dict_resolver
    return schema


def set_resolver(schema, type_name, field_name, resolver):
    field = schema.get_type(type_name).fields[field_name]
    if GRAPHQL_CORE_MAJOR == 2:
        field.resolver = resolver
    else:
        field.resolve = resolver


def query_root(schema):
    return schema.get_query_type() if GRAPHQL_CORE_MAJOR == 2 else schema.query_type


def field_nodes(info):
    return info.field_asts if GRAPHQL_CORE_MAJOR == 2 else info.field_nodes


def variable_errors(schema, operation, variables):
    """Coerces the request's variables; returns the list of GraphQLErrors (empty when valid)."""
    from graphql.execution.values import get_variable_values
    definitions = operation.variable_definitions or []
    if GRAPHQL_CORE_MAJOR == 2:
        try:
            get_variable_values(schema, definitions, variables)
        except graphql.GraphQLError as error:
            return [error]
        except (ValueError, TypeError) as error:     # graphql-core 2 raises these for bad scalars
            return [graphql.GraphQLError("Variables are invalid: %s" % error, definitions)]
        return []
    coerced = get_variable_values(schema, definitions, variables, max_errors=50)
    return coerced if isinstance(coerced, list) else []


def node_locations(node):
    """[{line, column}] of an AST node, as in a formatted error."""
    from graphql.language.location import get_location
    where = get_location(node.loc.source, node.loc.start)
    return [{"line": where.line, "column": where.column}]


def formatted_error(error):
    if GRAPHQL_CORE_MAJOR == 2:
        return graphql.format_error(error)
    return dict(error.formatted)


def original_error(error):
    return getattr(error, "original_error", None)


def parse_document(text):
    """Parses a request document; returns (document, nulls).

    graphql-core 2 has no null literal.  On it, each `name: null` inside an argument list or
    input object (and each `= null` default) is blanked out before parsing, keeping every
    offset, line and column; `nulls` lists (offset, name) so that input_value() can put the
    explicit nulls back.  A null inside a list literal is left as is and fails to parse."""
    if GRAPHQL_CORE_MAJOR == 3:
        return graphql.parse(text), []
    text, nulls = _blank_null_literals(text)
    return graphql.parse(text), nulls


def _blank_null_literals(text):
    from graphql.language.lexer import Lexer, TokenKind
    from graphql.language.source import Source
    tokens = []
    lexer = Lexer(Source(text))
    try:
        for _ in range(len(text) + 1):
            token = lexer.next_token()
            if token.kind == TokenKind.EOF:
                break
            tokens.append(token)
    except graphql.GraphQLError:
        return text, []          # the parser reports the syntax error
    chars = list(text)
    nulls = []
    frames = []                  # "selection", "args", "vardefs", "object", "list", "typelist"

    def starts_value(i):
        previous = tokens[i - 1] if i else None
        top = frames[-1] if frames else None
        if previous is None:
            return False
        if previous.kind == TokenKind.EQUALS or top == "list":
            return True
        return previous.kind == TokenKind.COLON and top in ("args", "object")

    def blank(start, end):
        for offset in range(start, end):
            if chars[offset] not in "\r\n":
                chars[offset] = " "

    for i, token in enumerate(tokens):
        top = frames[-1] if frames else None
        if token.kind == TokenKind.BRACE_L:
            frames.append("object" if starts_value(i) else "selection")
        elif token.kind == TokenKind.BRACKET_L:
            frames.append("list" if starts_value(i) else "typelist")
        elif token.kind == TokenKind.PAREN_L:
            after_directive = i >= 2 and tokens[i - 2].kind == TokenKind.AT
            frames.append("vardefs" if top is None and not after_directive else "args")
        elif token.kind in (TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R):
            if frames:
                frames.pop()
        elif token.kind == TokenKind.NAME and token.value == "null" and starts_value(i):
            previous = tokens[i - 1]
            if previous.kind == TokenKind.COLON and tokens[i - 2].kind == TokenKind.NAME:
                nulls.append((tokens[i - 2].start, tokens[i - 2].value))
                blank(tokens[i - 2].start, token.end)
            elif previous.kind == TokenKind.EQUALS:
                blank(previous.start, token.end)
    return "".join(chars), nulls


# ----------------------------------------------------------------------------------------
# Schemas: the official extract, the version differences, the hand-written read side
# ----------------------------------------------------------------------------------------

# The read side of the Admin API as far as reconciliation needs it.  Not in the official
# extract: field names, arguments and types follow shopify.dev's reference for these objects,
# reduced to the fields listed here.  Types already in the extract are not redefined.
READ_SIDE_SDL = '''
schema { query: QueryRoot }

scalar DateTime

interface Node { id: ID! }

type QueryRoot {
  inventoryItem(id: ID!): InventoryItem
  inventoryLevel(id: ID!): InventoryLevel
  location(id: ID): Location
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  order(id: ID!): Order
  orders(first: Int, after: String, last: Int, before: String, reverse: Boolean = false,
         query: String, sortKey: OrderSortKeys = PROCESSED_AT): OrderConnection!
}

type InventoryItem implements Node {
  id: ID!
  sku: String
  tracked: Boolean!
  createdAt: DateTime!
  updatedAt: DateTime!
  inventoryLevel(locationId: ID!): InventoryLevel
  inventoryLevels(first: Int, after: String, last: Int, before: String, reverse: Boolean = false,
                  query: String): InventoryLevelConnection!
}

type Location implements Node {
  id: ID!
  name: String!
  isActive: Boolean!
  inventoryLevel(inventoryItemId: ID!): InventoryLevel
  inventoryLevels(first: Int, after: String, last: Int, before: String, reverse: Boolean = false,
                  query: String): InventoryLevelConnection!
}

type InventoryLevel implements Node {
  id: ID!
  item: InventoryItem!
  location: Location!
  quantities(names: [String!]!): [InventoryQuantity!]!
  canDeactivate: Boolean!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type InventoryQuantity {
  id: ID!
  name: String!
  quantity: Int!
  updatedAt: DateTime
}

type InventoryLevelConnection {
  edges: [InventoryLevelEdge!]!
  nodes: [InventoryLevel!]!
  pageInfo: PageInfo!
}

type InventoryLevelEdge {
  cursor: String!
  node: InventoryLevel!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

# Orders, for the gateway's safety-net poll.  Written by hand from shopify.dev's reference of
# Order, LineItem, Refund and their connections (not official; reduced to these fields).
# physicalLocation is deprecated in the real API in favour of retailLocation; both are here.
scalar UnsignedInt64

enum OrderSortKeys {
  CREATED_AT
  CUSTOMER_NAME
  DESTINATION
  FINANCIAL_STATUS
  FULFILLMENT_STATUS
  ID
  ORDER_NUMBER
  PO_NUMBER
  PROCESSED_AT
  RELEVANCE
  TOTAL_ITEMS_QUANTITY
  TOTAL_PRICE
  UPDATED_AT
}

enum RefundLineItemRestockType {
  CANCEL
  LEGACY_RESTOCK
  NO_RESTOCK
  RETURN
}

type Order implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  createdAt: DateTime!
  updatedAt: DateTime!
  processedAt: DateTime!
  cancelledAt: DateTime
  sourceName: String
  physicalLocation: Location @deprecated(reason: "Use `retailLocation` instead.")
  retailLocation: Location
  lineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): LineItemConnection!
  refunds(first: Int): [Refund!]!
  agreements(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): SalesAgreementConnection!
}

# The order's sales agreements: the order itself (ORDER) and each committed order edit
# (ORDER_EDIT), each with the product sales it made.  A sale's quantity is signed: units an
# edit added are positive (actionType ORDER), units it removed negative (actionType UPDATE).
enum OrderActionType {
  ORDER
  ORDER_EDIT
  REFUND
  RETURN
  UNKNOWN
}

enum SaleActionType {
  ORDER
  RETURN
  UPDATE
  UNKNOWN
}

enum SaleLineType {
  ADDITIONAL_FEE
  DUTY
  GIFT_CARD
  PRODUCT
  SHIPPING
  TIP
  UNKNOWN
}

interface SalesAgreement {
  id: ID!
  happenedAt: DateTime!
  reason: OrderActionType!
  sales(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): SaleConnection!
}

type OrderAgreement implements SalesAgreement {
  id: ID!
  happenedAt: DateTime!
  reason: OrderActionType!
  sales(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): SaleConnection!
}

type OrderEditAgreement implements SalesAgreement {
  id: ID!
  happenedAt: DateTime!
  reason: OrderActionType!
  sales(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): SaleConnection!
}

interface Sale {
  id: ID!
  actionType: SaleActionType!
  lineType: SaleLineType!
  quantity: Int
}

type ProductSale implements Sale {
  id: ID!
  actionType: SaleActionType!
  lineType: SaleLineType!
  quantity: Int
  lineItem: LineItem!
}

type SalesAgreementConnection {
  edges: [SalesAgreementEdge!]!
  nodes: [SalesAgreement!]!
  pageInfo: PageInfo!
}

type SalesAgreementEdge {
  cursor: String!
  node: SalesAgreement!
}

type SaleConnection {
  edges: [SaleEdge!]!
  nodes: [Sale!]!
  pageInfo: PageInfo!
}

type SaleEdge {
  cursor: String!
  node: Sale!
}

type LineItem implements Node {
  id: ID!
  sku: String
  name: String!
  quantity: Int!
  currentQuantity: Int!
  customAttributes: [Attribute!]!
}

# A line item property (REST `properties`, {name, value}; a checkout's own line data).
type Attribute {
  key: String!
  value: String
}

type Refund implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  createdAt: DateTime
  refundLineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): RefundLineItemConnection!
  return: Return
}

# [unverified] The return a refund closes, with its exchange: the items sent out in place of
# those coming back (REST `return.exchange_line_items`).  Names after the Admin API's Return
# and ExchangeLineItem; the repository's schema extract does not cover them.
type Return {
  id: ID!
  exchangeLineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): ExchangeLineItemConnection!
}

type ExchangeLineItem {
  id: ID!
  quantity: Int!
  lineItem: LineItem
}

type ExchangeLineItemConnection {
  edges: [ExchangeLineItemEdge!]!
  nodes: [ExchangeLineItem!]!
  pageInfo: PageInfo!
}

type ExchangeLineItemEdge {
  cursor: String!
  node: ExchangeLineItem!
}

type RefundLineItem {
  id: ID
  lineItem: LineItem!
  quantity: Int!
  restockType: RefundLineItemRestockType!
  restocked: Boolean!
  location: Location
}

type OrderConnection {
  edges: [OrderEdge!]!
  nodes: [Order!]!
  pageInfo: PageInfo!
}

type OrderEdge {
  cursor: String!
  node: Order!
}

type LineItemConnection {
  edges: [LineItemEdge!]!
  nodes: [LineItem!]!
  pageInfo: PageInfo!
}

type LineItemEdge {
  cursor: String!
  node: LineItem!
}

type RefundLineItemConnection {
  edges: [RefundLineItemEdge!]!
  nodes: [RefundLineItem!]!
  pageInfo: PageInfo!
}

type RefundLineItemEdge {
  cursor: String!
  node: RefundLineItem!
}

type App implements Node {
  id: ID!
  title: String!
}

type StaffMember implements Node {
  id: ID!
  name: String!
}
'''

BUILT_IN_NAMES = frozenset(("String", "Int", "Float", "Boolean", "ID"))


def _type_entry(types, name):
    for entry in types:
        if entry["name"] == name:
            return entry
    raise KeyError("schema extract lacks type " + name)


def _nullable_int_input(name, description):
    return {"name": name, "description": description, "defaultValue": None,
            "type": {"kind": "SCALAR", "name": "Int", "ofType": None}}


def _enum_value(name, description):
    return {"name": name, "description": description, "isDeprecated": False, "deprecationReason": None}


IDEMPOTENT_DIRECTIVE = {
    "name": "idempotent",
    "description": "Makes the mutation idempotent: a retry with the same key is executed at most once.",
    "locations": ["FIELD"],
    "isRepeatable": False,
    "args": [{"name": "key", "description": "A unique key, a UUID for example.", "defaultValue": None,
              "type": {"kind": "NON_NULL", "name": None,
                       "ofType": {"kind": "SCALAR", "name": "String", "ofType": None}}}],
}


def apply_version_rules(types, directives, rules):
    """Turns the 2025-01 type entries into those of a later version, in place.

    2026-01 (changelog "New changeFromQuantity field to manage inventory", "Adding idempotency
    for inventory adjustments"): InventoryQuantityInput and InventoryChangeInput gain
    `changeFromQuantity: Int`; both user-error enums gain CHANGE_FROM_QUANTITY_STALE,
    IDEMPOTENCY_CONCURRENT_REQUEST and IDEMPOTENCY_KEY_PARAMETER_MISMATCH; the
    `@idempotent(key: String!)` directive appears on fields.
    2026-04 ("New compare and swap syntax for the inventorySetQuantities mutation"):
    `compareQuantity` and `ignoreCompareQuantity` are removed; IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED
    appears [unverified which version].  The 2026-04 requirement that every quantity name
    `changeFromQuantity` is not expressible in the schema (the field stays nullable) and is
    checked at run time by `input_rule_errors`."""
    if rules.change_from_quantity:
        for name in ("InventoryQuantityInput", "InventoryChangeInput"):
            _type_entry(types, name)["inputFields"].append(_nullable_int_input(
                "changeFromQuantity",
                "The quantity currently expected before the change; null skips the check."))
        for name in ("InventorySetQuantitiesUserErrorCode", "InventoryAdjustQuantitiesUserErrorCode"):
            _type_entry(types, name)["enumValues"].extend(
                [_enum_value("CHANGE_FROM_QUANTITY_STALE", CHANGE_FROM_STALE_MESSAGE)]
                + [_enum_value(code, IDEMPOTENCY_MESSAGES[code])
                   for code in ("IDEMPOTENCY_CONCURRENT_REQUEST", "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")])
        directives.append(copy.deepcopy(IDEMPOTENT_DIRECTIVE))
    if not rules.compare_quantity:
        quantity_input = _type_entry(types, "InventoryQuantityInput")
        quantity_input["inputFields"] = [f for f in quantity_input["inputFields"] if f["name"] != "compareQuantity"]
        set_input = _type_entry(types, "InventorySetQuantitiesInput")
        set_input["inputFields"] = [f for f in set_input["inputFields"] if f["name"] != "ignoreCompareQuantity"]
    if rules.previous_attempt_code:
        for name in ("InventorySetQuantitiesUserErrorCode", "InventoryAdjustQuantitiesUserErrorCode"):
            _type_entry(types, name)["enumValues"].append(_enum_value(
                "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED", IDEMPOTENCY_MESSAGES["IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"]))


def build_schema(extract, version):
    """The executable schema of one API version (resolvers are attached by the caller)."""
    official = copy.deepcopy(extract["data"]["__schema"])
    read_side = introspect(graphql.build_ast_schema(graphql.parse(READ_SIDE_SDL)))["__schema"]
    present = {entry["name"] for entry in official["types"]}
    for entry in read_side["types"]:
        name = entry["name"]
        if name.startswith("__") or name in BUILT_IN_NAMES or name in present:
            continue
        official["types"].append(entry)
        present.add(name)
    node = _type_entry(official["types"], "Node")
    node["possibleTypes"] = (node.get("possibleTypes") or []) + [
        {"kind": "OBJECT", "name": "InventoryAdjustmentGroup", "ofType": None}]
    directives = [d for d in read_side["directives"] if d["name"] in ("skip", "include", "deprecated")]
    apply_version_rules(official["types"], directives, rules_for(version))
    official["queryType"] = {"name": "QueryRoot"}
    official["subscriptionType"] = None
    official["directives"] = directives
    return graphql.build_client_schema({"__schema": official})


# ----------------------------------------------------------------------------------------
# Reading documents: input values as sent, root fields, cost
# ----------------------------------------------------------------------------------------

ABSENT = object()   # an input field or argument the request did not give


class Document:
    """One parsed request: the operation to run and the values it was sent with."""

    def __init__(self, parsed, nulls, operation, variables):
        self.parsed = parsed
        self.nulls = nulls                      # explicit nulls blanked for graphql-core 2
        self.operation = operation
        self.kind = operation_kind(operation) if operation is not None else None
        self.fragments = {d.name.value: d for d in parsed.definitions if ast_kind(d) == "FragmentDefinition"}
        self.variables = dict(variables)
        if operation is not None:
            for definition in operation.variable_definitions or []:
                name = definition.variable.name.value
                if name not in self.variables and definition.default_value is not None:
                    self.variables[name] = self.input_value(definition.default_value)

    def input_value(self, node):
        """The value a literal or variable stands for, keeping absent and null apart."""
        kind = ast_kind(node)
        if kind == "Variable":
            return self.variables.get(node.name.value, ABSENT)
        if kind == "IntValue":
            return int(node.value)
        if kind == "FloatValue":
            return float(node.value)
        if kind in ("StringValue", "BooleanValue", "EnumValue"):
            return node.value
        if kind == "NullValue":
            return None
        if kind == "ListValue":
            return [v for v in (self.input_value(item) for item in node.values) if v is not ABSENT]
        if kind == "ObjectValue":
            result = {}
            for field in node.fields:
                value = self.input_value(field.value)
                if value is not ABSENT:
                    result[field.name.value] = value
            nested = [(f.value.loc.start, f.value.loc.end) for f in node.fields
                      if ast_kind(f.value) in ("ObjectValue", "ListValue")]
            for offset, name in self.nulls:
                inside = node.loc.start < offset < node.loc.end
                if inside and not any(start <= offset < end for start, end in nested):
                    result[name] = None
            return result
        raise ValueError("unexpected input node " + kind)

    def arguments(self, field):
        values = {}
        for argument in field.arguments or []:
            value = self.input_value(argument.value)
            if value is not ABSENT:
                values[argument.name.value] = value
        return values

    def directive_argument(self, field, directive_name, argument_name):
        for directive in field.directives or []:
            if directive.name.value == directive_name:
                for argument in directive.arguments or []:
                    if argument.name.value == argument_name:
                        value = self.input_value(argument.value)
                        return None if value is ABSENT else value
        return None

    def fields_of(self, selection_set):
        """The fields of a selection set with fragments spread in (no type narrowing)."""
        fields = []
        pending = list(selection_set.selections) if selection_set else []
        for _ in range(10_000):
            if not pending:
                break
            selection = pending.pop(0)
            kind = ast_kind(selection)
            if kind == "Field":
                fields.append(selection)
            elif kind == "InlineFragment":
                pending.extend(selection.selection_set.selections)
            elif kind == "FragmentSpread" and selection.name.value in self.fragments:
                pending.extend(self.fragments[selection.name.value].selection_set.selections)
        return fields

    def root_fields(self):
        return self.fields_of(self.operation.selection_set) if self.operation is not None else []


@dataclasses.dataclass
class RootMutation:
    """One inventory mutation field of the request, as the resolver and the rules see it."""
    name: str                    # inventorySetQuantities | inventoryAdjustQuantities
    node: object                 # the Field AST node
    input: dict                  # the `input` argument as sent
    idempotency_key: object      # str, or None without @idempotent

    def fingerprint(self):
        """What a reused idempotency key must match: the mutation and its input."""
        return json.dumps([self.name, self.input], sort_keys=True)


MUTATION_ARRAYS = {"inventorySetQuantities": ("quantities", "InventoryQuantityInput"),
                   "inventoryAdjustQuantities": ("changes", "InventoryChangeInput")}


def root_mutations(document):
    if document.kind != "mutation":
        return []
    found = []
    for field in document.root_fields():
        name = field.name.value
        if name in MUTATION_ARRAYS:
            arguments = document.arguments(field)
            found.append(RootMutation(name, field, arguments.get("input") or {},
                                      document.directive_argument(field, "idempotent", "key")))
    return found


def _named_type(graphql_type):
    for _ in range(8):
        inner = getattr(graphql_type, "of_type", None)
        if inner is None:
            return graphql_type
        graphql_type = inner
    return graphql_type


def _is_list(graphql_type):
    for _ in range(8):
        if isinstance(graphql_type, graphql.GraphQLList):
            return True
        inner = getattr(graphql_type, "of_type", None)
        if inner is None:
            return False
        graphql_type = inner
    return False


def query_cost(schema, document, config):
    """Requested cost, after Shopify's published method: a scalar or enum field costs 0, an
    object 1, a connection 2 plus `first`/`last` times its selection, a list of objects its
    selection times the number of `ids` (1 without), a mutation `mutation_cost` plus
    `per_quantity_cost` per quantity or change."""
    if document.operation is None:
        return 0
    if document.kind == "mutation":
        total = 0
        for field in document.root_fields():
            total += config.mutation_cost
            array_name = MUTATION_ARRAYS.get(field.name.value, ("",))[0]
            entries = (document.arguments(field).get("input") or {}).get(array_name)
            if isinstance(entries, list):
                total += config.per_quantity_cost * len(entries)
        return total
    return _selection_cost(schema, document, query_root(schema), document.operation.selection_set, 0)


def _selection_cost(schema, document, parent_type, selection_set, depth):
    if selection_set is None or depth > 32:
        return 0
    total = 0
    for field in document.fields_of(selection_set):
        name = field.name.value
        definition = _field_definition(schema, parent_type, name)
        if definition is None:
            continue
        named = _named_type(definition.type)
        if not isinstance(named, (graphql.GraphQLObjectType, graphql.GraphQLInterfaceType)):
            continue
        inner = 1 + _selection_cost(schema, document, named, field.selection_set, depth + 1)
        arguments = document.arguments(field)
        if named.name.endswith("Connection"):
            size = arguments.get("first") or arguments.get("last") or 0
            total += 2 + max(0, int(size)) * (inner - 1)
        elif _is_list(definition.type):
            ids = arguments.get("ids")
            total += inner * (len(ids) if isinstance(ids, list) else 1)
        else:
            total += inner
    return total


def _field_definition(schema, parent_type, name):
    fields = getattr(parent_type, "fields", None) or {}
    if name in fields:
        return fields[name]
    # A field of an inline fragment on Node (`nodes { ... on InventoryItem { sku } }`):
    # fields_of() does not narrow types, so look the field up on the types that implement Node.
    if isinstance(parent_type, graphql.GraphQLInterfaceType):
        for candidate in ("InventoryItem", "Location", "InventoryLevel"):
            candidate_fields = schema.get_type(candidate).fields
            if name in candidate_fields:
                return candidate_fields[name]
    return None


# ----------------------------------------------------------------------------------------
# Clock and cost bucket
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


class CostBucket:
    """Shopify's leaky bucket: `available` points, refilled at `restore_rate` per clock second
    up to `capacity`; a query is admitted when its requested cost fits."""

    def __init__(self, clock, capacity, restore_rate):
        self.clock = clock
        self.capacity = float(capacity)
        self.restore_rate = float(restore_rate)
        self.available = float(capacity)
        self.updated = clock.now()

    def _refill(self):
        now = self.clock.now()
        elapsed = max(0.0, now - self.updated)
        self.available = min(self.capacity, self.available + elapsed * self.restore_rate)
        self.updated = now

    def try_take(self, cost):
        self._refill()
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def refund(self, points):
        self.available = min(self.capacity, self.available + points)

    def seconds_until(self, cost):
        self._refill()
        missing = cost - self.available
        return 0.0 if missing <= 0 or self.restore_rate <= 0 else missing / self.restore_rate

    def status(self):
        self._refill()
        return {"maximumAvailable": self.capacity, "currentlyAvailable": int(self.available),
                "restoreRate": self.restore_rate}


# ----------------------------------------------------------------------------------------
# Listings and the inventory mutations
# ----------------------------------------------------------------------------------------

GID = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(\?.*)?$")


def parse_gid(value, expected_type):
    """The numeric id of `gid://shopify/<expected_type>/<n>`, or of a plain integer; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = GID.match(str(value))
    if match is None or match.group(1) != expected_type:
        return None
    return int(match.group(2))


def gid(type_name, number):
    return "gid://shopify/%s/%d" % (type_name, number)


def iso_time(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_error(path, code, message):
    return {"field": path, "code": code, "message": message}


@dataclasses.dataclass
class Item:
    id: int
    sku: str
    exists: bool = True          # false: deleted, answered as INVALID_INVENTORY_ITEM
    mutable: bool = True         # false: NON_MUTABLE_INVENTORY_ITEM (a bundle parent, say)
    tracked: bool = True


@dataclasses.dataclass
class Location:
    id: int
    name: str
    active: bool = True          # false: answered as INVALID_LOCATION


@dataclasses.dataclass
class Level:
    id: int
    item_id: int
    location_id: int
    stocked: bool
    quantities: dict             # STORED_QUANTITY_NAMES -> int
    created_at: float
    updated_at: float

    def quantity(self, name):
        if name == "on_hand":
            return sum(self.quantities[part] for part in ON_HAND_PARTS)
        return self.quantities[name]


@dataclasses.dataclass
class IdempotencyRecord:
    fingerprint: str
    state: str                   # "in_progress" | "done" | "failed"
    payload: object
    at: float


class Listings:
    """Inventory items, locations and levels, and the rules of the two inventory mutations."""

    def __init__(self, clock):
        self.clock = clock
        self.items = {}
        self.locations = {}
        self.levels = {}         # (item_id, location_id) -> Level
        self.next_level_id = 1
        self.next_group_id = 1

    # -- seeding and control ------------------------------------------------------------

    def seed(self, spec):
        """Replaces every listing with `spec` (see README.md, "Seed format")."""
        self.items, self.locations, self.levels = {}, {}, {}
        for entry in spec.get("locations", []):
            number = self._required_id(entry.get("id"), "Location")
            self.locations[number] = Location(number, str(entry.get("name", "Location %d" % number)),
                                              bool(entry.get("active", True)))
        for entry in spec.get("items", []):
            number = self._required_id(entry.get("id"), "InventoryItem")
            self.items[number] = Item(number, str(entry.get("sku", "SKU-%d" % number)),
                                      bool(entry.get("exists", True)), bool(entry.get("mutable", True)),
                                      bool(entry.get("tracked", True)))
        for entry in spec.get("levels", []):
            self.set_level(entry)

    def set_level(self, entry):
        item_id = self._required_id(entry.get("inventoryItemId", entry.get("item")), "InventoryItem")
        location_id = self._required_id(entry.get("locationId", entry.get("location")), "Location")
        if item_id not in self.items:
            self.items[item_id] = Item(item_id, "SKU-%d" % item_id)
        if location_id not in self.locations:
            self.locations[location_id] = Location(location_id, "Location %d" % location_id)
        level = self.levels.get((item_id, location_id))
        now = self.clock.now()
        if level is None:
            level = Level(self.next_level_id, item_id, location_id, True,
                          {name: 0 for name in STORED_QUANTITY_NAMES}, now, now)
            self.next_level_id += 1
            self.levels[(item_id, location_id)] = level
        if "stocked" in entry:
            level.stocked = bool(entry["stocked"])
        for name in STORED_QUANTITY_NAMES:
            if name in entry:
                level.quantities[name] = self._required_int(entry[name], name)
        level.updated_at = now
        return level

    def external_sale(self, entry):
        """A Shopify order for `quantity` units: available falls; committed rises until the
        order is fulfilled (fulfilled=true takes the units off on_hand at once)."""
        level = self._existing_level(entry)
        quantity = self._required_int(entry.get("quantity", 1), "quantity")
        level.quantities["available"] -= quantity
        if not entry.get("fulfilled", False):
            level.quantities["committed"] += quantity
        level.updated_at = self.clock.now()
        return level

    def update_item(self, entry):
        number = self._required_id(entry.get("inventoryItemId", entry.get("id")), "InventoryItem")
        item = self.items.get(number)
        if item is None:
            raise ValueError("unknown inventory item %r" % number)
        for key in ("exists", "mutable", "tracked"):
            if key in entry:
                setattr(item, key, bool(entry[key]))
        if "sku" in entry:
            item.sku = str(entry["sku"])
        return item

    def update_location(self, entry):
        number = self._required_id(entry.get("locationId", entry.get("id")), "Location")
        location = self.locations.get(number)
        if location is None:
            raise ValueError("unknown location %r" % number)
        if "active" in entry:
            location.active = bool(entry["active"])
        if "name" in entry:
            location.name = str(entry["name"])
        return location

    def _existing_level(self, entry):
        item_id = self._required_id(entry.get("inventoryItemId", entry.get("item")), "InventoryItem")
        location_id = self._required_id(entry.get("locationId", entry.get("location")), "Location")
        level = self.levels.get((item_id, location_id))
        if level is None:
            raise ValueError("no inventory level for item %d at location %d" % (item_id, location_id))
        return level

    @staticmethod
    def _required_id(value, type_name):
        number = parse_gid(value, type_name)
        if number is None:
            raise ValueError("expected a %s id or gid, got %r" % (type_name, value))
        return number

    @staticmethod
    def _required_int(value, name):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("%s must be an integer" % name)
        return value

    def snapshot(self):
        return {
            "items": [dataclasses.asdict(item) | {"gid": gid("InventoryItem", item.id)}
                      for item in sorted(self.items.values(), key=lambda i: i.id)],
            "locations": [dataclasses.asdict(loc) | {"gid": gid("Location", loc.id)}
                          for loc in sorted(self.locations.values(), key=lambda l: l.id)],
            "levels": [self.level_snapshot(level) for level in sorted(self.levels.values(), key=lambda l: l.id)],
        }

    @staticmethod
    def level_snapshot(level):
        return dict(level.quantities, id=level.id, inventoryItemId=gid("InventoryItem", level.item_id),
                    locationId=gid("Location", level.location_id), stocked=level.stocked,
                    on_hand=level.quantity("on_hand"))

    # -- lookups shared by the mutations and the reads -----------------------------------

    def item_by_gid(self, value):
        item = self.items.get(parse_gid(value, "InventoryItem") if isinstance(value, str) else None)
        return item if item is not None and item.exists else None

    def location_by_gid(self, value):
        location = self.locations.get(parse_gid(value, "Location") if isinstance(value, str) else None)
        return location if location is not None and location.active else None

    def stocked_level(self, item, location):
        level = self.levels.get((item.id, location.id))
        return level if level is not None and level.stocked else None

    # -- inventorySetQuantities ------------------------------------------------------------

    def set_quantities(self, given, rules, partial_apply):
        """Runs one inventorySetQuantities input; returns (payload, applied changes)."""
        name = given.get("name")
        errors = self._common_input_errors(given, SETTABLE_QUANTITY_NAMES, "INVALID_NAME",
                                           "The quantity name must be either 'available' or 'on_hand'.")
        ignore_compare = rules.compare_quantity and given.get("ignoreCompareQuantity") is True
        planned, seen = [], set()
        for index, quantity in enumerate(given.get("quantities") or []):
            path = ["input", "quantities", str(index)]
            level, error = self._target(quantity, path, "The specified inventory item is not stocked at the location.")
            if error is None and (level.item_id, level.location_id) in seen:
                error = user_error(path, "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                                   "The combination of inventoryItemId and locationId must be unique.")
            if error is None:
                seen.add((level.item_id, level.location_id))
                error = self._set_quantity_error(level, quantity, path, name, rules, ignore_compare)
            if error is not None:
                errors.append(error)
            elif name in SETTABLE_QUANTITY_NAMES:
                planned.append((level, quantity["quantity"] - level.quantity(name)))
        if errors and not partial_apply:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}, []
        changes = []
        for level, delta in planned:
            changes.extend(self._apply(level, name, delta))
        group = self._group(given, changes) if changes else None
        return {"inventoryAdjustmentGroup": group, "userErrors": errors}, changes

    def _set_quantity_error(self, level, quantity, path, name, rules, ignore_compare):
        wanted = quantity["quantity"]
        if wanted < 0:
            return user_error(path + ["quantity"], "INVALID_QUANTITY_NEGATIVE", "The quantity can't be negative.")
        if name not in SETTABLE_QUANTITY_NAMES:
            return None
        current = level.quantity(name)
        stale = self._compare_error(quantity, path, current, rules, ignore_compare)
        if stale is not None:
            return stale
        delta = wanted - current
        for total in (level.quantity("available") + delta, level.quantity("on_hand") + delta):
            if total > QUANTITY_LIMIT:
                return user_error(path + ["quantity"], "INVALID_QUANTITY_TOO_HIGH",
                                  "The total quantity can't be higher than 1,000,000,000.")
            if total < -QUANTITY_LIMIT:
                return user_error(path + ["quantity"], "INVALID_QUANTITY_TOO_LOW",
                                  "The total quantity can't be lower than -1,000,000,000.")
        return None

    @staticmethod
    def _compare_error(quantity, path, current, rules, ignore_compare):
        """Compare-and-set: changeFromQuantity when the request names it (2026-01 on; an
        explicit null skips the check), else compareQuantity up to 2026-01, where a quantity
        without one needs ignoreCompareQuantity."""
        if rules.change_from_quantity and "changeFromQuantity" in quantity:
            expected = quantity["changeFromQuantity"]
            if expected is not None and expected != current:
                return user_error(path + ["changeFromQuantity"], "CHANGE_FROM_QUANTITY_STALE",
                                  CHANGE_FROM_STALE_MESSAGE)
            return None
        if not rules.compare_quantity or ignore_compare:
            return None
        expected = quantity.get("compareQuantity")
        if expected is None:
            return user_error(path + ["compareQuantity"], "COMPARE_QUANTITY_REQUIRED",
                              "The compareQuantity argument must be given to each quantity or ignored "
                              "using ignoreCompareQuantity.")
        if expected != current:
            return user_error(path + ["compareQuantity"], "COMPARE_QUANTITY_STALE",
                              "The compareQuantity value does not match persisted value.")
        return None

    # -- inventoryAdjustQuantities ---------------------------------------------------------

    def adjust_quantities(self, given, rules, partial_apply):
        """Runs one inventoryAdjustQuantities input (names available and on_hand only)."""
        name = given.get("name")
        errors = self._common_input_errors(given, SETTABLE_QUANTITY_NAMES, "INVALID_QUANTITY_NAME",
                                           "The specified quantity name is invalid.")
        planned = []
        for index, change in enumerate(given.get("changes") or []):
            path = ["input", "changes", str(index)]
            level, error = self._target(change, path, "The inventory item is not stocked at the location.")
            if error is None:
                error = self._adjust_error(level, change, path, name, rules)
            if error is not None:
                errors.append(error)
            elif name in SETTABLE_QUANTITY_NAMES:
                planned.append((level, change["delta"]))
        if errors and not partial_apply:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}, []
        changes = []
        for level, delta in planned:
            changes.extend(self._apply(level, name, delta))
        group = self._group(given, changes) if changes else None
        return {"inventoryAdjustmentGroup": group, "userErrors": errors}, changes

    def _adjust_error(self, level, change, path, name, rules):
        if name not in SETTABLE_QUANTITY_NAMES:
            return None
        ledger = change.get("ledgerDocumentUri")
        if name == "available" and ledger is not None:
            return user_error(path + ["ledgerDocumentUri"], "INVALID_AVAILABLE_DOCUMENT",
                              "A ledger document URI is not allowed when adjusting available.")
        if name != "available" and ledger is None:
            return user_error(path + ["ledgerDocumentUri"], "INVALID_QUANTITY_DOCUMENT",
                              "A ledger document URI is required except when adjusting available.")
        current = level.quantity(name)
        if rules.change_from_quantity and change.get("changeFromQuantity") is not None \
                and change["changeFromQuantity"] != current:
            return user_error(path + ["changeFromQuantity"], "CHANGE_FROM_QUANTITY_STALE",
                              CHANGE_FROM_STALE_MESSAGE)
        result = current + change["delta"]
        if result > ADJUST_LIMIT:
            return user_error(path + ["delta"], "INVALID_QUANTITY_TOO_HIGH",
                              "The quantity can't be higher than 2,000,000,000.")
        if result < -ADJUST_LIMIT:
            return user_error(path + ["delta"], "INVALID_QUANTITY_TOO_LOW",
                              "The quantity can't be lower than -2,000,000,000.")
        return None

    # -- shared by both mutations ----------------------------------------------------------

    @staticmethod
    def _common_input_errors(given, names, name_code, name_message):
        errors = []
        if given.get("name") not in names:
            errors.append(user_error(["input", "name"], name_code, name_message))
        if given.get("reason") not in REASONS:
            errors.append(user_error(["input", "reason"], "INVALID_REASON", "The specified reason is invalid."))
        reference = given.get("referenceDocumentUri")
        if reference is not None and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://?\S+$", reference):
            errors.append(user_error(["input", "referenceDocumentUri"], "INVALID_REFERENCE_DOCUMENT",
                                     "The specified reference document is invalid."))
        return errors

    def _target(self, entry, path, not_stocked_message):
        """The stocked level an entry names, or (None, userError)."""
        item = self.item_by_gid(entry.get("inventoryItemId"))
        if item is None:
            return None, user_error(path + ["inventoryItemId"], "INVALID_INVENTORY_ITEM",
                                    "The specified inventory item could not be found.")
        location = self.location_by_gid(entry.get("locationId"))
        if location is None:
            return None, user_error(path + ["locationId"], "INVALID_LOCATION",
                                    "The specified location could not be found.")
        if not item.mutable:
            return None, user_error(path + ["inventoryItemId"], "NON_MUTABLE_INVENTORY_ITEM",
                                    "The specified inventory item is not allowed to be adjusted via API.")
        level = self.stocked_level(item, location)
        if level is None:
            return None, user_error(path + ["locationId"], "ITEM_NOT_STOCKED_AT_LOCATION", not_stocked_message)
        return level, None

    def _apply(self, level, name, delta):
        """Moves `name` by `delta`; available and on_hand move together.  Returns the changes."""
        if delta == 0:
            return []
        level.quantities["available"] += delta
        level.updated_at = self.clock.now()
        names = ("available", "on_hand") if name == "available" else ("on_hand", "available")
        return [{"item": level.item_id, "location": level.location_id, "name": n, "delta": delta,
                 "quantityAfterChange": level.quantity(n)} for n in names]

    def _group(self, given, changes):
        number = self.next_group_id
        self.next_group_id += 1
        return {
            "__typename": "InventoryAdjustmentGroup",
            "id": gid("InventoryAdjustmentGroup", number),
            "createdAt": iso_time(self.clock.now()),
            "reason": given.get("reason"),
            "referenceDocumentUri": given.get("referenceDocumentUri"),
            "app": None,
            "staffMember": None,
            "changes": [{"__typename": "InventoryChange", "name": c["name"], "delta": c["delta"],
                         "quantityAfterChange": c["quantityAfterChange"], "ledgerDocumentUri": None,
                         "item": self.item_view(self.items[c["item"]]),
                         "location": self.location_view(self.locations[c["location"]])} for c in changes],
        }

    # -- read-side views (resolved lazily, always from the current state) -----------------

    @staticmethod
    def item_view(item):
        return {"__typename": "InventoryItem", "id": gid("InventoryItem", item.id), "sku": item.sku,
                "tracked": item.tracked, "_item": item.id}

    @staticmethod
    def location_view(location):
        return {"__typename": "Location", "id": gid("Location", location.id), "name": location.name,
                "isActive": location.active, "_location": location.id}

    @staticmethod
    def level_view(level):
        return {"__typename": "InventoryLevel",
                "id": "gid://shopify/InventoryLevel/%d?inventory_item_id=%d" % (level.id, level.item_id),
                "canDeactivate": True, "createdAt": iso_time(level.created_at),
                "updatedAt": iso_time(level.updated_at), "_level": (level.item_id, level.location_id)}


# ----------------------------------------------------------------------------------------
# Orders, and the webhooks that announce them
# ----------------------------------------------------------------------------------------

ORDER_TOPICS = ("orders/create", "orders/cancelled", "refunds/create", "orders/edited")
DEFAULT_TOPICS = ORDER_TOPICS[:3]        # a subscription without "topics"
RESTOCK_TYPES = ("no_restock", "cancel", "return", "legacy_restock")
MAX_PAGE = 250                           # first/last of a connection, as Shopify
FIRST_ORDER_ID = 5_000_000_001           # ids above 2^32, as real ones are
FIRST_LINE_ID = 13_000_000_001
FIRST_REFUND_ID = 900_000_001
FIRST_EDIT_ID = 700_000_001              # order edits (SalesAgreement ids)
SEARCH_TERM = re.compile(r"^(updated_at|created_at|processed_at):(>=|<=|>|<)?('([^']*)'|\"([^\"]*)\"|(\S+))$")


def rest_time(seconds, offset_minutes):
    """A REST (webhook) time: the shop's UTC offset, as in "2026-11-27T04:30:00-05:00"."""
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    return datetime.datetime.fromtimestamp(seconds, zone).isoformat(timespec="seconds")


def parse_time(value):
    """Epoch seconds of a number or an RFC 3339 text ("2026-11-27T09:30:00Z", offsets allowed)."""
    if isinstance(value, bool):
        raise ValueError("a time must be epoch seconds or RFC 3339 text")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a time must be epoch seconds or RFC 3339 text")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an RFC 3339 time: %r" % value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


@dataclasses.dataclass
class OrderLine:
    id: int
    sku: object                  # str or None (a custom item)
    quantity: int
    level: object = None         # (item_id, location_id) whose available it lowered, or None
    restocked: int = 0           # units given back (cancel, refunds)
    added: int = 0               # units order edits added (a line an edit added: all of them)
    removed: int = 0             # units order edits removed
    properties: tuple = ()       # ((name, value), ...): the line's properties, as checkout set them

    @property
    def ordered(self):
        """Units ordered, including removed and refunded ones (LineItem.quantity)."""
        return self.quantity + self.added

    @property
    def current(self):
        """Units still ordered (LineItem.currentQuantity)."""
        return self.quantity + self.added - self.removed - self.restocked


@dataclasses.dataclass
class Order:
    id: int
    name: str
    source_name: str
    location_id: object          # the POS location (int) or None
    created_at: float
    updated_at: float
    lines: list
    cancelled_at: object = None
    refunds: list = dataclasses.field(default_factory=list)
    edits: list = dataclasses.field(default_factory=list)   # {"id", "created_at", "sales": [(line, delta)]}


class Orders:
    """Orders created through the control API, their effect on the levels, and their views
    (webhook payloads and GraphQL objects)."""

    def __init__(self, clock, listings, config):
        self.clock = clock
        self.listings = listings
        self.config = config
        self.orders = {}
        self.next_order_id = FIRST_ORDER_ID
        self.next_line_id = FIRST_LINE_ID
        self.next_refund_id = FIRST_REFUND_ID
        self.next_edit_id = FIRST_EDIT_ID

    def _touch(self, order):
        """updated_at moves forward with every change, never backwards (the clock may be set)."""
        order.updated_at = max(self.clock.now(), order.updated_at)

    def _level_for(self, sku, location_id):
        """The level an order line draws on: its SKU's item at location_id, else at the lowest
        location where the item is stocked; None when the SKU maps to no seeded item."""
        items = [i for i in self.listings.items.values() if i.sku == sku and i.exists]
        if not items or sku is None:
            return None
        item = min(items, key=lambda i: i.id)
        candidates = sorted((l for l in self.listings.levels.values() if l.item_id == item.id and l.stocked),
                            key=lambda l: l.location_id)
        if location_id is not None:
            candidates = [l for l in candidates if l.location_id == location_id]
        return candidates[0] if candidates else None

    def create(self, spec):
        lines_spec = spec.get("line_items")
        if not isinstance(lines_spec, list) or not lines_spec:
            raise ValueError("an order needs line_items: [{sku, quantity}]")
        source = spec.get("source_name", "web")
        if not isinstance(source, str) or not source:
            raise ValueError("source_name must be a text")
        location_id = None
        if spec.get("location_id") is not None:
            location_id = Listings._required_id(spec["location_id"], "Location")
        number = spec.get("id", self.next_order_id)
        if isinstance(number, bool) or not isinstance(number, int) or number <= 0 or number in self.orders:
            raise ValueError("id must be a new positive integer")
        now = self.clock.now()
        created = parse_time(spec["created_at"]) if "created_at" in spec else now
        lines = []
        for entry in lines_spec:
            if not isinstance(entry, dict):
                raise ValueError("a line item must be an object")
            quantity = Listings._required_int(entry.get("quantity", 1), "quantity")
            if quantity < 1 or quantity > 1_000_000:
                raise ValueError("quantity must be 1..1000000")
            sku = entry.get("sku")
            if sku is not None and not isinstance(sku, str):
                raise ValueError("sku must be a text or null")
            properties = entry.get("properties", [])
            if not isinstance(properties, list) or not all(
                    isinstance(p, dict) and isinstance(p.get("name"), str) and
                    isinstance(p.get("value"), (str, type(None))) for p in properties):
                raise ValueError("properties must be a list of {name, value}")
            lines.append(OrderLine(self.next_line_id, sku, quantity,
                                   properties=tuple((p["name"], p.get("value")) for p in properties)))
            self.next_line_id += 1
        # Inventory: available falls and committed rises at the line's level (the POS
        # location for a till sale, else the item's first stocked location, or the one named
        # by fulfillment_location_id).
        fulfilment = location_id
        if spec.get("fulfillment_location_id") is not None:
            fulfilment = Listings._required_id(spec["fulfillment_location_id"], "Location")
        for line in lines:
            level = self._level_for(line.sku, fulfilment)
            if level is not None:
                level.quantities["available"] -= line.quantity
                level.quantities["committed"] += line.quantity
                level.updated_at = now
                line.level = (level.item_id, level.location_id)
        order = Order(number, "#%d" % (1000 + len(self.orders) + 1), source, location_id, created,
                      max(now, created), lines)
        self.orders[number] = order
        self.next_order_id = max(self.next_order_id, number) + 1
        return order

    def _order(self, spec, key="id"):
        number = spec.get(key, spec.get("order_id"))
        if isinstance(number, str):
            number = parse_gid(number, "Order")
        order = self.orders.get(number) if isinstance(number, int) and not isinstance(number, bool) else None
        if order is None:
            raise ValueError("unknown order %r" % spec.get(key, spec.get("order_id")))
        return order

    def _give_back(self, line, quantity, from_committed=True):
        quantity = min(quantity, line.current)
        if quantity <= 0:
            return 0
        line.restocked += quantity
        level = self.listings.levels.get(line.level) if line.level is not None else None
        if level is not None:
            level.quantities["available"] += quantity
            if from_committed:
                level.quantities["committed"] -= min(quantity, level.quantities["committed"])
            level.updated_at = self.clock.now()
        return quantity

    def cancel(self, spec):
        """Cancels an order.  As Shopify does, the cancellation refunds the units still
        ordered: one refund whose lines are restocked `cancel` (`restock`, the default) or
        `no_restock`, kept in the order's refunds.  `refund: false` cancels without one (as
        older API versions and the stand-in before did).  Returns (order, refund or None)."""
        order = self._order(spec)
        if order.cancelled_at is not None:
            raise ValueError("order %d is already cancelled" % order.id)
        restock = spec.get("restock", True)
        if not isinstance(restock, bool):
            raise ValueError("restock must be true or false")
        with_refund = spec.get("refund", True)
        if not isinstance(with_refund, bool):
            raise ValueError("refund must be true or false")
        now = self.clock.now()
        refund_lines = []
        for line in order.lines:
            quantity = line.current
            if quantity <= 0:
                continue
            if with_refund:
                refund_lines.append({"id": self.next_refund_id * 10 + len(refund_lines), "line": line,
                                     "quantity": quantity,
                                     "restock_type": "cancel" if restock else "no_restock"})
            if restock:
                self._give_back(line, quantity)
        refund = None
        if refund_lines:
            refund = {"id": self.next_refund_id, "created_at": now, "lines": refund_lines}
            self.next_refund_id += 1
            order.refunds.append(refund)
        order.cancelled_at = now
        self._touch(order)
        return order, refund

    def refund(self, spec):
        order = self._order(spec)
        entries = spec.get("lines", spec.get("refund_line_items"))
        if not isinstance(entries, list) or not entries:
            raise ValueError("a refund needs lines: [{line_item_id, quantity, restock_type}]")
        by_id = {line.id: line for line in order.lines}
        refund_lines = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ValueError("a refund line must be an object")
            line = by_id.get(entry.get("line_item_id"))
            if line is None:
                raise ValueError("line_item_id %r is not a line of order %d" % (entry.get("line_item_id"), order.id))
            quantity = Listings._required_int(entry.get("quantity", line.quantity), "quantity")
            restock = entry.get("restock_type", "return")
            if restock not in RESTOCK_TYPES:
                raise ValueError("restock_type must be one of " + ", ".join(RESTOCK_TYPES))
            if quantity < 1 or quantity > line.quantity:
                raise ValueError("quantity must be 1..%d" % line.quantity)
            if restock != "no_restock":
                self._give_back(line, quantity)
            refund_lines.append({"id": self.next_refund_id * 10 + index, "line": line, "quantity": quantity,
                                 "restock_type": restock})
        refund = {"id": self.next_refund_id, "created_at": self.clock.now(), "lines": refund_lines}
        exchange = spec.get("exchange", [])
        if not isinstance(exchange, list):
            raise ValueError("exchange must be a list of {sku, quantity}")
        if exchange:
            # An exchange: the return that this refund belongs to sends other items out. Each
            # exchange line item gets a new line item id; its units leave available as an
            # order's do. (Kept on the return: the order's lineItems and agreements here do
            # not list exchange lines.)
            refund["return_id"] = self.next_refund_id * 100
            refund["exchange"] = []
            for index, entry in enumerate(exchange):
                quantity = Listings._required_int(entry.get("quantity", 1), "quantity") \
                    if isinstance(entry, dict) else 0
                if not isinstance(entry, dict) or not isinstance(entry.get("sku"), str) or \
                        not 1 <= quantity <= 1_000_000:
                    raise ValueError("an exchange line is {sku, quantity 1..1000000}")
                level = self._level_for(entry["sku"], None)
                if level is not None:
                    level.quantities["available"] -= quantity
                    level.quantities["committed"] += quantity
                refund["exchange"].append({"id": refund["return_id"] + index + 1, "line_id": self.next_line_id,
                                           "sku": entry["sku"], "quantity": quantity})
                self.next_line_id += 1
        self.next_refund_id += 1
        order.refunds.append(refund)
        self._touch(order)
        return order, refund

    def edit(self, spec):
        """A committed order edit: `lines: [{line_item_id, delta}]` changes a line's quantity
        (delta > 0 adds units, < 0 removes unfulfilled ones), `add: [{sku, quantity}]` adds
        new lines.  Inventory moves as it does for an order (available and committed)."""
        order = self._order(spec)
        if order.cancelled_at is not None:
            raise ValueError("order %d is cancelled: it cannot be edited" % order.id)
        changes, additions = spec.get("lines", []), spec.get("add", [])
        if not isinstance(changes, list) or not isinstance(additions, list) or not (changes or additions):
            raise ValueError("an edit needs lines: [{line_item_id, delta}] or add: [{sku, quantity}]")
        by_id = {line.id: line for line in order.lines}
        planned = []
        for entry in changes:
            if not isinstance(entry, dict):
                raise ValueError("an edited line must be an object")
            line = by_id.get(entry.get("line_item_id"))
            if line is None:
                raise ValueError("line_item_id %r is not a line of order %d" % (entry.get("line_item_id"), order.id))
            delta = Listings._required_int(entry.get("delta"), "delta")
            if delta == 0 or delta > 1_000_000 or -delta > line.current:
                raise ValueError("delta must be non-zero, at most 1000000, and remove at most %d" % line.current)
            planned.append((line, delta))
        new_lines = []
        for entry in additions:
            if not isinstance(entry, dict):
                raise ValueError("an added line must be an object")
            quantity = Listings._required_int(entry.get("quantity", 1), "quantity")
            sku = entry.get("sku")
            if quantity < 1 or quantity > 1_000_000 or (sku is not None and not isinstance(sku, str)):
                raise ValueError("an added line needs quantity 1..1000000 and a sku text or null")
            new_lines.append((sku, quantity))
        now = self.clock.now()
        for sku, quantity in new_lines:
            line = OrderLine(self.next_line_id, sku, 0)
            self.next_line_id += 1
            level = self._level_for(sku, order.location_id)
            if level is not None:
                line.level = (level.item_id, level.location_id)
            order.lines.append(line)
            planned.append((line, quantity))
        for line, delta in planned:
            level = self.listings.levels.get(line.level) if line.level is not None else None
            if delta > 0:
                line.added += delta
            else:
                line.removed -= delta
            if level is not None:
                level.quantities["available"] -= delta
                level.quantities["committed"] = max(0, level.quantities["committed"] + delta)
                level.updated_at = now
        edit = {"id": self.next_edit_id, "created_at": now, "sales": planned}
        self.next_edit_id += 1
        order.edits.append(edit)
        self._touch(order)
        return order, edit

    # -- views ---------------------------------------------------------------------------

    def _rest_line(self, line):
        return {"id": line.id, "admin_graphql_api_id": gid("LineItem", line.id), "sku": line.sku,
                "quantity": line.ordered, "current_quantity": line.current,
                "variant_inventory_management": "shopify" if line.level is not None else None,
                "properties": [{"name": name, "value": value} for name, value in line.properties]}

    def rest_refund(self, order, refund):
        offset = self.config.shop_utc_offset_minutes
        return {"id": refund["id"], "admin_graphql_api_id": gid("Refund", refund["id"]), "order_id": order.id,
                "created_at": rest_time(refund["created_at"], offset),
                "refund_line_items": [{
                    "id": entry["id"], "line_item_id": entry["line"].id, "quantity": entry["quantity"],
                    "restock_type": entry["restock_type"],
                    "location_id": entry["line"].level[1] if entry["line"].level is not None else None,
                    "line_item": self._rest_line(entry["line"])} for entry in refund["lines"]],
                **({"return": {
                    "id": refund["return_id"], "admin_graphql_api_id": gid("Return", refund["return_id"]),
                    "exchange_line_items": [{
                        "id": line["id"], "quantity": line["quantity"],
                        "line_item": {"id": line["line_id"], "admin_graphql_api_id": gid("LineItem", line["line_id"]),
                                      "sku": line["sku"], "quantity": line["quantity"]}}
                        for line in refund["exchange"]]}} if refund.get("exchange") else {})}

    def rest_order(self, order):
        """The order as the REST API and the order webhooks carry it (the fields used here)."""
        offset = self.config.shop_utc_offset_minutes
        return {"id": order.id, "admin_graphql_api_id": gid("Order", order.id), "name": order.name,
                "created_at": rest_time(order.created_at, offset),
                "updated_at": rest_time(order.updated_at, offset),
                "processed_at": rest_time(order.created_at, offset),
                "cancelled_at": rest_time(order.cancelled_at, offset) if order.cancelled_at is not None else None,
                "cancel_reason": "customer" if order.cancelled_at is not None else None,
                "source_name": order.source_name,
                "location_id": order.location_id,
                "line_items": [self._rest_line(line) for line in order.lines],
                "refunds": [self.rest_refund(order, refund) for refund in order.refunds]}

    def rest_order_edit(self, order, edit):
        """The orders/edited payload: the edit, its lines' additions and removals as deltas."""
        offset = self.config.shop_utc_offset_minutes
        return {"order_edit": {
            "id": edit["id"], "app_id": None, "created_at": rest_time(edit["created_at"], offset),
            "notify_customer": False, "order_id": order.id, "staff_note": "", "user_id": None,
            "line_items": {
                "additions": [{"id": line.id, "delta": delta} for line, delta in edit["sales"] if delta > 0],
                "removals": [{"id": line.id, "delta": -delta} for line, delta in edit["sales"] if delta < 0]},
            "discounts": {"additions": [], "removals": []},
            "shipping_lines": {"additions": [], "removals": []}}}

    def agreement_views(self, order):
        """The order's sales agreements: the order (its lines as first ordered) and its edits."""
        original = [(line, line.quantity) for line in order.lines if line.quantity > 0]
        views = [{"__typename": "OrderAgreement", "id": gid("SalesAgreement", order.id), "_key": 0,
                  "happenedAt": iso_time(order.created_at), "reason": "ORDER", "_sales": original,
                  "_number": order.id}]
        for edit in order.edits:
            views.append({"__typename": "OrderEditAgreement", "id": gid("SalesAgreement", edit["id"]),
                          "_key": edit["id"], "happenedAt": iso_time(edit["created_at"]),
                          "reason": "ORDER_EDIT", "_sales": edit["sales"], "_number": edit["id"]})
        return views

    @staticmethod
    def sale_views(agreement):
        return [{"__typename": "ProductSale", "id": gid("Sale", agreement["_number"] * 1000 + index),
                 "_key": index, "actionType": "ORDER" if delta > 0 else "UPDATE", "lineType": "PRODUCT",
                 "quantity": delta, "lineItem": Orders.line_view(line)}
                for index, (line, delta) in enumerate(agreement["_sales"])]

    def order_view(self, order):
        location = self.listings.locations.get(order.location_id) if order.location_id is not None else None
        location_view = self.listings.location_view(location) if location is not None else None
        return {"__typename": "Order", "id": gid("Order", order.id), "legacyResourceId": str(order.id),
                "name": order.name, "createdAt": iso_time(order.created_at),
                "updatedAt": iso_time(order.updated_at), "processedAt": iso_time(order.created_at),
                "cancelledAt": iso_time(order.cancelled_at) if order.cancelled_at is not None else None,
                "sourceName": order.source_name, "physicalLocation": location_view,
                "retailLocation": location_view, "_order": order.id}

    @staticmethod
    def line_view(line):
        return {"__typename": "LineItem", "id": gid("LineItem", line.id), "sku": line.sku,
                "quantity": line.ordered, "currentQuantity": line.current,
                "name": line.sku or "Custom item",
                "customAttributes": [{"__typename": "Attribute", "key": name, "value": value}
                                     for name, value in line.properties]}

    def snapshot(self):
        return [dict(self.rest_order(o), updatedAt=iso_time(o.updated_at))
                for o in sorted(self.orders.values(), key=lambda o: o.id)]

    # -- search --------------------------------------------------------------------------

    @staticmethod
    def search(query):
        """A predicate for Shopify's search syntax, as far as the stand-in reads it: terms
        `updated_at|created_at|processed_at:[>|>=|<|<=]VALUE` (VALUE quoted or not), joined by
        spaces or AND.  Anything else is refused (a field error), never silently ignored."""
        tests = []
        for term in (query or "").replace(" AND ", " ").split():
            match = SEARCH_TERM.match(term)
            if match is None:
                raise graphql.GraphQLError("The stand-in does not read the search term %r" % term,
                                           extensions={"code": "INVALID_SEARCH_QUERY"})
            field, operator = match.group(1), match.group(2) or ":"
            raw = next(g for g in (match.group(4), match.group(5), match.group(6)) if g is not None)
            try:
                value = parse_time(raw if "T" in raw else raw + "T00:00:00Z")
            except ValueError:
                raise graphql.GraphQLError("Invalid time in search term %r" % term,
                                           extensions={"code": "INVALID_SEARCH_QUERY"})
            attribute = {"updated_at": "updated_at", "created_at": "created_at", "processed_at": "created_at"}[field]
            tests.append((attribute, operator, value))

        def accepts(order):
            for attribute, operator, value in tests:
                # Shopify's search compares whole seconds.
                have = int(getattr(order, attribute))
                if not {">": have > value, ">=": have >= value, "<": have < value, "<=": have <= value,
                        ":": have == int(value)}[operator]:
                    return False
            return True
        return accepts


def webhook_headers(delivery, config):
    """Shopify's headers of one delivery: X-Shopify-Topic, X-Shopify-Hmac-SHA256 (base64
    HMAC-SHA256 of the body keyed with the subscription's secret), X-Shopify-Webhook-Id,
    X-Shopify-Event-Id, X-Shopify-Shop-Domain, X-Shopify-API-Version, X-Shopify-Triggered-At."""
    import hashlib
    import hmac
    signature = base64.b64encode(hmac.new(delivery.secret.encode(), delivery.body, hashlib.sha256).digest())
    return {"X-Shopify-Topic": delivery.topic,
            "X-Shopify-Hmac-SHA256": signature.decode(), "X-Shopify-Webhook-Id": delivery.webhook_id,
            "X-Shopify-Event-Id": delivery.event_id, "X-Shopify-Shop-Domain": config.shop_domain,
            "X-Shopify-API-Version": config.webhook_api_version,
            "X-Shopify-Triggered-At": iso_time(time.time())}


class Webhooks(webhooks.Webhooks):
    """Order events delivered the way Shopify does (webhooks.py; headers: webhook_headers)."""

    def __init__(self, config):
        super().__init__(config, ORDER_TOPICS, webhook_headers, default_topics=DEFAULT_TOPICS)


# ----------------------------------------------------------------------------------------
# Resolvers
# ----------------------------------------------------------------------------------------

class Resolvers:
    """Binds the schema's fields to the listings.  `info.context` is the RequestContext."""

    @staticmethod
    def attach(schema):
        r = Resolvers
        make_executable(schema)
        for type_name, field_name, resolver in (
            ("Mutation", "inventorySetQuantities", r.mutation),
            ("Mutation", "inventoryAdjustQuantities", r.mutation),
            ("InventoryAdjustmentGroup", "changes", r.group_changes),
            ("QueryRoot", "inventoryItem", r.inventory_item),
            ("QueryRoot", "inventoryLevel", r.inventory_level),
            ("QueryRoot", "location", r.location),
            ("QueryRoot", "node", r.node),
            ("QueryRoot", "nodes", r.nodes),
            ("InventoryItem", "inventoryLevel", r.item_level),
            ("InventoryItem", "inventoryLevels", r.item_levels),
            ("InventoryItem", "createdAt", r.item_time),
            ("InventoryItem", "updatedAt", r.item_time),
            ("Location", "inventoryLevel", r.location_level),
            ("Location", "inventoryLevels", r.location_levels),
            ("InventoryLevel", "item", r.level_item),
            ("InventoryLevel", "location", r.level_location),
            ("InventoryLevel", "quantities", r.level_quantities),
            ("QueryRoot", "order", r.order),
            ("QueryRoot", "orders", r.orders),
            ("Order", "lineItems", r.order_lines),
            ("Order", "refunds", r.order_refunds),
            ("Order", "agreements", r.order_agreements),
            ("OrderAgreement", "sales", r.agreement_sales),
            ("OrderEditAgreement", "sales", r.agreement_sales),
            ("Refund", "refundLineItems", r.refund_lines),
            ("Return", "exchangeLineItems", r.exchange_lines),
        ):
            set_resolver(schema, type_name, field_name, resolver)
        schema.get_type("Node").resolve_type = r.resolve_type
        schema.get_type("SalesAgreement").resolve_type = r.resolve_type
        schema.get_type("Sale").resolve_type = r.resolve_type
        return schema

    @staticmethod
    def resolve_type(value, info, *_):
        return value["__typename"]

    @staticmethod
    def mutation(root, info, **_):
        return info.context.run_mutation(field_nodes(info)[0])

    @staticmethod
    def group_changes(group, info, inventoryItemIds=None, locationIds=None, quantityNames=None):
        changes = group["changes"]
        if inventoryItemIds is not None:
            changes = [c for c in changes if c["item"]["id"] in inventoryItemIds]
        if locationIds is not None:
            changes = [c for c in changes if c["location"]["id"] in locationIds]
        if quantityNames is not None:
            changes = [c for c in changes if c["name"] in quantityNames]
        return changes

    @staticmethod
    def inventory_item(root, info, id):
        listings = info.context.listings
        item = listings.item_by_gid(id)
        return listings.item_view(item) if item is not None else None

    @staticmethod
    def location(root, info, id=None):
        listings = info.context.listings
        location = listings.locations.get(parse_gid(id, "Location") if isinstance(id, str) else None)
        return listings.location_view(location) if location is not None else None

    @staticmethod
    def inventory_level(root, info, id):
        match = re.match(r"^gid://shopify/InventoryLevel/(\d+)(\?.*)?$", id or "")
        if match is None:
            return None
        listings = info.context.listings
        for level in listings.levels.values():
            if level.id == int(match.group(1)) and level.stocked and listings.items[level.item_id].exists:
                return listings.level_view(level)
        return None

    @staticmethod
    def node(root, info, id):
        kind = GID.match(id or "")
        if kind is None:
            return None
        if kind.group(1) == "InventoryItem":
            return Resolvers.inventory_item(root, info, id)
        if kind.group(1) == "Location":
            return Resolvers.location(root, info, id)
        if kind.group(1) == "InventoryLevel":
            return Resolvers.inventory_level(root, info, id)
        return None

    @staticmethod
    def nodes(root, info, ids):
        return [Resolvers.node(root, info, one) for one in ids]

    @staticmethod
    def item_time(item, info):
        level_times = [l.updated_at for l in info.context.listings.levels.values() if l.item_id == item["_item"]]
        return iso_time(min(level_times) if level_times else info.context.clock.now())

    @staticmethod
    def item_level(item, info, locationId):
        listings = info.context.listings
        location = listings.location_by_gid(locationId)
        level = listings.stocked_level(listings.items[item["_item"]], location) if location else None
        return listings.level_view(level) if level is not None else None

    @staticmethod
    def location_level(location, info, inventoryItemId):
        listings = info.context.listings
        item = listings.item_by_gid(inventoryItemId)
        level = listings.stocked_level(item, listings.locations[location["_location"]]) if item else None
        return listings.level_view(level) if level is not None else None

    @staticmethod
    def item_levels(item, info, **arguments):
        listings = info.context.listings
        levels = [l for l in listings.levels.values() if l.item_id == item["_item"] and l.stocked
                  and listings.locations[l.location_id].active]
        return Resolvers._connection(listings, levels, arguments)

    @staticmethod
    def location_levels(location, info, **arguments):
        listings = info.context.listings
        levels = [l for l in listings.levels.values() if l.location_id == location["_location"] and l.stocked
                  and listings.items[l.item_id].exists]
        return Resolvers._connection(listings, levels, arguments)

    @staticmethod
    def _connection(listings, levels, arguments):
        """A Relay connection over levels ordered by id; cursors are base64 level ids."""
        first, last = arguments.get("first"), arguments.get("last")
        if first is None and last is None:
            raise graphql.GraphQLError("you must provide one of first or last")
        levels = sorted(levels, key=lambda l: l.id, reverse=bool(arguments.get("reverse")))
        cursor = lambda level: base64.b64encode(b"level:%d" % level.id).decode()
        after, before = arguments.get("after"), arguments.get("before")
        if after is not None:
            index = next((i for i, l in enumerate(levels) if cursor(l) == after), None)
            levels = levels[index + 1:] if index is not None else levels
        if before is not None:
            index = next((i for i, l in enumerate(levels) if cursor(l) == before), None)
            levels = levels[:index] if index is not None else levels
        more_after = more_before = False
        if first is not None:
            more_after = len(levels) > first
            levels = levels[:max(0, first)]
        if last is not None:
            more_before = len(levels) > last
            levels = levels[max(0, len(levels) - last):]
        edges = [{"cursor": cursor(l), "node": listings.level_view(l)} for l in levels]
        return {"edges": edges, "nodes": [e["node"] for e in edges],
                "pageInfo": {"hasNextPage": more_after, "hasPreviousPage": more_before or after is not None,
                             "startCursor": edges[0]["cursor"] if edges else None,
                             "endCursor": edges[-1]["cursor"] if edges else None}}

    @staticmethod
    def _check_page(arguments):
        first, last = arguments.get("first"), arguments.get("last")
        if first is None and last is None:
            raise graphql.GraphQLError("you must provide one of first or last")
        for name in ("first", "last"):
            if arguments.get(name) is not None and not 0 <= arguments[name] <= MAX_PAGE:
                raise graphql.GraphQLError("The %s argument must be 0..%d" % (name, MAX_PAGE),
                                           extensions={"code": "BAD_REQUEST"})

    @staticmethod
    def _page(entries, arguments, key, view):
        """A Relay connection over entries sorted by key(entry) (a tuple, unique); a cursor is
        the base64 JSON of its sort key, so a page boundary holds while entries change."""
        Resolvers._check_page(arguments)
        first, last = arguments.get("first"), arguments.get("last")
        entries = sorted(entries, key=key, reverse=bool(arguments.get("reverse")))
        cursor = lambda entry: base64.b64encode(json.dumps(list(key(entry))).encode()).decode()

        def decode(text):
            try:
                value = json.loads(base64.b64decode(text.encode(), validate=True).decode())
            except (ValueError, UnicodeDecodeError):
                raise graphql.GraphQLError("Invalid cursor %r" % text, extensions={"code": "BAD_REQUEST"})
            if not isinstance(value, list):
                raise graphql.GraphQLError("Invalid cursor %r" % text, extensions={"code": "BAD_REQUEST"})
            return tuple(value)
        after, before = arguments.get("after"), arguments.get("before")
        descending = bool(arguments.get("reverse"))
        if after is not None:
            mark = decode(after)
            entries = [e for e in entries if (key(e) < mark if descending else key(e) > mark)]
        if before is not None:
            mark = decode(before)
            entries = [e for e in entries if (key(e) > mark if descending else key(e) < mark)]
        more_after = more_before = False
        if first is not None:
            more_after = len(entries) > first
            entries = entries[:first]
        if last is not None:
            more_before = len(entries) > last
            entries = entries[max(0, len(entries) - last):]
        edges = [{"cursor": cursor(e), "node": view(e)} for e in entries]
        return {"edges": edges, "nodes": [e["node"] for e in edges],
                "pageInfo": {"hasNextPage": more_after, "hasPreviousPage": more_before or after is not None,
                             "startCursor": edges[0]["cursor"] if edges else None,
                             "endCursor": edges[-1]["cursor"] if edges else None}}

    @staticmethod
    def order(root, info, id):
        orders = info.context.standin.orders
        number = parse_gid(id, "Order") if isinstance(id, str) else None
        order = orders.orders.get(number)
        return orders.order_view(order) if order is not None else None

    ORDER_SORT = {"UPDATED_AT": "updated_at", "CREATED_AT": "created_at", "PROCESSED_AT": "created_at"}

    @staticmethod
    def orders(root, info, query=None, sortKey="PROCESSED_AT", **arguments):
        orders = info.context.standin.orders
        accepts = Orders.search(query)
        sort_value = Resolvers.ORDER_SORT.get(getattr(sortKey, "value", sortKey))
        if sort_value is None:                   # ID, and the keys the stand-in does not model
            key = lambda order: (order.id,)
        else:
            key = lambda order: (int(getattr(order, sort_value)), order.id)
        selected = [o for o in orders.orders.values() if accepts(o)]
        return Resolvers._page(selected, arguments, key, orders.order_view)

    @staticmethod
    def order_lines(order_view, info, **arguments):
        order = info.context.standin.orders.orders[order_view["_order"]]
        return Resolvers._page(order.lines, arguments, lambda line: (line.id,), Orders.line_view)

    @staticmethod
    def order_agreements(order_view, info, **arguments):
        orders = info.context.standin.orders
        order = orders.orders[order_view["_order"]]
        return Resolvers._page(orders.agreement_views(order), arguments, lambda view: (view["_key"],),
                               lambda view: view)

    @staticmethod
    def agreement_sales(agreement, info, **arguments):
        return Resolvers._page(Orders.sale_views(agreement), arguments, lambda view: (view["_key"],),
                               lambda view: view)

    @staticmethod
    def order_refunds(order_view, info, first=None):
        orders = info.context.standin.orders
        order = orders.orders[order_view["_order"]]
        refunds = order.refunds[:first] if first is not None else order.refunds
        return [{"__typename": "Refund", "id": gid("Refund", r["id"]), "legacyResourceId": str(r["id"]),
                 "createdAt": iso_time(r["created_at"]), "_refund": (order.id, r["id"]),
                 "return": {"__typename": "Return", "id": gid("Return", r["return_id"]),
                            "_refund": (order.id, r["id"])} if r.get("exchange") else None}
                for r in refunds]

    @staticmethod
    def exchange_lines(return_view, info, **arguments):
        """A return's exchange line items (REST `exchange_line_items`: the same ids)."""
        order_id, refund_id = return_view["_refund"]
        refund = next(r for r in info.context.standin.orders.orders[order_id].refunds if r["id"] == refund_id)

        def view(entry):
            return {"__typename": "ExchangeLineItem", "id": gid("ExchangeLineItem", entry["id"]),
                    "quantity": entry["quantity"],
                    "lineItem": {"__typename": "LineItem", "id": gid("LineItem", entry["line_id"]),
                                 "sku": entry["sku"], "name": entry["sku"], "quantity": entry["quantity"],
                                 "currentQuantity": entry["quantity"], "customAttributes": []}}
        return Resolvers._page(refund["exchange"], arguments, lambda entry: (entry["id"],), view)

    @staticmethod
    def refund_lines(refund_view, info, **arguments):
        standin = info.context.standin
        order_id, refund_id = refund_view["_refund"]
        refund = next(r for r in standin.orders.orders[order_id].refunds if r["id"] == refund_id)

        def view(entry):
            line = entry["line"]
            location = standin.listings.locations.get(line.level[1]) if line.level is not None else None
            return {"id": gid("RefundLineItem", entry["id"]), "lineItem": Orders.line_view(line),
                    "quantity": entry["quantity"], "restockType": entry["restock_type"].upper(),
                    "restocked": entry["restock_type"] != "no_restock",
                    "location": standin.listings.location_view(location) if location is not None else None}
        return Resolvers._page(refund["lines"], arguments, lambda entry: (entry["id"],), view)

    @staticmethod
    def level_item(level, info):
        listings = info.context.listings
        return listings.item_view(listings.items[level["_level"][0]])

    @staticmethod
    def level_location(level, info):
        listings = info.context.listings
        return listings.location_view(listings.locations[level["_level"][1]])

    @staticmethod
    def level_quantities(level_view, info, names):
        unknown = [name for name in names if name not in READABLE_QUANTITY_NAMES]
        if unknown:
            raise graphql.GraphQLError("Invalid quantity name: %s" % ", ".join(unknown),
                                       extensions={"code": "INVALID_QUANTITY_NAME"})
        level = info.context.listings.levels[level_view["_level"]]
        return [{"id": "gid://shopify/InventoryQuantity/%d?inventory_item_id=%d&name=%s"
                       % (level.id, level.item_id, name),
                 "name": name, "quantity": level.quantity(name), "updatedAt": iso_time(level.updated_at)}
                for name in names]


# ----------------------------------------------------------------------------------------
# Configuration, faults and the request log
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Config:
    tokens: list = dataclasses.field(default_factory=lambda: [DEFAULT_TOKEN])
    versions: list = dataclasses.field(default_factory=lambda: list(DEFAULT_VERSIONS))
    bucket_capacity: float = 2000.0           # Standard plan; Plus is larger
    restore_rate: float = 100.0               # points per second (Plus: 1000)
    mutation_cost: int = 10                   # [unverified]
    per_quantity_cost: int = 0                # extra points per quantity or change
    max_query_cost: int = 1000                # single-query limit: MAX_COST_EXCEEDED above
    throttle_status: int = 200                # 200 or 429 [unverified which Shopify sends]
    retry_after_on_429: bool = True           # Retry-After header on a 429 THROTTLED answer
    idempotent_required_from: object = "2026-04"   # version; None never requires @idempotent
    idempotency_ttl_seconds: float = 86400.0  # how long a key is remembered [unverified]
    partial_apply: bool = False               # apply the valid quantities of a failing call
    max_hang_seconds: float = 30.0            # bound of `timeout` and `delay` faults
    shop_domain: str = "skuld-standin.myshopify.com"   # X-Shopify-Shop-Domain
    shop_utc_offset_minutes: int = -300       # REST and webhook times are in the shop's zone
    webhook_api_version: str = "2025-01"      # X-Shopify-API-Version of deliveries
    webhook_timeout_seconds: float = 5.0      # a delivery not answered by then failed
    webhook_max_attempts: int = 8             # attempts per delivery, the first included
    webhook_retry_initial_seconds: float = 1.0    # first retry after this, doubling ...
    webhook_retry_max_seconds: float = 60.0   # ... up to this [Shopify: 8 tries over 4 hours]
    webhook_duplicate_rate: float = 0.0       # share of events delivered twice
    webhook_duplicate_same_id: bool = False   # a duplicate keeps X-Shopify-Webhook-Id
    webhook_delay_seconds: float = 0.0        # every delivery this late
    webhook_late_rate: float = 0.0            # share delivered late ...
    webhook_late_seconds: float = 2.0         # ... by up to this much more (real seconds)
    webhook_drop: bool = False                # every delivery dropped (missed webhooks)
    webhook_drop_rate: float = 0.0            # share of deliveries dropped
    webhook_seed: int = 1                     # the random draws (duplicates, lateness, drops)

    def update(self, changes):
        """Applies a JSON object of settings; raises ValueError naming a bad one."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError("unknown setting %r" % key)
            current = getattr(self, key)
            if key == "idempotent_required_from":
                if value is not None and not QUARTERLY_VERSION.match(str(value)):
                    raise ValueError("idempotent_required_from must be a quarterly version or null")
            elif key in ("tokens", "versions"):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("%s must be a list of strings" % key)
                if key == "versions" and not all(QUARTERLY_VERSION.match(v) for v in value):
                    raise ValueError("versions must be quarterly: YYYY-01|04|07|10")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError("%s must be true or false" % key)
            elif key == "shop_utc_offset_minutes":
                if isinstance(value, bool) or not isinstance(value, int) or not -840 <= value <= 840:
                    raise ValueError("shop_utc_offset_minutes must be an integer -840..840")
            elif isinstance(current, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError("%s must be a non-negative number" % key)
                value = type(current)(value)
            if key.endswith("_rate") and key.startswith("webhook_") and value > 1:
                raise ValueError("%s must be 0..1" % key)
            if key == "webhook_max_attempts" and value < 1:
                raise ValueError("webhook_max_attempts must be at least 1")
            if key in ("shop_domain", "webhook_api_version") and (not isinstance(value, str) or not value):
                raise ValueError("%s must be a non-empty text" % key)
            if key == "throttle_status" and value not in (200, 429):
                raise ValueError("throttle_status must be 200 or 429")
            setattr(self, key, value)


FAULT_KINDS = ("http_error", "reset", "throttle", "malformed", "timeout", "delay")


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour, used by the next `count` GraphQL requests that match."""
    kind: str
    count: int = 1
    match: str = "any"           # any | mutation | query
    apply: bool = False          # run the request (and apply its change) before misbehaving
    status: int = 503            # http_error: the status; throttle: 200 or 429 (0: config)
    body: object = None          # http_error / malformed: the body to send instead
    seconds: float = 5.0         # timeout: how long to hold the connection; delay: the delay
    fail_idempotency_key: bool = False   # http_error: the attempt counts as failed for its key

    @staticmethod
    def from_json(spec):
        if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
            raise ValueError("a fault needs kind: one of " + ", ".join(FAULT_KINDS))
        fields = {f.name for f in dataclasses.fields(Fault)}
        unknown = set(spec) - fields
        if unknown:
            raise ValueError("unknown fault fields: " + ", ".join(sorted(unknown)))
        values = dict(spec)
        values.setdefault("apply", spec["kind"] == "timeout")
        if spec["kind"] == "throttle":
            values.setdefault("status", 0)
        fault = Fault(**values)
        if not isinstance(fault.count, int) or fault.count < 1 or fault.count > 1_000_000:
            raise ValueError("count must be an integer from 1 to 1000000")
        if fault.match not in ("any", "mutation", "query"):
            raise ValueError("match must be any, mutation or query")
        if fault.kind == "http_error" and not 500 <= fault.status <= 599:
            raise ValueError("http_error status must be 5xx")
        if fault.kind == "throttle" and fault.status not in (0, 200, 429):
            raise ValueError("throttle status must be 200 or 429")
        return fault


class RequestLog:
    """Every GraphQL request, in order, as JSON objects; mirrored to a file as JSON lines."""

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


# ----------------------------------------------------------------------------------------
# The GraphQL endpoint
# ----------------------------------------------------------------------------------------

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


# graphql-ruby's static validation codes for the graphql-core rules they correspond to.
VALIDATION_CODES = {
    "FieldsOnCorrectType": "undefinedField",
    "KnownArgumentNames": "argumentNotAccepted",
    "ProvidedNonNullArguments": "missingRequiredArguments",
    "ProvidedRequiredArguments": "missingRequiredArguments",
    "ArgumentsOfCorrectType": "argumentLiteralsIncompatible",
    "ValuesOfCorrectType": "argumentLiteralsIncompatible",
    "KnownTypeNames": "undefinedType",
    "KnownDirectives": "undefinedDirective",
    "VariablesInAllowedPosition": "variableMismatch",
    "NoUndefinedVariables": "variableNotDefined",
    "NoUnusedVariables": "variableNotUsed",
    "ScalarLeafs": "selectionMismatch",
}


class RequestContext:
    """One request's execution: the resolvers' view of the stand-in (`info.context`)."""

    def __init__(self, standin, version, mutations):
        self.standin = standin
        self.listings = standin.listings
        self.clock = standin.clock
        self.rules = rules_for(version)
        self.version = version
        self.mutations = {m.node.loc.start: m for m in mutations}
        self.delay_seconds = 0.0
        self.user_errors = []
        self.applied = []
        self.replayed = False

    def run_mutation(self, node):
        """Executes one mutation field under the idempotency rules; returns its payload."""
        mutation = self.mutations[node.loc.start]
        standin = self.standin
        key = mutation.idempotency_key
        if key is not None:
            refusal = standin.claim_idempotency_key(key, mutation.fingerprint(), self.rules)
            if refusal == "replay":
                self.replayed = True
                payload = standin.idempotency[key].payload
                self.user_errors.extend(e["code"] for e in payload["userErrors"])
                return payload
            if refusal is not None:
                self.user_errors.append(refusal)
                return {"inventoryAdjustmentGroup": None,
                        "userErrors": [user_error(None, refusal, IDEMPOTENCY_MESSAGES[refusal])]}
        if self.delay_seconds > 0:
            standin.sleep_unlocked(self.delay_seconds)
            self.delay_seconds = 0.0
        listings = self.listings
        run = listings.set_quantities if mutation.name == "inventorySetQuantities" else listings.adjust_quantities
        try:
            payload, applied = run(mutation.input, self.rules, standin.config.partial_apply)
        except Exception:
            if key is not None:
                standin.idempotency[key].state = "failed"
            raise
        self.applied.extend(applied)
        self.user_errors.extend(e["code"] for e in payload["userErrors"])
        if key is not None:
            record = standin.idempotency[key]
            record.state, record.payload, record.at = "done", payload, self.clock.now()
        return payload



class Standin:
    """The whole stand-in: schemas, state, and the answer to each GraphQL request."""

    def __init__(self, extract, config, request_log_path=None):
        self.extract = extract
        self.config = config
        self.initial_config = copy.deepcopy(config)
        self.lock = threading.Lock()
        self.clock = Clock()
        self.listings = Listings(self.clock)
        self.orders = Orders(self.clock, self.listings, config)
        self.webhooks = Webhooks(config)
        self.bucket = CostBucket(self.clock, config.bucket_capacity, config.restore_rate)
        self.idempotency = {}            # key -> IdempotencyRecord
        self.faults = []
        self.log = RequestLog(request_log_path)
        self.schemas = {}                # version -> executable schema
        for version in config.versions:
            self.schema(version)

    def schema(self, version):
        if version not in self.schemas:
            self.schemas[version] = Resolvers.attach(build_schema(self.extract, version))
        return self.schemas[version]

    def reset(self):
        """Back to the settings it started with: forgets requests, faults and idempotency keys,
        fills the bucket and lets the clock run; keeps the listings and the clock's time."""
        self.config = copy.deepcopy(self.initial_config)
        self.orders = Orders(self.clock, self.listings, self.config)
        self.webhooks.reset(self.config)
        self.idempotency.clear()
        self.faults.clear()
        self.log.entries.clear()
        self.clock.run()
        self.bucket = CostBucket(self.clock, self.config.bucket_capacity, self.config.restore_rate)

    def sleep_unlocked(self, seconds):
        self.lock.release()
        try:
            time.sleep(min(seconds, self.config.max_hang_seconds))
        finally:
            self.lock.acquire()

    def claim_idempotency_key(self, key, fingerprint, rules):
        """None when the caller may run (the key is now in progress), "replay" when the stored
        payload answers, else the userError code that refuses the request."""
        record = self.idempotency.get(key)
        now = self.clock.now()
        expired = record is not None and now - record.at > self.config.idempotency_ttl_seconds
        if expired and record.state != "in_progress":
            record = None
        if record is not None:
            if record.fingerprint != fingerprint:
                return "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
            if record.state == "in_progress":
                return "IDEMPOTENCY_CONCURRENT_REQUEST"
            if record.state == "done":
                return "replay"
            if rules.previous_attempt_code:
                return "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"
        self.idempotency[key] = IdempotencyRecord(fingerprint, "in_progress", None, now)
        return None

    def take_fault(self, kind):
        for fault in self.faults:
            if fault.match in ("any", kind):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # -- the request ---------------------------------------------------------------------

    def handle_graphql(self, version, token, content_type, body):
        """Answers one POST to the GraphQL endpoint."""
        entry = {"version": version, "operationName": None, "query": None, "variables": None, "operation": None,
                 "fields": [], "userErrors": [], "errors": [], "idempotencyKeys": [], "applied": [],
                 "replayed": False, "fault": None}
        refusal = None
        if not QUARTERLY_VERSION.match(version) or version not in self.config.versions:
            refusal = json_reply(404, {"errors": "Not Found"})
        elif token not in self.config.tokens:
            refusal = json_reply(401, INVALID_TOKEN_BODY)
        else:
            request, problem = self._decode_body(content_type, body)
            if problem is not None:
                refusal = json_reply(400, {"errors": {"query": problem}})
        if refusal is not None:
            with self.lock:
                entry["time"] = self.clock.now()
                return self._finish(entry, refusal)
        entry.update(operationName=request["operationName"], query=request["query"], variables=request["variables"])
        schema = self.schema(version)
        document, errors = self._prepare(schema, request)
        if document is not None:
            entry["operation"] = document.kind
            if document.operation.name is not None:
                entry["operationName"] = document.operation.name.value
            entry["fields"] = [f.name.value for f in document.root_fields()]
        with self.lock:
            entry["time"] = self.clock.now()
            fault = self.take_fault(document.kind if document is not None else None)
            if fault is not None:
                entry["fault"] = fault.kind
                if fault.kind == "throttle":
                    entry["errors"] = ["THROTTLED"]
            if fault is not None and not fault.apply and fault.kind not in ("delay",):
                return self._finish(entry, self._fault_reply(fault, schema, document, None))
            reply = self._answer(schema, version, document, errors, entry, fault)
            if fault is not None and fault.apply:
                reply = self._fault_reply(fault, schema, document, reply)
            return self._finish(entry, reply)

    def _finish(self, entry, reply):
        entry["status"] = reply.status if reply.action == "send" else None
        if reply.action != "send":
            entry["outcome"] = reply.action
        self.log.append(entry)
        return reply

    @staticmethod
    def _decode_body(content_type, body):
        """Returns ({query, variables, operationName}, None) or (None, problem)."""
        media = (content_type or "").split(";")[0].strip().lower()
        if media == "application/graphql":
            return {"query": body.decode("utf-8", "replace"), "variables": {}, "operationName": None}, None
        try:
            request = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None, "Required parameter missing or invalid"
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            return None, "Required parameter missing or invalid"
        variables = request.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables) if variables.strip() else {}
            except ValueError:
                return None, "Required parameter missing or invalid"
        if variables is None:
            variables = {}
        if not isinstance(variables, dict):
            return None, "Required parameter missing or invalid"
        name = request.get("operationName")
        return {"query": request["query"], "variables": variables,
                "operationName": name if isinstance(name, str) else None}, None

    def _prepare(self, schema, request):
        """Parses, validates and coerces; returns (Document or None, formatted errors)."""
        try:
            parsed, nulls = parse_document(request["query"])
        except graphql.GraphQLError as error:
            return None, [self._error(error, "parseError")]
        errors = []
        for rule in graphql.specified_rules:
            name = rule.__name__[:-4] if rule.__name__.endswith("Rule") else rule.__name__
            for error in graphql.validate(schema, parsed, [rule]):
                errors.append(self._error(error, VALIDATION_CODES.get(name, "validationFailed")))
        if errors:
            return None, errors
        operation = graphql.get_operation_ast(parsed, request["operationName"])
        if operation is None:
            message = ("Must provide operation name if query contains multiple operations."
                       if request["operationName"] is None else
                       "Unknown operation named \"%s\"." % request["operationName"])
            return None, [{"message": message, "extensions": {"code": "OPERATION_NOT_FOUND"}}]
        for error in variable_errors(schema, operation, request["variables"]):
            errors.append(self._error(error, "INVALID_VARIABLE", {"value": request["variables"]}))
        document = Document(parsed, nulls, operation, request["variables"])
        return document, errors

    @staticmethod
    def _error(error, code, extra=None):
        formatted = formatted_error(error)
        extensions = dict(formatted.get("extensions") or {})
        extensions.setdefault("code", code)
        extensions.update(extra or {})
        formatted["extensions"] = extensions
        return formatted

    def _answer(self, schema, version, document, errors, entry, fault):
        """The answer of the GraphQL layer, with the bucket charged.  Runs under the lock."""
        if document is None or errors:
            entry["errors"] = [e["extensions"]["code"] for e in errors]
            return self._graphql_reply({"errors": errors}, 0, 0)
        mutations = root_mutations(document)
        entry["idempotencyKeys"] = [m.idempotency_key for m in mutations]
        cost = query_cost(schema, document, self.config)
        input_errors = self.input_rule_errors(version, mutations)
        if input_errors:
            entry["errors"] = [e["extensions"]["code"] for e in input_errors]
            return self._graphql_reply({"errors": input_errors}, cost, 0)
        if cost > self.config.max_query_cost:
            entry["errors"] = ["MAX_COST_EXCEEDED"]
            return self._graphql_reply({"errors": [{
                "message": "Query cost is %d, which exceeds the single query max cost limit (%d)."
                           % (cost, self.config.max_query_cost),
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": self.config.max_query_cost}}]},
                cost, 0)
        if not self.bucket.try_take(cost):
            entry["errors"] = ["THROTTLED"]
            return self._throttled_reply(cost, self.config.throttle_status)
        context = RequestContext(self, version, mutations)
        if fault is not None and fault.kind == "delay":
            if mutations:
                context.delay_seconds = fault.seconds
            else:
                self.sleep_unlocked(fault.seconds)
        result = graphql.execute(schema, document.parsed, context_value=context,
                                 variable_values=document.variables, operation_name=document.operation.name.value
                                 if document.operation.name else None)
        body = {"data": result.data}
        if result.errors:
            body["errors"] = [self._execution_error(error) for error in result.errors]
            entry["errors"] = [e.get("extensions", {}).get("code") for e in body["errors"]]
        entry.update(userErrors=context.user_errors, replayed=context.replayed,
                     applied=[dict(c, item=gid("InventoryItem", c["item"]), location=gid("Location", c["location"]))
                              for c in context.applied])
        return self._graphql_reply(body, cost, cost)

    def input_rule_errors(self, version, mutations):
        """Checks the schema cannot express: array sizes, the 2026-04 changeFromQuantity rule,
        the @idempotent requirement.  Returns formatted top-level errors."""
        rules = rules_for(version)
        required_from = self.config.idempotent_required_from
        errors = []
        for mutation in mutations:
            array_name, input_type = MUTATION_ARRAYS[mutation.name]
            entries = mutation.input.get(array_name) or []
            location = node_locations(mutation.node)
            if len(entries) > MAX_INPUT_ARRAY:
                errors.append(self._top_error(
                    "The input array size of %d is greater than the maximum allowed of %d."
                    % (len(entries), MAX_INPUT_ARRAY),
                    "MAX_INPUT_SIZE_EXCEEDED", [mutation.name, "input", array_name], location))
            if rules.change_from_required and any("changeFromQuantity" not in e for e in entries):
                errors.append(self._top_error(
                    "%s must include the following argument: changeFromQuantity." % input_type,
                    "INVALID_FIELD_ARGUMENTS", [mutation.name, "input", array_name], location))
            if required_from is not None and version >= required_from and mutation.idempotency_key is None:
                errors.append(self._top_error(
                    "The @idempotent directive is required for this mutation but was not provided.",
                    "BAD_REQUEST", [mutation.name], location))
        return errors

    @staticmethod
    def _top_error(message, code, path, locations):
        error = {"message": message, "path": path, "extensions": {"code": code}}
        if locations:
            error["locations"] = locations
        return error

    @staticmethod
    def _execution_error(error):
        cause = original_error(error)
        if cause is not None and not isinstance(cause, graphql.GraphQLError):
            traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
            formatted = formatted_error(error)
            formatted["message"] = "Internal error. Looks like something went wrong on our end."
            formatted["extensions"] = {"code": "INTERNAL_SERVER_ERROR"}
            return formatted
        formatted = formatted_error(error)
        formatted.setdefault("extensions", {}).setdefault("code", "FIELD_ERROR")
        return formatted

    def _cost_extension(self, requested, actual):
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                         "throttleStatus": self.bucket.status()}}

    def _graphql_reply(self, body, requested, actual):
        body["extensions"] = self._cost_extension(requested, actual)
        return json_reply(200, body)

    def _throttled_reply(self, cost, status):
        status = status or self.config.throttle_status
        throttled = {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": THROTTLE_DOCS}}
        body = {"errors": [throttled],
                "extensions": self._cost_extension(cost, None)}
        headers = {}
        if status == 429 and self.config.retry_after_on_429:
            headers["Retry-After"] = str(max(1, int(self.bucket.seconds_until(cost) + 0.999)))
        return json_reply(status, body, headers)

    def _fault_reply(self, fault, schema, document, answered):
        """The reply a fault puts in place of `answered` (None when nothing ran)."""
        if fault.kind == "http_error":
            if fault.fail_idempotency_key and document is not None and answered is None:
                for mutation in root_mutations(document):
                    if mutation.idempotency_key is not None:
                        self.idempotency[mutation.idempotency_key] = IdempotencyRecord(
                            mutation.fingerprint(), "failed", None, self.clock.now())
            body = fault.body if fault.body is not None else {"errors": HTTP_REASONS.get(fault.status, "Server Error")}
            return Reply(fault.status, (body if isinstance(body, str) else json.dumps(body)).encode(),
                         {"Content-Type": "application/json"})
        if fault.kind == "reset":
            return Reply(action="reset")
        if fault.kind == "throttle":
            cost = query_cost(schema, document, self.config) if document is not None else 0
            return self._throttled_reply(cost, fault.status)
        if fault.kind == "malformed":
            if fault.body is not None:
                text = fault.body if isinstance(fault.body, str) else json.dumps(fault.body)
            else:
                whole = answered.body if answered is not None else b'{"data":{"inventorySetQuantities":null}}'
                text = whole[: max(1, len(whole) // 2)].decode("utf-8", "replace")
            return Reply(200, text.encode(), {"Content-Type": "application/json"})
        if fault.kind == "timeout":
            return Reply(action="hang", hang_seconds=min(fault.seconds, self.config.max_hang_seconds))
        return answered if answered is not None else json_reply(500, {"errors": "unhandled fault"})


HTTP_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                504: "Gateway Timeout"}


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
            except (ValueError, TypeError) as error:
                return json_reply(400, {"error": str(error)})

    def state(self):
        standin = self.standin
        return dict(standin.listings.snapshot(),
                    clock={"now": standin.clock.now(), "frozen": standin.clock.frozen},
                    bucket=standin.bucket.status(),
                    config=dataclasses.asdict(standin.config),
                    faults=[dataclasses.asdict(f) for f in standin.faults],
                    idempotencyKeys={k: r.state for k, r in standin.idempotency.items()},
                    orders=standin.orders.snapshot(),
                    requests=standin.log.sequence)

    def post_seed(self, spec):
        self.standin.listings.seed(spec)
        return self.standin.listings.snapshot()

    def post_reset(self, spec):
        self.standin.reset()
        if "seed" in spec:
            self.standin.listings.seed(spec["seed"])

    def post_config(self, spec):
        standin = self.standin
        standin.config.update(spec)
        for version in standin.config.versions:
            standin.schema(version)
        if "bucket_capacity" in spec or "restore_rate" in spec:
            standin.bucket._refill()
            standin.bucket.capacity = float(standin.config.bucket_capacity)
            standin.bucket.restore_rate = float(standin.config.restore_rate)
            standin.bucket.available = min(standin.bucket.available, standin.bucket.capacity)
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
        if "currentlyAvailable" in spec:
            bucket._refill()
            bucket.available = max(0.0, min(bucket.capacity, float(spec["currentlyAvailable"])))
        return bucket.status()

    def post_faults(self, spec):
        parsed = [Fault.from_json(f) for f in (spec["faults"] if "faults" in spec else [spec])]
        self.standin.faults.extend(parsed)
        return {"faults": [dataclasses.asdict(f) for f in self.standin.faults]}

    def post_faults_clear(self, spec):
        self.standin.faults.clear()

    def post_level(self, spec):
        return Listings.level_snapshot(self.standin.listings.set_level(spec))

    def post_sale(self, spec):
        return Listings.level_snapshot(self.standin.listings.external_sale(spec))

    def post_item(self, spec):
        return dataclasses.asdict(self.standin.listings.update_item(spec))

    def post_location(self, spec):
        return dataclasses.asdict(self.standin.listings.update_location(spec))

    def post_order(self, spec):
        """An order: inventory moves at once, then orders/create is delivered."""
        standin = self.standin
        order = standin.orders.create(spec)
        payload = standin.orders.rest_order(order)
        standin.webhooks.publish("orders/create", payload, order.id)
        return payload

    def post_cancel(self, spec):
        """A cancellation: orders/cancelled is delivered, and refunds/create for the refund
        the cancellation made (as Shopify sends both)."""
        standin = self.standin
        order, refund = standin.orders.cancel(spec)
        payload = standin.orders.rest_order(order)
        standin.webhooks.publish("orders/cancelled", payload, order.id)
        if refund is not None:
            standin.webhooks.publish("refunds/create", standin.orders.rest_refund(order, refund), order.id)
        return payload

    def post_refund(self, spec):
        standin = self.standin
        order, refund = standin.orders.refund(spec)
        payload = standin.orders.rest_refund(order, refund)
        standin.webhooks.publish("refunds/create", payload, order.id)
        return payload

    def post_edit(self, spec):
        """A committed order edit: inventory moves at once, then orders/edited is delivered."""
        standin = self.standin
        order, edit = standin.orders.edit(spec)
        payload = standin.orders.rest_order_edit(order, edit)
        standin.webhooks.publish("orders/edited", payload, order.id)
        return payload

    def post_webhooks(self, spec):
        return self.standin.webhooks.subscribe(spec)

    def post_tokens(self, spec):
        self.standin.config.update({"tokens": spec.get("tokens")})

    def post_shutdown(self, spec):
        threading.Thread(target=self.server.shutdown, daemon=True).start()


# ----------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shopify-standin"
    timeout = 60                 # an idle keep-alive connection is closed after this

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("shopify-standin: " + (format % args) + "\n")

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        self._was_reset = False
        url = urllib.parse.urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return self._send(json_reply(413, {"errors": "Request body too large"}))
        if url.path.startswith("/_control/"):
            return self._send(self.server.control.handle(method, url.path, urllib.parse.parse_qs(url.query), body))
        match = GRAPHQL_PATH.match(url.path)
        if match is None:
            return self._send(json_reply(404, {"errors": "Not Found"}))
        if method != "POST":
            return self._send(json_reply(405, {"errors": "Method Not Allowed"}, {"Allow": "POST"}))
        reply = self.server.standin.handle_graphql(match.group(1), self.headers.get("X-Shopify-Access-Token"),
                                                   self.headers.get("Content-Type"), body)
        self._send(reply)

    def _read_body(self):
        """The request body (Content-Length or chunked), or None when over MAX_BODY_BYTES."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            for _ in range(MAX_BODY_BYTES):
                try:
                    size = int(self.rfile.readline(64).split(b";")[0].strip() or b"0", 16)
                except ValueError:            # not chunked encoding: answered as an empty body
                    self.close_connection = True
                    return b""
                if size == 0:
                    self.rfile.readline(64)
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    self.close_connection = True
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(64)
            return None
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
        """Closes the connection with a TCP reset and no reply."""
        self._was_reset = True
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _hang(self, seconds):
        """Holds the connection without replying until the client gives up or `seconds` pass,
        then closes it."""
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


def load_extract(path):
    with open(path, encoding="utf-8") as file:
        extract = json.load(file)
    if "data" not in extract or "__schema" not in extract["data"]:
        raise SystemExit("%s: not an introspection result" % path)
    return extract


def main(argv=None):
    parser = argparse.ArgumentParser(description="Shopify Admin GraphQL stand-in (inventory).")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA_PATH, help="the 2025-01 introspection extract")
    parser.add_argument("--seed", help="JSON file of listings (README.md, 'Seed format')")
    parser.add_argument("--config", help="JSON file of settings (README.md, 'Settings')")
    parser.add_argument("--request-log", help="append each request to this file as a JSON line")
    parser.add_argument("--token", action="append", help="accepted access token (repeatable)")
    parser.add_argument("--throttle-status", type=int, choices=(200, 429))
    parser.add_argument("--bucket-capacity", type=float)
    parser.add_argument("--restore-rate", type=float)
    parser.add_argument("--freeze-clock", action="store_true", help="start with the clock stopped")
    parser.add_argument("--verbose", action="store_true")
    arguments = parser.parse_args(argv)

    logging.getLogger("graphql").setLevel(logging.CRITICAL)
    config = Config()
    settings = {}
    if arguments.config:
        with open(arguments.config, encoding="utf-8") as file:
            settings.update(json.load(file))
    for name in ("throttle_status", "bucket_capacity", "restore_rate"):
        if getattr(arguments, name) is not None:
            settings[name] = getattr(arguments, name)
    if arguments.token:
        settings["tokens"] = arguments.token
    config.update(settings)
    standin = Standin(load_extract(arguments.schema), config, arguments.request_log)
    if arguments.seed:
        with open(arguments.seed, encoding="utf-8") as file:
            standin.listings.seed(json.load(file))
    if arguments.freeze_clock:
        standin.clock.freeze()
    server = Server(arguments.port, standin, arguments.verbose)
    port = server.server_address[1]
    if arguments.port_file:
        temporary = arguments.port_file + ".tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write("%d\n" % port)
        os.replace(temporary, arguments.port_file)
    print("shopify-standin listening on http://127.0.0.1:%d" % port, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
