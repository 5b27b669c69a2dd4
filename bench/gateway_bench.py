#!/usr/bin/env python3
"""gateway_bench.py — how long a channel's order takes to reach the ledger, and the other channel.

Starts, on 127.0.0.1 in a temporary directory: skuld, skuld-gateway (the Shopify order
webhooks of channel "web"), and the Shopify stand-in with skuld-push for a second channel
("shopify", pool STORE-1..4, every item listed). skuld-bench's reserve/commit/release load
runs over the load items. Meanwhile this script sends signed `orders/create` deliveries for
the probe items to the gateway, one at a time, and records:

  - order -> ledger: from the POST to its 200. The gateway answers 200 only after skuld
    acknowledged the SALE, so this is when the sale is durable in the ledger.
  - order -> other channel: from the POST to the stand-in's log entry that set the probe's
    quantity to the value the order made (or lower).

Prints p50/p90/p99/max of both, as text or (--json) JSON. Every wait is bounded; everything
started is stopped.

    python3 bench/gateway_bench.py [--build build] [--items 10000] [--duration 30]
                                   [--orders-per-s 5] [--connections 1] [--batch 32] [--json]
"""

import argparse
import base64
import hashlib
import hmac
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
LOCATION = "gid://shopify/Location/1"
SECRET = "bench-secret"
PROBES = 20


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit("gateway_bench: %s did not happen within %d s" % (what, seconds))


def percentiles(values):
    values = sorted(values)
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    pick = lambda f: values[min(len(values) - 1, int(f * len(values)))]
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": values[-1]}


class Run:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.dir = tempfile.mkdtemp(prefix="skuld-gateway-bench-")
        self.processes = []

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

    def skuldctl(self, *argv):
        done = subprocess.run([os.path.join(self.build, "client", "skuldctl"), "--server",
                               "127.0.0.1:%d" % self.port] + list(argv),
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit("gateway_bench: skuldctl %s: %s%s" % (" ".join(argv), done.stdout,
                                                                   done.stderr))
        return done.stdout

    def listening(self, process, marker):
        line = process.stdout.readline()
        if marker not in line:
            raise SystemExit("gateway_bench: no %r in %r" % (marker, line))
        return int(line.split(marker)[1].split()[0])

    def setup(self):
        total = self.args.items + PROBES
        config = os.path.join(self.dir, "skuld.conf")
        with open(os.path.join(HERE, "skuld-bench.conf")) as base, open(config, "w") as out:
            out.write(base.read())
            out.write("listings_max = %d\ncodes_max = %d\n" % (total + 64, 2 * total + 64))
        skuld = self.start([os.path.join(self.build, "server", "skuld"), "--listen",
                            "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data"),
                            "--config", config], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        self.port = self.listening(skuld, "listening on 127.0.0.1:")
        subprocess.run([os.path.join(self.build, "bench", "skuld-bench"), "--server",
                        "127.0.0.1:%d" % self.port, "--setup", "--items", str(total),
                        "--locations", "4", "--stock", "100000", "--duration", "1",
                        "--connections", "1"], check=True, capture_output=True, timeout=300)
        self.skuldctl("define-channel", "shopify", "--pool", "STORE-1,STORE-2,STORE-3,STORE-4")
        mappings = os.path.join(self.dir, "mappings.csv")
        with open(mappings, "w") as out:
            out.write("sku,channel,listing\n")
            for item in range(1, total + 1):
                out.write("SKU-%d,shopify,%d\n" % (item, 1000000 + item))
        self.skuldctl("import", "mappings", mappings)
        # The gateway: online orders of "web" are fulfilled from STORE-1.
        spool = os.path.join(self.dir, "spool")
        os.mkdir(spool)
        gateway_config = os.path.join(self.dir, "gateway.conf")
        with open(gateway_config, "w") as out:
            out.write("listen = 127.0.0.1:0\nserver = 127.0.0.1:%d\nchannel = web\n"
                      "secret = %s\nlocation = STORE-1\nspool = %s\n"
                      % (self.port, SECRET, spool))
        gateway = self.start([os.path.join(self.build, "channels", "skuld-gateway"), "--config",
                              gateway_config], stdout=subprocess.PIPE,
                             stderr=open(os.path.join(self.dir, "gateway.log"), "w"),
                             text=True)
        self.gateway = "http://127.0.0.1:%d" % self.listening(gateway, "listening on 127.0.0.1:")
        # The other channel: the Shopify stand-in and its worker.
        seed = {"locations": [{"id": LOCATION, "name": "Web", "active": True}],
                "levels": [{"inventoryItemId": "gid://shopify/InventoryItem/%d" % (1000000 + i),
                            "locationId": LOCATION, "available": 0}
                           for i in range(1, total + 1)]}
        seed_path, port_path = (os.path.join(self.dir, "seed.json"),
                                os.path.join(self.dir, "standin.port"))
        with open(seed_path, "w") as out:
            json.dump(seed, out)
        self.start(["/usr/bin/python3", "-B", os.path.join(ROOT, "tests", "standins",
                                                           "shopify.py"),
                    "--port-file", port_path, "--seed", seed_path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = wait_for("the stand-in", lambda: os.path.exists(port_path) and
                        open(port_path).read().strip(), 30)
        self.standin = "http://127.0.0.1:%s" % port
        push_config = os.path.join(self.dir, "push.conf")
        with open(push_config, "w") as out:
            out.write("server = 127.0.0.1:%d\nchannel = shopify\napi_url = %s\n"
                      "api_token = shpat_standin\nlocation = %s\nidle_ms = 20\n"
                      "reconcile_s = 0\nzero_resend_s = 0\n" % (self.port, self.standin, LOCATION))
        self.start([os.path.join(self.build, "channels", "skuld-push"), "--config", push_config],
                   stderr=subprocess.DEVNULL)
        wait_for("the first push", lambda: json.loads(
            self.skuldctl("--json", "channels", "shopify"))[0]["dirty"] == 0, 600)

    def post(self, order_id, sku, quantity):
        body = json.dumps({"id": order_id, "source_name": "web",
                           "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "line_items": [{"id": order_id * 10 + 1, "sku": sku,
                                           "quantity": quantity}]}).encode()
        signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
        request = urllib.request.Request(
            self.gateway + "/webhooks/shopify", data=body,
            headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                     "X-Shopify-Webhook-Id": "bench-%d" % order_id,
                     "X-Shopify-Hmac-SHA256": signature.decode()})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status

    def run(self):
        args = self.args
        self.setup()
        start = {}
        for item in range(args.items + 1, args.items + PROBES + 1):
            text = self.skuldctl("channel-level", "SKU-%d" % item, "--channel", "shopify")
            start[item] = int(text.rsplit(":", 1)[1])
        log = self.get_log(0)
        seq = log[-1]["seq"] if log else 0
        load = self.start([os.path.join(self.build, "bench", "skuld-bench"), "--server",
                           "127.0.0.1:%d" % self.port, "--items", str(args.items),
                           "--locations", "4", "--duration", str(args.duration),
                           "--connections", str(args.connections), "--batch", str(args.batch),
                           "--json"], stdout=subprocess.PIPE, text=True)
        began = time.time()
        sold = dict.fromkeys(start, 0)
        orders, to_ledger = [], []
        order_id = 900000
        while time.time() < began + args.duration - 2:
            probe = args.items + 1 + (order_id % PROBES)
            order_id += 1
            before = time.time()
            if self.post(order_id, "SKU-%d" % probe, 1) != 200:
                raise SystemExit("gateway_bench: order %d was not answered 200" % order_id)
            to_ledger.append(time.time() - before)
            sold[probe] += 1
            orders.append((probe, before, start[probe] - sold[probe]))
            time.sleep(max(0.0, 1.0 / args.orders_per_s - (time.time() - before)))
        load_out, _ = load.communicate(timeout=args.duration + 60)
        events_per_s = json.loads(load_out.strip().splitlines()[-1]).get("events_per_s")
        wait_for("the channel to catch up", lambda: json.loads(
            self.skuldctl("--json", "channels", "shopify"))[0]["dirty"] == 0, 120)
        entries = self.get_log(seq)
        to_channel = []
        for probe, before, quantity in orders:
            gid = "gid://shopify/InventoryItem/%d" % (1000000 + probe)
            shown = [entry["time"] for entry in entries for change in entry.get("applied") or []
                     if change.get("item") == gid and change.get("name") == "available" and
                     change.get("quantityAfterChange") is not None and
                     change["quantityAfterChange"] <= quantity and entry["time"] >= before]
            if shown:
                to_channel.append(min(shown) - before)
        result = {"items": args.items, "orders": len(orders), "load_events_per_s": events_per_s,
                  "order_to_ledger_s": percentiles(to_ledger),
                  "order_to_other_channel_s": percentiles(to_channel),
                  "orders_seen_at_other_channel": len(to_channel)}
        if args.json:
            print(json.dumps(result))
        else:
            fmt = lambda v: "-" if v is None else ("%.3f s" % v)
            for name, key in (("order -> ledger", "order_to_ledger_s"),
                              ("order -> other channel", "order_to_other_channel_s")):
                p = result[key]
                print("  %-24s p50 %s  p90 %s  p99 %s  max %s" % (
                    name, fmt(p["p50"]), fmt(p["p90"]), fmt(p["p99"]), fmt(p["max"])))
            print("  %d orders, load %s events/s, %d listings" %
                  (len(orders), events_per_s, args.items + PROBES))

    def get_log(self, seq):
        with urllib.request.urlopen(self.standin + "/_control/log?since=%d" % seq,
                                    timeout=30) as answer:
            return [json.loads(line) for line in answer.read().decode().splitlines()
                    if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--orders-per-s", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.duration < 5 or args.duration > 3600 or not 1 <= args.items <= 100000:
        parser.error("--duration 5..3600, --items 1..100000")
    run = Run(args)
    try:
        run.run()
    finally:
        run.stop()


if __name__ == "__main__":
    sys.exit(main())
