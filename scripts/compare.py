#!/usr/bin/env python3
"""Before and after, interleaved: runs one benchmark binary from two build folders in turn,
ROUNDS times (alternating which goes first), and prints for each benchmark the median rate of
each, the median of the per-round ratios (after / before) with their range, and the medians
of its memory and latency counters. Adjacent runs share the machine's state, so on a noisy
machine the per-round ratio is the figure to trust.

  scripts/compare.py BEFORE_BIN_DIR AFTER_BIN_DIR tasks_benchmark 'EmptyTasks.*_spindle' 9
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

COUNTERS = ("peak_rss_growth_MiB", "p50_ns", "p99_ns", "bytes_per_blocked_task")


def run(bin_dir, binary, benchmark_filter, out_file):
    """{benchmark name: (items per second, {counter: value})} of one run."""
    subprocess.run([os.path.join(bin_dir, binary), f"--benchmark_filter={benchmark_filter}",
                    f"--benchmark_out={out_file}", "--benchmark_out_format=json"],
                   capture_output=True, text=True, check=True)
    with open(out_file) as f:
        benchmarks = json.load(f)["benchmarks"]
    return {b["name"]: (b.get("items_per_second"), {k: b[k] for k in COUNTERS if k in b})
            for b in benchmarks if b.get("run_type") != "aggregate"}


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    before_dir, after_dir, binary, benchmark_filter = sys.argv[1:5]
    rounds = int(sys.argv[5])
    out_file = os.path.join(tempfile.mkdtemp(), "out.json")
    ratios, rates, counters = {}, {}, {}
    for r in range(rounds):
        sides = [("before", before_dir), ("after", after_dir)]
        if r % 2:
            sides.reverse()
        got = {side: run(d, binary, benchmark_filter, out_file) for side, d in sides}
        for name, (before_rate, _) in got["before"].items():
            if name not in got["after"] or not before_rate:
                continue
            ratios.setdefault(name, []).append(got["after"][name][0] / before_rate)
            for side in ("before", "after"):
                rate, values = got[side][name]
                rates.setdefault((name, side), []).append(rate)
                for key, value in values.items():
                    counters.setdefault(name, {}).setdefault(f"{side}_{key}", []).append(value)
    for name, r in ratios.items():
        extra = " ".join(f"{k}={statistics.median(v):.4g}"
                         for k, v in counters.get(name, {}).items())
        print(f"{name}: before {statistics.median(rates[(name, 'before')]) / 1e6:.3f}M/s "
              f"after {statistics.median(rates[(name, 'after')]) / 1e6:.3f}M/s "
              f"ratio median {statistics.median(r):.2f} (range {min(r):.2f}-{max(r):.2f}) {extra}")


if __name__ == "__main__":
    main()
