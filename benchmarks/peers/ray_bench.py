#!/usr/bin/env python3
"""Ray's side of the peers' benchmark (benchmarks/peers/run.py runs it in its own venv).

`micro`: Ray's microbenchmark definitions (ray/_private/ray_perf.py) at the sizes spindle's
benchmarks use: tasks sync and async, 1:1 actor calls sync and async, 1:n actor calls async,
and put then get of 1 KB. Prints one JSON line per scenario: {"scenario", "ops_per_second"}.

`seeds`: the seeds' workloads at the samples' sizes (samples/*.cc), and large values made by
an actor and summed by tasks (benchmarks/large_values.cc), each under ray.init with
the resources the sample gives its runtime, run once untimed (Ray starts its worker processes
then) and once timed. Prints one JSON line per workload: {"workload", "seconds"}.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import ray


def emit(record):
    print(json.dumps(record), flush=True)


def rate(call, seconds, per_call=1):
    """Calls per second (times per_call) over about `seconds`, after one warm-up call."""
    call()
    count, start = 0, time.perf_counter()
    while True:
        call()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count * per_call / elapsed


def init(num_cpus):
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)


# ---- microbenchmarks -------------------------------------------------------------------

@ray.remote
def small_value():
    return 0


@ray.remote
class Server:
    def small_value(self):
        return 0


def micro(args):
    cores = os.cpu_count()
    init(cores)
    batch = 1000
    emit({"scenario": "tasks_sync",
          "ops_per_second": rate(lambda: ray.get(small_value.remote()), args.seconds)})
    emit({"scenario": "tasks_async",
          "ops_per_second": rate(lambda: ray.get([small_value.remote() for _ in range(batch)]),
                                 args.seconds, batch)})
    server = Server.remote()
    emit({"scenario": "actor_sync",
          "ops_per_second": rate(lambda: ray.get(server.small_value.remote()), args.seconds)})
    emit({"scenario": "actor_async",
          "ops_per_second": rate(
              lambda: ray.get([server.small_value.remote() for _ in range(batch)]),
              args.seconds, batch)})
    servers = [Server.remote() for _ in range(cores)]  # spindle: one per worker
    emit({"scenario": "actor_1_to_n",
          "ops_per_second": rate(
              lambda: ray.get([servers[i % cores].small_value.remote() for i in range(batch)]),
              args.seconds, batch)})
    value = np.ones(1024, dtype=np.uint8)
    emit({"scenario": "put_get_1kb",
          "ops_per_second": rate(lambda: ray.get(ray.put(value)), args.seconds)})
    ray.shutdown()


# ---- the seeds' workloads --------------------------------------------------------------

@ray.remote
class KeyedParameterServer:
    def __init__(self, keys):
        self.params = {key: 0.0 for key in keys}

    def get(self, key):
        return self.params[key]

    def set(self, key, value):
        self.params[key] = value


@ray.remote
def trainer(server, key, iterations, work):
    for _ in range(iterations):
        value = ray.get(server.get.remote(key))
        time.sleep(work)
        ray.get(server.set.remote(key, value + 1))


def parameter_server(quick):
    trainers, iterations, work = (5, 3, 0.005) if quick else (5, 10, 0.1)
    init(trainers)

    def run():
        server = KeyedParameterServer.remote([f"key{t}" for t in range(trainers)])
        start = time.perf_counter()
        ray.get([trainer.remote(server, f"key{t}", iterations, work) for t in range(trainers)])
        return time.perf_counter() - start
    return run


@ray.remote
class Shard:
    def __init__(self, n):
        self.params = np.ones(n)

    def get(self):
        return self.params

    def push(self, gradient):
        self.params -= 0.1 * gradient


@ray.remote
def shard_worker(shards, sizes, iterations):
    cuts = np.cumsum(sizes)[:-1]
    for _ in range(iterations):
        params = np.concatenate(ray.get([shard.get.remote() for shard in shards]))
        gradient = 1e-3 * params + 1e-6
        ray.get([shard.push.remote(part)
                 for shard, part in zip(shards, np.split(gradient, cuts))])


def sharded_parameter_server(quick, num_shards=2):
    """The seed's sharded server; spindle's distributed sample runs it with 3 shards (on 3 of
    4 ranks), and Ray's shards are processes of their own either way."""
    mb, workers, iterations = (4, 2, 2) if quick else (100, 4, 10)
    num_shards = 2 if quick else num_shards
    n = int(mb * (1 << 20) / 8)
    init(os.cpu_count())  # spindle's sample: a runtime with the machine's totals

    def run():
        sizes = [len(part) for part in np.array_split(np.empty(n), num_shards)]
        shards = [Shard.remote(size) for size in sizes]
        ray.get([shard.get.remote() for shard in shards])  # built before the clock starts
        start = time.perf_counter()
        ray.get([shard_worker.remote(shards, sizes, iterations) for _ in range(workers)])
        return time.perf_counter() - start
    return run


@ray.remote
def increment(x, work):
    time.sleep(work)
    return x + 1


@ray.remote
def add(a, b, work):
    time.sleep(work / 10)
    return a + b


def map_reduce(quick):
    items, work = (20, 0.001) if quick else (100, 0.01)
    init(16)  # spindle's sample: 16 cpus, since the simulated work waits

    def run():
        start = time.perf_counter()
        level = [increment.remote(i, work) for i in range(items)]
        while len(level) > 1:
            nxt = [add.remote(level[i], level[i + 1], work) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2 == 1:
                nxt.append(level[-1])
            level = nxt
        total = ray.get(level[0])
        assert total == items * (items + 1) // 2, total
        return time.perf_counter() - start
    return run


@ray.remote
def sleeper(index, seconds):
    time.sleep(seconds)
    return index


def pipeline(quick, durations):
    process = 0.05 if quick else 1.0
    init(len(durations))

    def run():
        start = time.perf_counter()
        pending = [sleeper.remote(i, d) for i, d in enumerate(durations)]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready[0])
            time.sleep(process)  # processing overlaps the tasks still running
        return time.perf_counter() - start
    return run


@ray.remote
class Producer:
    def __init__(self, n):
        self.n = n

    def make(self, i):
        return np.full(self.n, float(i))


@ray.remote
def total(value):
    return float(value.sum())


def large_values(quick):
    """benchmarks/large_values.cc: an actor returns large arrays, tasks sum them."""
    mb, values, in_flight = (8, 8, 2) if quick else (40, 40, 2)
    n = mb * (1 << 20) // 8
    init(os.cpu_count())

    def run():
        producer = Producer.remote(n)
        ray.get(producer.make.remote(0))  # built before the clock starts
        start = time.perf_counter()
        got = 0.0
        for first in range(0, values, in_flight):
            got += sum(ray.get([total.remote(producer.make.remote(i))
                                for i in range(first, min(values, first + in_flight))]))
        assert got == n * values * (values - 1) / 2, got
        return time.perf_counter() - start
    return run


def seeds(args):
    durations = [float(d) for d in args.durations.split(",")]
    # Each workload starts Ray with the sample's resources and gives back its timed run.
    for name, workload in (("parameter_server", lambda: parameter_server(args.quick)),
                           ("sharded_parameter_server",
                            lambda: sharded_parameter_server(args.quick)),
                           ("distributed_parameter_server",
                            lambda: sharded_parameter_server(args.quick, num_shards=3)),
                           ("map_reduce", lambda: map_reduce(args.quick)),
                           ("pipeline", lambda: pipeline(args.quick, durations)),
                           ("large_values", lambda: large_values(args.quick))):
        run = workload()
        run()  # untimed: Ray starts its worker processes
        seconds = run()
        ray.shutdown()
        emit({"workload": name, "seconds": seconds})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("micro")
    m.add_argument("--seconds", type=float, default=1.0, help="time per scenario")
    s = sub.add_parser("seeds")
    s.add_argument("--quick", action="store_true", help="the samples' --quick sizes")
    s.add_argument("--durations", required=True,
                   help="the pipeline's task durations, as spindle's sample printed them")
    args = parser.parse_args()
    (micro if args.command == "micro" else seeds)(args)


if __name__ == "__main__":
    sys.exit(main())
