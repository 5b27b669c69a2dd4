#!/usr/bin/env python3
"""push_bench.py — how long a till sale takes to show at a channel while the ledger is busy.

Starts, on 127.0.0.1 in a temporary directory: skuld, a channel stand-in (--kind: Shopify,
Square or Amazon, tests/standins/), and skuld-push for a channel whose pool holds four stores and
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

Where each stand-in shows the applied value: Shopify, the request log's `applied` changes of
"available" (`quantityAfterChange`); Square, the request log's `applied` physical counts
(`after`); Amazon, the state's `applications` (`quantity`, `at`, `source` patch or feed: a
PATCH applies when accepted, a feed's messages when it is processed; apply_delay_seconds 0).

--backlog N (Amazon): after the first push, the worker is stopped, N load items are counted to
one above the set-up's stock at STORE-1 (`skuldctl import counts`), the stand-in's buckets are
filled (a fresh quota, as after a quiet spell; the restarted worker's own buckets start full
too), the worker is started, and once nothing is dirty the drain time is the time from its
start to the last application of those N items' new values at the stand-in (a sample is
checked against the ledger); also how many went by PATCH and how many by feed. The stand-in's feed timing is --feed-queue-s / --feed-processing-s.

    python3 bench/push_bench.py [--build build] [--kind shopify|square|amazon]
                                [--items 10000] [--duration 30]
                                [--connections 1] [--batch 8] [--probes 2]
                                [--bucket 2000] [--restore-rate 100]
                                [--push-batch N] [--backlog N] [--catch-up 120] [--json]
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
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOCATION = "gid://shopify/Location/1"
SQUARE_LOCATION = "SQLOC1"
MARKET = "ATVPDKIKX0DER"
PROBES = 20
PROBE_STOCK = 100000


def gid(listing):
    return "gid://shopify/InventoryItem/%d" % listing


# What differs per channel: the listing text in skuld, the identifier the stand-in shows it
# under, the stand-in's seed, the worker's settings, and which request-log entries are the
# worker's write calls and its throttled answers.
KINDS = {
    "shopify": {
        "script": "shopify.py",
        "listing": lambda item: "%d" % (1000000 + item),
        "shown_id": lambda item: gid(1000000 + item),
        "seed": lambda items: {
            "locations": [{"id": LOCATION, "name": "Web", "active": True}],
            "levels": [{"inventoryItemId": gid(1000000 + item), "locationId": LOCATION,
                        "available": 0} for item in items]},
        "worker": lambda standin: ("api_token = shpat_standin\napi_version = 2025-01\n"
                                   "location = %s\n" % LOCATION),
        "write": lambda entry: entry.get("operation") == "mutation",
        "throttled": lambda entry: ("THROTTLED" in (entry.get("errors") or []) or
                                    entry.get("status") == 429),
        "items": lambda entry: len([change for change in entry.get("applied") or []
                                    if change.get("name") == "available"]),
    },
    "square": {
        "script": "square.py",
        "listing": lambda item: "SQ-%d" % item,
        "shown_id": lambda item: "SQ-%d" % item,
        "seed": lambda items: {
            "locations": [{"id": SQUARE_LOCATION, "name": "Web"}],
            "counts": [{"catalog_object_id": "SQ-%d" % item, "location_id": SQUARE_LOCATION,
                        "quantity": "0"} for item in items]},
        "worker": lambda standin: ("api_token = EAAAEstandin-square-token\n"
                                   "api_version = 2025-08-20\nlocation = %s\n"
                                   % SQUARE_LOCATION),
        "write": lambda entry: entry.get("operation") == "batch-create",
        "throttled": lambda entry: entry.get("status") == 429,
        "items": lambda entry: len((entry.get("body") or {}).get("changes") or []),
    },
    "amazon": {
        "script": "amazon.py",
        "listing": lambda item: "AMZ-%d" % item,
        "shown_id": lambda item: "AMZ-%d" % item,
        "seed": lambda items: {"listings": [{"sku": "AMZ-%d" % item, "quantity": 0}
                                            for item in items]},
        "worker": lambda standin: ("lwa_url = %s\nseller_id = A1STANDINSELLER\n"
                                   "lwa_client_id = amzn1.application-oa2-client.standin\n"
                                   "lwa_client_secret = standin-secret\n"
                                   "lwa_refresh_token = Atzr|standin-refresh\n"
                                   "location = %s\n" % (standin, MARKET)),
        "write": lambda entry: entry.get("operation") in ("patchListingsItem", "createFeed"),
        "throttled": lambda entry: entry.get("status") == 429,
        "items": lambda entry: 1 if entry.get("operation") == "patchListingsItem" else 0,
    },
}


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
        self.kind = KINDS[args.kind]
        self.channel = args.kind
        self.worker = None
        self.ticking = False

    def start(self, argv, **kwargs):
        process = subprocess.Popen(argv, **kwargs)
        self.processes.append(process)
        return process

    def stop(self):
        self.ticking = False
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
        with urllib.request.urlopen(self.standin + path, timeout=30) as answer:
            return answer.read().decode()

    def control(self, what, body):
        request = urllib.request.Request(self.standin + "/_control/" + what,
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()

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
        self.skuldctl("define-channel", self.channel, "--pool",
                      "STORE-1,STORE-2,STORE-3,STORE-4")
        mappings = os.path.join(self.dir, "mappings.csv")
        with open(mappings, "w") as out:
            out.write("sku,channel,listing\n")
            for item in range(1, total + 1):
                out.write("SKU-%d,%s,%s\n" % (item, self.channel, self.kind["listing"](item)))
        self.skuldctl("import", "mappings", mappings)
        for probe in range(items + 1, total + 1):
            self.skuldctl("receive", "SKU-%d@STORE-1" % probe, str(PROBE_STOCK))

    def start_standin(self):
        total = self.args.items + PROBES
        seed = self.kind["seed"](range(1, total + 1))
        seed_path = os.path.join(self.dir, "seed.json")
        port_path = os.path.join(self.dir, "standin.port")
        with open(seed_path, "w") as out:
            json.dump(seed, out)
        self.start(["/usr/bin/python3", "-B", os.path.join(ROOT, "tests", "standins",
                                                           self.kind["script"]),
                    "--port-file", port_path, "--seed", seed_path],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = wait_for("the stand-in's start", lambda: os.path.exists(port_path) and
                        open(port_path).read().strip(), 30)
        self.standin = "http://127.0.0.1:%s" % port
        if self.channel == "shopify":
            self.control("config", {"bucket_capacity": self.args.bucket,
                                    "restore_rate": self.args.restore_rate})
            self.control("bucket", {"currentlyAvailable": self.args.bucket})
        elif self.channel == "amazon":
            self.control("config", {"feed_queue_seconds": self.args.feed_queue_s,
                                    "feed_processing_seconds": self.args.feed_processing_s,
                                    "apply_delay_seconds": 0})
            # The stand-in moves feeds along and applies what is due only when a request
            # arrives; Amazon does it on its own. A control request every 0.5 s stands in
            # for that, so a feed's values are applied (and timed) within 0.5 s of being due.
            self.ticking = True
            threading.Thread(target=self.tick, daemon=True).start()

    def tick(self):
        while self.ticking:
            try:
                self.get("/_control/log?since=%d" % (1 << 40))
            except OSError:
                pass
            time.sleep(0.5)

    def start_worker(self):
        config = os.path.join(self.dir, "push.conf")
        with open(config, "w") as out:
            out.write("server = 127.0.0.1:%d\nchannel = %s\nkind = %s\napi_url = %s\n"
                      "idle_ms = 20\nreconcile_s = 0\nzero_resend_s = 0\n"
                      % (self.port, self.channel, self.channel, self.standin))
            out.write(self.kind["worker"](self.standin))
            if self.args.push_batch:
                out.write("batch = %d\n" % self.args.push_batch)
        self.worker = self.start([os.path.join(self.build, "channels", "skuld-push"),
                                  "--config", config],
                                 stderr=open(os.path.join(self.dir, "push.log"), "a"))

    def stop_worker(self):
        self.worker.send_signal(signal.SIGTERM)
        self.worker.wait(60)
        self.processes.remove(self.worker)
        self.worker = None

    def dirty(self):
        return json.loads(self.skuldctl("--json", "channels", self.channel))[0]["dirty"]

    def log_since(self, seq):
        entries = []
        for line in self.get("/_control/log?since=%d" % seq).splitlines():
            if line.strip():
                entries.append(json.loads(line))
        return entries

    def applied(self, entries):
        """Every value the stand-in applied: (time, shown id, quantity, source)."""
        if self.channel == "amazon":
            state = json.loads(self.get("/_control/state"))
            return [(a["at"], a["sku"], a["quantity"], a.get("source"))
                    for a in state.get("applications", [])]
        out = []
        for entry in entries:
            for change in entry.get("applied") or []:
                if self.channel == "shopify":
                    if change.get("name") == "available" and \
                            change.get("quantityAfterChange") is not None:
                        out.append((entry["time"], change.get("item"),
                                    change["quantityAfterChange"], "mutation"))
                elif change.get("after") is not None:
                    out.append((entry["time"], change.get("catalog_object_id"),
                                float(change["after"]), "batch-create"))
        return out

    def shown_now(self):
        """Amazon: what every listing shows now, by SKU."""
        state = json.loads(self.get("/_control/state"))
        return {listing["sku"]: listing.get("quantity") for listing in state["listings"]}

    def backlog(self):
        """Amazon: the drain of N changed listings after a stopped worker starts again."""
        args = self.args
        count = min(args.backlog, args.items)
        before = self.shown_now()
        self.stop_worker()
        counts = os.path.join(self.dir, "backlog.csv")
        with open(counts, "w") as out:
            out.write("sku,location,qty\n")
            for item in range(1, count + 1):
                # One above the set-up's stock (its second of load sold a few units, so
                # each item's value moves by those and one).
                out.write("SKU-%d,STORE-1,%d\n" % (item, 100000 + 1))
        self.skuldctl("import", "counts", counts, "--session", "backlog")
        skus = [self.kind["shown_id"](item) for item in range(1, count + 1)]
        buckets = json.loads(self.get("/_control/state"))["buckets"]
        self.control("buckets", {op: bucket.get("burst", 0) for op, bucket in buckets.items()})
        log_start = self.log_since(0)
        seq = log_start[-1]["seq"] if log_start else 0
        started = time.time()
        self.start_worker()
        # Done when nothing is dirty: every new value acknowledged, which for Amazon means
        # accepted (a PATCH) or reported (a feed), both after the stand-in applied it.
        clean = None
        deadline = started + args.backlog_timeout
        while time.time() < deadline:
            if self.dirty() == 0:
                clean = time.time() - started
                break
            time.sleep(1)
        shown = self.shown_now()
        want = {sku: shown.get(sku) for sku in skus}
        unchanged = len([sku for sku in skus if want[sku] == before.get(sku)])
        # The stand-in's values are the ledger's: checked for a sample.
        wrong = 0
        for item in range(1, count + 1, max(1, count // 20)):
            text = self.skuldctl("channel-level", "SKU-%d" % item, "--channel", self.channel)
            wrong += int(text.rsplit(":", 1)[1]) != want[self.kind["shown_id"](item)]
        applications = [a for a in self.applied([]) if a[0] >= started and a[1] in want]
        # From its last application on, a SKU shows its new value: that moment, and how.
        last = {}
        for at, sku, quantity, source in sorted(applications):
            last[sku] = (at, source, quantity)
        first = {sku: (at, source) for sku, (at, source, quantity) in last.items()
                 if quantity == want[sku]}
        entries = self.log_since(seq)
        feeds = [e for e in entries if e.get("operation") == "createFeed" and
                 e.get("status") == 202]
        return {
            "backlog": count,
            "drain_s": (round(max(at for at, _ in first.values()) - started, 1)
                        if len(first) == count else None),
            "shown": len(first),
            "by_patch": len([1 for _, source in first.values() if source == "patch"]),
            "by_feed": len([1 for _, source in first.values() if source == "feed"]),
            "feeds": len(feeds),
            "patch_calls": len([e for e in entries
                                if e.get("operation") == "patchListingsItem"]),
            "throttled": len([e for e in entries if e.get("status") == 429]),
            "clean_s": round(clean, 1) if clean is not None else None,
            "unchanged": unchanged, "sample_wrong": wrong,
        }

    def run(self):
        args = self.args
        self.start_skuld()
        self.catalog()
        self.start_standin()
        first = time.time()
        self.start_worker()
        wait_for("the first push of every listing", lambda: self.dirty() == 0,
                 args.first_push_timeout)
        first_push = time.time() - first
        backlog = self.backlog() if args.backlog else None
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
            text = self.skuldctl("channel-level", "SKU-%d" % item, "--channel", self.channel)
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
        # Bounded and not fatal: a channel that cannot keep up (Amazon's 5 PATCHes/s) is
        # reported with what it showed by then.
        caught_up = None
        deadline = load_ended + args.catch_up
        while time.time() < deadline:
            if self.dirty() == 0:
                caught_up = time.time() - load_ended
                break
            time.sleep(0.5)
        dirty_left = 0 if caught_up is not None else self.dirty()
        entries = self.log_since(seq)
        applied = self.applied(entries)
        by_id = {}
        for at, shown_id, quantity, _ in applied:
            by_id.setdefault(shown_id, []).append((at, quantity))
        latencies = []
        for probe, before, quantity in probes:
            shown = [at for at, value in by_id.get(self.kind["shown_id"](probe), [])
                     if value <= quantity and at >= before]
            if shown:
                latencies.append(min(shown) - before)
        window = [entry for entry in entries
                  if load_started <= entry["time"] <= load_ended and self.kind["write"](entry)]
        learned = [entry for entry in entries
                   if load_started + 10 <= entry["time"] <= load_ended]
        throttled = [entry for entry in learned if self.kind["throttled"](entry)]
        items_per_call = [self.kind["items"](entry) for entry in window]
        latencies.sort()

        def pick(fraction):
            if not latencies:
                return None
            return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]

        minutes = max(1e-9, (load_ended - load_started) / 60.0)
        result = {
            "kind": args.kind,
            "items": args.items, "probes": len(probes), "probes_seen": len(latencies),
            "load_events_per_s": load_figures.get("events_per_s"),
            "first_push_s": round(first_push, 2),
            "latency_s": {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99),
                          "max": latencies[-1] if latencies else None},
            "calls_per_minute": round(len(window) / minutes, 1),
            "items_per_call": (round(sum(items_per_call) / len(items_per_call), 1)
                               if items_per_call else 0),
            "throttled_after_10s": len(throttled),
            "caught_up_s": round(caught_up, 1) if caught_up is not None else None,
            "dirty_left": dirty_left,
        }
        if args.kind == "shopify":
            result.update({"bucket": args.bucket, "restore_rate": args.restore_rate})
        if args.kind == "amazon":
            result["feeds_in_load"] = len([e for e in window
                                           if e.get("operation") == "createFeed"])
        if backlog is not None:
            result["backlog"] = backlog
        if args.json:
            print(json.dumps(result))
        else:
            lat = result["latency_s"]
            fmt = lambda v: "-" if v is None else "%.2f s" % v
            print("push_bench: %s, %d listings, load %s events/s for %d s" %
                  (args.kind, args.items + PROBES, result["load_events_per_s"], args.duration))
            print("  first push of every listing  %.1f s" % first_push)
            print("  till sale -> channel          p50 %s  p90 %s  p99 %s  max %s  (%d of %d "
                  "probes seen)" % (fmt(lat["p50"]), fmt(lat["p90"]), fmt(lat["p99"]),
                                    fmt(lat["max"]), len(latencies), len(probes)))
            print("  write calls                   %.1f per minute, %.1f items per call" %
                  (result["calls_per_minute"], result["items_per_call"]))
            print("  throttled after 10 s          %d" % len(throttled))
            print("  caught up after the load      %s (%d dirty left)" %
                  (fmt(caught_up), dirty_left))
            if backlog is not None:
                print("  backlog of %d                 drained in %s (%d by PATCH, %d by feed, "
                      "%d feeds; nothing dirty after %s)" %
                      (backlog["backlog"], fmt(backlog["drain_s"]), backlog["by_patch"],
                       backlog["by_feed"], backlog["feeds"], fmt(backlog["clean_s"])))
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
    parser.add_argument("--kind", choices=sorted(KINDS), default="shopify")
    parser.add_argument("--push-batch", type=int, default=0,
                        help="the worker's batch setting (default: the worker's, 250)")
    parser.add_argument("--backlog", type=int, default=0,
                        help="Amazon: the drain time of this many changed listings")
    parser.add_argument("--backlog-timeout", type=int, default=1800)
    parser.add_argument("--first-push-timeout", type=int, default=1800)
    parser.add_argument("--catch-up", type=int, default=120,
                        help="seconds to wait for nothing dirty after the load")
    parser.add_argument("--feed-queue-s", type=float, default=1.0,
                        help="Amazon stand-in: a feed's IN_QUEUE time")
    parser.add_argument("--feed-processing-s", type=float, default=1.0,
                        help="Amazon stand-in: a feed's IN_PROGRESS time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.duration < 5 or args.duration > 3600 or args.items < 1 or args.items > 100000:
        parser.error("--duration 5..3600, --items 1..100000")
    if args.backlog and args.kind != "amazon":
        parser.error("--backlog is for --kind amazon")
    run = Run(args)
    try:
        run.run()
    finally:
        run.stop()


if __name__ == "__main__":
    sys.exit(main())
