#!/usr/bin/env python3
"""gateway_loop_bench.py — an order at a stand-in -> the ledger -> the other channels' stand-ins.

Starts, on 127.0.0.1 in a temporary directory: skuld; the Shopify, Square and Amazon
stand-ins (tests/standins/); for each channel a skuld-gateway that brings its orders in
(the Shopify and Square stand-ins deliver their own signed webhooks; Amazon's orders are
polled every --amazon-poll-s) and a skuld-push worker that pushes its quantity. The three
skuld channels have the same pool (STORE-1) and list the same probe items.

Orders of one unit are placed on the stand-ins (POST /_control/order, as a buyer would),
round robin over the channels, --orders-per-s in all; each probe item is ordered on one
channel only, so its figures are that channel's. For every order it records:

  - order -> ledger: from the POST to the record time of the order's SALE in skuld's log
    (skuld-replay history; the gateway answers a webhook only once that SALE is durable);
  - order -> other channels: from the POST to the first entry in each OTHER channel's
    stand-in that set the item's quantity to the value the order made, or lower (Shopify
    and Square: the request log's applied changes; Amazon: the listing's applications).

With --items N, skuld-bench's reserve/commit/release load runs over N more items meanwhile
(those are not listed on the channels). Prints p50/p90/p99/max per channel, as text or
(--json) JSON. Every wait is bounded; everything started is stopped.

    python3 bench/gateway_loop_bench.py [--build build] [--orders 90] [--orders-per-s 3]
                                        [--probes 6] [--amazon-poll-s 1] [--items 0]
                                        [--duration 30] [--json]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STANDINS = os.path.join(ROOT, "tests", "standins")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
CHANNELS = ("shopify", "square", "amazon")
SHOP_PLACE = "gid://shopify/Location/1"
SQ_PLACE = "SQLOC1"
SHOP_SECRET = "bench-shopify-secret"
SQ_KEY = "bench-square-key"
SQ_URL = "https://shop.example/webhooks/square"
STOCK = 100000
LISTING_BASE = 1000000

sys.path.insert(0, HERE)
from gateway_bench import percentiles, wait_for  # noqa: E402


def http(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        text = answer.read().decode()
    return text


class Run:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.dir = tempfile.mkdtemp(prefix="skuld-gateway-loop-bench-")
        self.processes = []
        self.standin = {}
        self.client = {}

    def start(self, argv, **kwargs):
        process = subprocess.Popen(argv, **kwargs)
        self.processes.append(process)
        return process

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def binary(self, *parts):
        return os.path.join(self.build, *parts)

    def skuldctl(self, *argv):
        done = subprocess.run([self.binary("client", "skuldctl"), "--server",
                               "127.0.0.1:%d" % self.port] + list(argv),
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit("gateway_loop_bench: skuldctl %s: %s%s" % (" ".join(argv),
                                                                        done.stdout, done.stderr))
        return done.stdout

    @staticmethod
    def listening(process, marker):
        line = process.stdout.readline()
        if marker not in line:
            raise SystemExit("gateway_loop_bench: no %r in %r" % (marker, line))
        return int(line.split(marker)[1].split()[0])

    def probes(self):
        """Probe items (PROBE-1..), and the channel each is ordered on."""
        count = self.args.probes * len(CHANNELS)
        return {1 + n: CHANNELS[n % len(CHANNELS)] for n in range(count)}

    # -- set-up ------------------------------------------------------------------------

    def standin_start(self, name, seed, config):
        seed_path = os.path.join(self.dir, "%s-seed.json" % name)
        port_path = os.path.join(self.dir, "%s.port" % name)
        with open(seed_path, "w") as out:
            json.dump(seed, out)
        self.start([PYTHON, "-B", os.path.join(STANDINS, "%s.py" % name), "--port-file",
                    port_path, "--seed", seed_path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = wait_for("the %s stand-in" % name, lambda: os.path.exists(port_path) and
                        open(port_path).read().strip(), 30)
        self.standin[name] = "http://127.0.0.1:%s" % port
        if config:
            http("POST", self.standin[name] + "/_control/config", config)

    def setup(self):
        probes = self.probes()
        config = os.path.join(self.dir, "skuld.conf")
        with open(os.path.join(HERE, "skuld-bench.conf")) as base, open(config, "w") as out:
            # skuld-bench.conf keeps keys 2 s; the gateways read orders again within their
            # poll overlap (5 s) and a duplicate webhook may come later still, so their keys
            # must outlive that, or an order read again would be applied again.
            out.write("".join(line for line in base if not line.startswith("key_window_s")))
            out.write("key_window_s = 600\n")
            out.write("listings_max = %d\ncodes_max = %d\n" % (
                3 * len(probes) + 64, 2 * (self.args.items + len(probes)) + 64))
        self.config = config
        self.data = os.path.join(self.dir, "data")
        skuld = self.start([self.binary("server", "skuld"), "--listen", "127.0.0.1:0",
                            "--data-dir", self.data, "--config", config],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = self.listening(skuld, "listening on 127.0.0.1:")
        if self.args.items > 0:  # the load's items SKU-1.., and STORE-1
            subprocess.run([self.binary("bench", "skuld-bench"), "--server",
                            "127.0.0.1:%d" % self.port, "--setup", "--items",
                            str(self.args.items), "--locations", "1", "--stock", "100000",
                            "--duration", "1", "--connections", "1"],
                           check=True, capture_output=True, timeout=300)
        else:
            self.skuldctl("define-location", "STORE-1")
        mappings = os.path.join(self.dir, "mappings.csv")
        with open(mappings, "w") as out:
            out.write("sku,channel,listing\n")
            for item in probes:
                self.skuldctl("define-item", "PROBE-%d" % item)
                self.skuldctl("receive", "PROBE-%d@STORE-1" % item, str(STOCK))
                out.write("PROBE-%d,shopify,%d\n" % (item, LISTING_BASE + item))
                out.write("PROBE-%d,square,SQVAR-%d\n" % (item, item))
                out.write("PROBE-%d,amazon,PROBE-%d\n" % (item, item))
        for name in CHANNELS:
            self.skuldctl("define-channel", name, "--pool", "STORE-1")
        self.skuldctl("import", "mappings", mappings)

        self.standin_start("shopify", {
            "locations": [{"id": SHOP_PLACE, "name": "Web", "active": True}],
            "items": [{"id": LISTING_BASE + i, "sku": "PROBE-%d" % i} for i in probes],
            "levels": [{"inventoryItemId": "gid://shopify/InventoryItem/%d" % (LISTING_BASE + i),
                        "locationId": SHOP_PLACE, "available": 0} for i in probes]}, None)
        self.standin_start("square", {
            "locations": [{"id": SQ_PLACE, "name": "Web"}],
            "counts": [{"catalog_object_id": "SQVAR-%d" % i, "location_id": SQ_PLACE,
                        "quantity": "0"} for i in probes]},
            {"bucket_capacity": 1000, "restore_rate": 1000})
        # Amazon's published getOrders plan (0.0167/s, burst 20) would allow one pass a
        # minute after the burst; the stand-in is given room for one every --amazon-poll-s.
        self.standin_start("amazon", {"listings": [{"sku": "PROBE-%d" % i, "quantity": 0}
                                                   for i in probes]},
                           {"limits": {"patchListingsItem": [50, 50], "getListingsItem": [50, 50],
                                       "getOrders": [20, 20], "getOrderItems": [50, 50]}})

        gateway_port = {}
        for name in CHANNELS:
            spool = os.path.join(self.dir, "spool-" + name)
            os.mkdir(spool)
            lines = ["listen = 127.0.0.1:0", "server = 127.0.0.1:%d" % self.port,
                     "channel = " + name, "kind = " + name, "location = STORE-1",
                     "spool = " + spool, "client_id_path = %s/client.id" % spool]
            if name == "shopify":
                lines += ["secret = " + SHOP_SECRET]
            elif name == "square":
                lines += ["secret = " + SQ_KEY, "notification_url = " + SQ_URL,
                          "api_url = " + self.standin[name],
                          "api_token = EAAAEstandin-square-token"]
                lines += ["listing = SQVAR-%d:PROBE-%d" % (i, i) for i in probes]
            else:
                lines += ["poll_s = %d" % self.args.amazon_poll_s, "poll_overlap_s = 5",
                          "api_url = " + self.standin[name], "lwa_url = " + self.standin[name],
                          "lwa_client_id = amzn1.application-oa2-client.standin",
                          "lwa_client_secret = standin-secret",
                          "lwa_refresh_token = Atzr|standin-refresh"]
            path = os.path.join(self.dir, "gateway-%s.conf" % name)
            with open(path, "w") as out:
                out.write("\n".join(lines) + "\n")
            gateway = self.start([self.binary("channels", "skuld-gateway"), "--config", path],
                                 stdout=subprocess.PIPE,
                                 stderr=open(os.path.join(self.dir, "gateway-%s.log" % name), "w"),
                                 text=True)
            gateway_port[name] = self.listening(gateway, "listening on 127.0.0.1:")
            with open(os.path.join(spool, "client.id")) as file:
                self.client[name] = file.read().strip()
        http("POST", self.standin["shopify"] + "/_control/webhooks",
             {"url": "http://127.0.0.1:%d/webhooks/shopify" % gateway_port["shopify"],
              "secret": SHOP_SECRET})
        http("POST", self.standin["square"] + "/_control/webhooks",
             {"url": "http://127.0.0.1:%d/webhooks/square" % gateway_port["square"],
              "secret": SQ_KEY, "notification_url": SQ_URL})

        for name in CHANNELS:
            lines = ["server = 127.0.0.1:%d" % self.port, "channel = " + name, "kind = " + name,
                     "api_url = " + self.standin[name], "idle_ms = 20", "reconcile_s = 0",
                     "zero_resend_s = 0"]
            if name == "shopify":
                lines += ["api_token = shpat_standin", "location = " + SHOP_PLACE]
            elif name == "square":
                lines += ["api_token = EAAAEstandin-square-token", "api_version = 2025-08-20",
                          "location = " + SQ_PLACE]
            else:
                lines += ["lwa_url = " + self.standin[name], "seller_id = A1STANDINSELLER",
                          "lwa_client_id = amzn1.application-oa2-client.standin",
                          "lwa_client_secret = standin-secret",
                          "lwa_refresh_token = Atzr|standin-refresh",
                          "location = ATVPDKIKX0DER"]
            path = os.path.join(self.dir, "push-%s.conf" % name)
            with open(path, "w") as out:
                out.write("\n".join(lines) + "\n")
            self.start([self.binary("channels", "skuld-push"), "--config", path],
                       stderr=subprocess.DEVNULL)
        self.start_quantity = dict.fromkeys(probes, STOCK)
        wait_for("the first push", self.clean, 120)
        wait_for("the stand-ins to show the stock", lambda: all(
            self.shows(name, item) == self.start_quantity[item] for name in CHANNELS
            for item in probes), 60)

    def clean(self):
        rows = json.loads(self.skuldctl("--json", "channels", *CHANNELS))
        return all(row["dirty"] == 0 for row in rows)

    # -- the stand-ins' records ------------------------------------------------------

    def shows(self, name, item):
        state = json.loads(http("GET", self.standin[name] + "/_control/state"))
        if name == "shopify":
            gid = "gid://shopify/InventoryItem/%d" % (LISTING_BASE + item)
            return next((l["available"] for l in state["levels"]
                         if l["inventoryItemId"] == gid), None)
        if name == "square":
            return next((int(float(c["quantity"])) for c in state["counts"]
                         if c["catalog_object_id"] == "SQVAR-%d" % item), None)
        return next((l["quantity"] for l in state["listings"] if l["sku"] == "PROBE-%d" % item),
                    None)

    def settings(self, name):
        """(time, quantity) of every quantity the channel's stand-in set, by probe item."""
        probes = self.probes()
        sets = {item: [] for item in probes}
        if name == "amazon":
            state = json.loads(http("GET", self.standin[name] + "/_control/state"))
            for application in state["applications"]:
                sku = application["sku"]
                item = int(sku.split("-")[1]) if sku.startswith("PROBE-") else None
                if item in sets:
                    sets[item].append((application["at"], application["quantity"]))
            return sets
        log = http("GET", self.standin[name] + "/_control/log?since=0")
        for line in log.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            for change in entry.get("applied") or []:
                if name == "shopify":
                    if change.get("name") != "available" or \
                            change.get("quantityAfterChange") is None:
                        continue
                    item = int(change["item"].rsplit("/", 1)[1]) - LISTING_BASE
                    after = change["quantityAfterChange"]
                else:
                    if change.get("after") is None:
                        continue
                    item = int(change["catalog_object_id"].split("-")[1])
                    after = int(float(change["after"]))
                if item in sets:
                    sets[item].append((entry["time"], after))
        return sets

    def ledger_sales(self, item):
        """Record times of the order SALEs of item, by the gateway that sent them."""
        done = subprocess.run([self.binary("server", "skuld-replay"), "history", self.data,
                               "PROBE-%d@STORE-1" % item, "--config", self.config, "--json"],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit("gateway_loop_bench: skuld-replay history: " + done.stderr)
        sales = {name: [] for name in CHANNELS}
        for movement in json.loads(done.stdout)["movements"]:
            if movement["kind"] != "SALE" or movement["status"] != "OK" or \
                    "REPLAYED" in (movement.get("result_flags") or ""):
                continue
            for name in CHANNELS:
                if movement["client"] == self.client[name]:
                    sales[name].append(movement["recorded_ns"] / 1e9)
        return sales

    # -- the run -----------------------------------------------------------------------

    def order(self, name, item):
        if name == "shopify":
            body = {"line_items": [{"sku": "PROBE-%d" % item, "quantity": 1}]}
        elif name == "square":
            body = {"location_id": SQ_PLACE,
                    "lines": [{"catalog_object_id": "SQVAR-%d" % item, "quantity": 1}]}
        else:
            body = {"items": [{"sku": "PROBE-%d" % item, "quantity": 1}]}
        http("POST", self.standin[name] + "/_control/order", body)

    def run(self):
        args = self.args
        self.setup()
        probes = self.probes()
        by_channel = {name: [i for i, c in probes.items() if c == name] for name in CHANNELS}
        load = None
        if args.items > 0:
            load = self.start([self.binary("bench", "skuld-bench"), "--server",
                               "127.0.0.1:%d" % self.port, "--items", str(args.items),
                               "--locations", "1", "--duration", str(args.duration),
                               "--connections", "1", "--batch", "32", "--json"],
                              # Its end-of-run check counts the probes' orders as stock
                              # that moved unexpectedly; only its rate is read here.
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(1)
        orders = {name: {item: [] for item in by_channel[name]} for name in CHANNELS}
        count = 0
        began = time.time()
        while count < args.orders and time.time() < began + 3600:
            name = CHANNELS[count % len(CHANNELS)]
            items = by_channel[name]
            item = items[(count // len(CHANNELS)) % len(items)]
            before = time.time()
            self.order(name, item)
            orders[name][item].append(before)
            count += 1
            time.sleep(max(0.0, 1.0 / args.orders_per_s - (time.time() - before)))
        events_per_s = None
        if load is not None:
            load_out, _ = load.communicate(timeout=args.duration + 120)
            events_per_s = json.loads(load_out.strip().splitlines()[-1]).get("events_per_s")
        # Settled: every order in the ledger and on every channel.
        want = {item: self.start_quantity[item] - len(orders[probes[item]][item])
                for item in probes}
        wait_for("every channel to show every order", lambda: self.clean() and all(
            self.shows(name, item) == want[item] for name in CHANNELS for item in probes), 120)

        settings = {name: self.settings(name) for name in CHANNELS}
        to_ledger = {name: [] for name in CHANNELS}
        to_others = {name: [] for name in CHANNELS}
        for item, name in probes.items():
            placed = orders[name][item]
            sales = self.ledger_sales(item)[name]
            if len(sales) != len(placed):
                raise SystemExit("gateway_loop_bench: %s item %d: %d orders, %d SALEs in the "
                                 "ledger" % (name, item, len(placed), len(sales)))
            for n, (before, sold) in enumerate(zip(placed, sorted(sales))):
                to_ledger[name].append(sold - before)
                quantity = self.start_quantity[item] - (n + 1)
                for other in CHANNELS:
                    if other == name:
                        continue
                    shown = [at for at, value in settings[other][item]
                             if value <= quantity and at >= before]
                    if not shown:
                        raise SystemExit("gateway_loop_bench: %s never showed %d of item %d"
                                         % (other, quantity, item))
                    to_others[name].append(min(shown) - before)
        result = {"orders": count, "orders_per_s": args.orders_per_s,
                  "amazon_poll_s": args.amazon_poll_s, "load_items": args.items,
                  "load_events_per_s": events_per_s,
                  "order_to_ledger_s": {n: percentiles(v) for n, v in to_ledger.items()},
                  "order_to_other_channels_s": {n: percentiles(v) for n, v in to_others.items()}}
        if args.json:
            print(json.dumps(result))
            return
        fmt = lambda v: "-" if v is None else ("%.3f s" % v)
        for title, key in (("order -> ledger", "order_to_ledger_s"),
                           ("order -> other channels", "order_to_other_channels_s")):
            for name in CHANNELS:
                p = result[key][name]
                print("  %-24s %-8s p50 %s  p90 %s  p99 %s  max %s" % (
                    title, name, fmt(p["p50"]), fmt(p["p90"]), fmt(p["p99"]), fmt(p["max"])))
        print("  %d orders, %s orders/s, Amazon polled every %d s, load %s" % (
            count, args.orders_per_s, args.amazon_poll_s,
            "%s events/s over %d items" % (events_per_s, args.items) if load else "none"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--orders", type=int, default=90)
    parser.add_argument("--orders-per-s", type=float, default=3.0)
    parser.add_argument("--probes", type=int, default=6, help="probe items per channel")
    parser.add_argument("--amazon-poll-s", type=int, default=1)
    parser.add_argument("--items", type=int, default=0, help="load items (0: no load)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 3 <= args.orders <= 3000 or not 0.1 <= args.orders_per_s <= 50 or \
            not 1 <= args.probes <= 100 or not 1 <= args.amazon_poll_s <= 3600 or \
            not 0 <= args.items <= 100000 or not 5 <= args.duration <= 3600:
        parser.error("--orders 3..3000, --orders-per-s 0.1..50, --probes 1..100, "
                     "--amazon-poll-s 1..3600, --items 0..100000, --duration 5..3600")
    run = Run(args)
    try:
        run.run()
    finally:
        run.stop()


if __name__ == "__main__":
    sys.exit(main())
