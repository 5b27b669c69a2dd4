#!/usr/bin/env python3
"""push_bench.py — how long a till sale takes to show at a channel while the ledger is busy.

Starts, on 127.0.0.1 in a temporary directory: skuld, the Shopify stand-in
(tests/standins/shopify.py), and skuld-push for a channel whose pool holds four stores and
whose listings are ITEMS load items plus PROBES probe items. skuld-bench then runs its
reserve/commit/release load over the load items (every event changes one item's channel
quantity), while this script sells one unit of a probe item at a time at STORE-1 and takes
the time from just before the sale to the stand-in's log entry that set the probe's quantity
to the value the sale made (or lower: a later sale of the same probe may be pushed in the
same call, which is coalescing at work). The probes are listed like the load items and wait in the same
dirty set, so their latency is an item's latency under the load; the load never touches them,
so the value a probe's sale makes is known exactly.

Prints, as text and (--json) JSON: the load's events/s, probe latencies (p50, p90, p99, max),
mutation calls per minute, items per call, throttled answers after the first 10 s (the
worker learns the bucket from the first answer), and how long the first full push of every
listing took. Every wait is bounded; everything started is stopped at the end.

    python3 bench/push_bench.py [--build build] [--items 10000] [--duration 30]
                                [--connections 1] [--batch 8] [--probes 2]
                                [--bucket 2000] [--restore-rate 100] [--json]
"""

import argparse
import json
import os
import random
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
PROBES = 20
PROBE_STOCK = 100000


def gid(listing):
    return "gid://shopify/InventoryItem/%d" % listing


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit("push_bench: %s did not happen within %d s" % (what, seconds))


class Run:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.dir = tempfile.mkdtemp(prefix="skuld-push-bench-")
        self.processes = []
        self.port = 0
        self.standin = ""

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
        command = [os.path.join(self.build, "client", "skuldctl"), "--server",
                   "127.0.0.1:%d" % self.port] + list(argv)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise SystemExit("push_bench: skuldctl %s: %s%s" % (" ".join(argv), done.stdout,
                                                                done.stderr))
        return done.stdout

    def get(self, path):
        with urllib.request.urlopen(self.standin + path, timeout=10) as answer:
            return answer.read().decode()

    def start_skuld(self):
        total = self.args.items + PROBES
        config = os.path.join(self.dir, "skuld.conf")
        with open(os.path.join(HERE, "skuld-bench.conf")) as base, open(config, "w") as out:
            out.write(base.read())
            out.write("listings_max = %d\ncodes_max = %d\n" % (total + 64, 2 * total + 64))
        skuld = self.start([os.path.join(self.build, "server", "skuld"), "--listen",
                            "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data"),
                            "--config", config], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        line = skuld.stdout.readline()
        marker = "listening on 127.0.0.1:"
        if marker not in line:
            raise SystemExit("push_bench: skuld did not start: %r" % line)
        self.port = int(line.split(marker)[1].split()[0])
        self.skuld = skuld

    def catalog(self):
        items, total = self.args.items, self.args.items + PROBES
        # The load items and their stock: skuld-bench's own set-up.
        subprocess.run([os.path.join(self.build, "bench", "skuld-bench"), "--server",
                        "127.0.0.1:%d" % self.port, "--setup", "--items", str(total),
                        "--locations", "4", "--stock", "100000", "--duration", "1",
                        "--connections", "1"],
                       check=True, capture_output=True, timeout=300)
        self.skuldctl("define-channel", "shopify", "--pool", "STORE-1,STORE-2,STORE-3,STORE-4")
        mappings = os.path.join(self.dir, "mappings.csv")
        with open(mappings, "w") as out:
            out.write("sku,channel,listing\n")
            for item in range(1, total + 1):
                out.write("SKU-%d,shopify,%d\n" % (item, 1000000 + item))
        self.skuldctl("import", "mappings", mappings)
        for probe in range(items + 1, total + 1):
            self.skuldctl("receive", "SKU-%d@STORE-1" % probe, str(PROBE_STOCK))

    def start_standin(self):
        total = self.args.items + PROBES
        seed = {"locations": [{"id": LOCATION, "name": "Web", "active": True}],
                "levels": [{"inventoryItemId": gid(1000000 + item), "locationId": LOCATION,
                            "available": 0} for item in range(1, total + 1)]}
        seed_path = os.path.join(self.dir, "seed.json")
        port_path = os.path.join(self.dir, "standin.port")
        with open(seed_path, "w") as out:
            json.dump(seed, out)
        self.start(["/usr/bin/python3", "-B", os.path.join(ROOT, "tests", "standins",
                                                           "shopify.py"),
                    "--port-file", port_path, "--seed", seed_path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = wait_for("the stand-in's start", lambda: os.path.exists(port_path) and
                        open(port_path).read().strip(), 30)
        self.standin = "http://127.0.0.1:%s" % port
        settings = json.dumps({"bucket_capacity": self.args.bucket,
                               "restore_rate": self.args.restore_rate}).encode()
        request = urllib.request.Request(self.standin + "/_control/config", data=settings,
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).read()
        request = urllib.request.Request(self.standin + "/_control/bucket",
                                         data=json.dumps({"currentlyAvailable":
                                                          self.args.bucket}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).read()

    def start_worker(self):
        config = os.path.join(self.dir, "push.conf")
        with open(config, "w") as out:
            out.write("server = 127.0.0.1:%d\nchannel = shopify\napi_url = %s\n"
                      "api_token = shpat_standin\napi_version = 2025-01\nlocation = %s\n"
                      "idle_ms = 20\nreconcile_s = 0\nzero_resend_s = 0\n"
                      % (self.port, self.standin, LOCATION))
        self.start([os.path.join(self.build, "channels", "skuld-push"), "--config", config],
                   stderr=open(os.path.join(self.dir, "push.log"), "w"))

    def dirty(self):
        return json.loads(self.skuldctl("--json", "channels", "shopify"))[0]["dirty"]

    def log_since(self, seq):
        entries = []
        for line in self.get("/_control/log?since=%d" % seq).splitlines():
            if line.strip():
                entries.append(json.loads(line))
        return entries

    def run(self):
        args = self.args
        self.start_skuld()
        self.catalog()
        self.start_standin()
        first = time.time()
        self.start_worker()
        wait_for("the first push of every listing", lambda: self.dirty() == 0, 600)
        first_push = time.time() - first
        log_start = self.log_since(0)
        seq = log_start[-1]["seq"] if log_start else 0
        load = self.start([os.path.join(self.build, "bench", "skuld-bench"), "--server",
                           "127.0.0.1:%d" % self.port, "--items", str(args.items),
                           "--locations", "4", "--duration", str(args.duration),
                           "--connections", str(args.connections), "--batch",
                           str(args.batch), "--json"],
                          stdout=subprocess.PIPE, text=True)
        load_started = time.time()
        probes = []  # (probe item, time before the sale, quantity the sale makes)
        start_quantity = {}
        for item in range(args.items + 1, args.items + PROBES + 1):
            text = self.skuldctl("channel-level", "SKU-%d" % item, "--channel", "shopify")
            start_quantity[item] = int(text.rsplit(":", 1)[1])
        sold = {item: 0 for item in start_quantity}
        rng = random.Random(7)
        while time.time() < load_started + args.duration - 2:
            probe = rng.randrange(args.items + 1, args.items + PROBES + 1)
            before = time.time()
            self.skuldctl("sell", "SKU-%d@STORE-1" % probe, "1")
            sold[probe] += 1
            probes.append((probe, before, start_quantity[probe] - sold[probe]))
            time.sleep(max(0.0, 1.0 / args.probes - (time.time() - before)))
        load_out, _ = load.communicate(timeout=args.duration + 60)
        load_figures = json.loads(load_out.strip().splitlines()[-1])
        load_ended = time.time()
        wait_for("the channel to catch up", lambda: self.dirty() == 0, 120)
        entries = self.log_since(seq)
        latencies = []
        for probe, before, quantity in probes:
            shown = [entry["time"] for entry in entries
                     for change in entry.get("applied") or []
                     if change.get("item") == gid(1000000 + probe) and
                     change.get("name") == "available" and
                     change.get("quantityAfterChange") is not None and
                     change["quantityAfterChange"] <= quantity and
                     entry["time"] >= before]
            if shown:
                latencies.append(min(shown) - before)
        window = [entry for entry in entries
                  if load_started <= entry["time"] <= load_ended and
                  entry.get("operation") == "mutation"]
        learned = [entry for entry in window if entry["time"] >= load_started + 10]
        throttled = [entry for entry in learned
                     if "THROTTLED" in (entry.get("errors") or []) or entry.get("status") == 429]
        items_per_call = [len([change for change in entry.get("applied") or []
                               if change.get("name") == "available"]) for entry in window]
        latencies.sort()

        def pick(fraction):
            if not latencies:
                return None
            return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]

        minutes = max(1e-9, (load_ended - load_started) / 60.0)
        result = {
            "items": args.items, "probes": len(probes), "probes_seen": len(latencies),
            "bucket": args.bucket, "restore_rate": args.restore_rate,
            "load_events_per_s": load_figures.get("events_per_s"),
            "first_push_s": round(first_push, 2),
            "latency_s": {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99),
                          "max": latencies[-1] if latencies else None},
            "calls_per_minute": round(len(window) / minutes, 1),
            "items_per_call": (round(sum(items_per_call) / len(items_per_call), 1)
                               if items_per_call else 0),
            "throttled_after_10s": len(throttled),
        }
        if args.json:
            print(json.dumps(result))
        else:
            lat = result["latency_s"]
            fmt = lambda v: "-" if v is None else "%.2f s" % v
            print("push_bench: %d listings, load %s events/s for %d s, bucket %d restoring "
                  "%d/s" % (args.items + PROBES, result["load_events_per_s"], args.duration,
                            args.bucket, args.restore_rate))
            print("  first push of every listing  %.1f s" % first_push)
            print("  till sale -> channel          p50 %s  p90 %s  p99 %s  max %s  (%d of %d "
                  "probes seen)" % (fmt(lat["p50"]), fmt(lat["p90"]), fmt(lat["p99"]),
                                    fmt(lat["max"]), len(latencies), len(probes)))
            print("  calls                         %.1f per minute, %.1f items per call" %
                  (result["calls_per_minute"], result["items_per_call"]))
            print("  throttled after 10 s          %d" % len(throttled))
        return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--probes", type=float, default=2.0, help="probe sales per second")
    parser.add_argument("--bucket", type=int, default=2000,
                        help="the stand-in's cost bucket (Shopify: 2000; Plus: 20000)")
    parser.add_argument("--restore-rate", type=int, default=100,
                        help="its restore rate per second (Shopify: 100; Plus: 1000)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.duration < 5 or args.duration > 3600 or args.items < 1 or args.items > 100000:
        parser.error("--duration 5..3600, --items 1..100000")
    run = Run(args)
    try:
        run.run()
    finally:
        run.stop()


if __name__ == "__main__":
    sys.exit(main())
