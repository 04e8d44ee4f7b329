#!/usr/bin/env python3
"""spindle against its peers on this machine, side by side, with a report.

Runs every scenario on every system, interleaved (each repetition visits the scenarios in
turn and rotates the order of the systems), for several repetitions, and writes
<out>/<machine>-<date>.md with the medians and spindle's ratio to each peer, plus one PNG
plot per group (gnuplot). Peers: oneTBB task_group and std::async (tasks), CAF (actors),
StarPU (heterogeneous tasks), Ray from PyPI in a venv under the build folder (Ray's
microbenchmarks and the seeds' workloads). A peer that cannot be installed or found is
reported as missing, with the reason, never silently dropped.

scripts/peers.sh installs the Debian packages, builds, then runs this; CTest runs --quick.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# A scenario: its group, label, and for each system how to measure it. Rates are operations
# per second (higher is better); workloads are seconds (lower is better).
# ("gbench", binary, benchmark name) | ("ray_micro" | "ray_seeds" | "ray_train", key) |
# ("sample", binary, report line[, extra flags]) | ("mpi_sample", binary, report line, ranks)
GROUPS = [
    ("Tasks", "tasks per second", [
        ("empty tasks, async (submit 10k, then get)", {
            "spindle": ("gbench", "tasks_benchmark", "EmptyTasksAsync_spindle/real_time"),
            "oneTBB": ("gbench", "tasks_benchmark", "EmptyTasksAsync_tbb/real_time"),
            "std::async": ("gbench", "tasks_benchmark", "EmptyTasksAsync_std_async/real_time"),
            "Ray": ("ray_micro", "tasks_async")}),
        ("empty tasks, sync (submit one, get it)", {
            "spindle": ("gbench", "tasks_benchmark", "EmptyTasksSync_spindle/real_time"),
            "oneTBB": ("gbench", "tasks_benchmark", "EmptyTasksSync_tbb/real_time"),
            "std::async": ("gbench", "tasks_benchmark", "EmptyTasksSync_std_async/real_time"),
            "Ray": ("ray_micro", "tasks_sync")}),
        ("fib(20) tree of tasks (calls per second)", {
            "spindle": ("gbench", "tasks_benchmark", "FibTree_spindle/20/real_time"),
            "oneTBB": ("gbench", "tasks_benchmark", "FibTree_tbb/20/real_time"),
            "std::async": ("gbench", "tasks_benchmark", "FibTree_std_async/20/real_time")}),
        ("put then get of 1 KB", {
            "spindle": ("gbench", "tasks_benchmark", "PutGet_spindle/1024/manual_time"),
            "Ray": ("ray_micro", "put_get_1kb")}),
    ]),
    ("Actors", "calls per second", [
        ("1:1 calls, sync (request/response ping-pong)", {
            "spindle": ("gbench", "actors_benchmark", "ActorCallsSync_spindle/real_time"),
            "CAF": ("gbench", "actors_benchmark", "ActorCallsSync_caf/real_time"),
            "Ray": ("ray_micro", "actor_sync")}),
        ("1:1 calls, async (1000 in flight)", {
            "spindle": ("gbench", "actors_benchmark", "ActorCallsAsync_spindle/real_time"),
            "CAF": ("gbench", "actors_benchmark", "ActorCallsAsync_caf/real_time"),
            "Ray": ("ray_micro", "actor_async")}),
        ("1:n fan-out (one caller, an actor per core)", {
            "spindle": ("gbench", "actors_benchmark", "ActorCallsOneToN_spindle/real_time"),
            "CAF": ("gbench", "actors_benchmark", "ActorCallsOneToN_caf/real_time"),
            "Ray": ("ray_micro", "actor_1_to_n")}),
    ]),
    ("Heterogeneous tasks", "tasks per second", [
        ("10k small vector-scaling tasks (4 KB each)", {
            "spindle": ("gbench", "starpu_benchmark", "SmallScaleTasks_spindle/real_time"),
            "StarPU": ("gbench", "starpu_benchmark", "SmallScaleTasks_starpu/real_time")}),
        ("chain of 10k dependent scalings", {
            "spindle": ("gbench", "starpu_benchmark", "Chain_spindle/real_time"),
            "StarPU": ("gbench", "starpu_benchmark", "Chain_starpu/real_time")}),
    ]),
    ("Seeds' workloads", "seconds", [
        ("parameter server (5 trainers)", {
            "spindle": ("sample", "parameter_server", "parallel trainers"),
            "Ray": ("ray_seeds", "parameter_server")}),
        ("sharded parameter server (host shards)", {
            "spindle": ("sample", "sharded_parameter_server", "host shards, workers as tasks"),
            "Ray": ("ray_seeds", "sharded_parameter_server")}),
        ("distributed parameter server (3 shards on 3 of 4 ranks / Ray actors)", {
            "spindle": ("mpi_sample", "distributed_parameter_server",
                        "shards on ranks, workers as tasks on rank 0", 4),
            "Ray": ("ray_seeds", "distributed_parameter_server")}),
        ("map and tree reduce", {
            "spindle": ("sample", "map_reduce", "parallel map, tree reduce"),
            "Ray": ("ray_seeds", "map_reduce")}),
        ("pipeline with wait", {
            "spindle": ("sample", "pipeline", "process each as it finishes (wait)"),
            "Ray": ("ray_seeds", "pipeline")}),
        ("large values: an actor returns 40 MB vectors, tasks sum them (40)", {
            "spindle": ("sample", "large_values", "large values, large-block reuse"),
            "Ray": ("ray_seeds", "large_values")}),
    ]),
    ("Training", "seconds", [
        ("Fashion-MNIST MLP, synchronous parameter server, one epoch", {
            "spindle": ("sample", "train_fashion_mnist", "train fashion-mnist, synchronous",
                        ["--mode", "sync", "--epochs", "1"]),
            "Ray": ("ray_train", "train_sync")}),
        ("Fashion-MNIST MLP, asynchronous parameter server, one epoch", {
            "spindle": ("sample", "train_fashion_mnist", "train fashion-mnist, asynchronous",
                        ["--mode", "async", "--epochs", "1"]),
            "Ray": ("ray_train", "train_async")}),
    ]),
]
RAY_SUITES = {"ray_micro": "microbenchmarks", "ray_seeds": "seeds", "ray_train": "training"}
SYSTEMS = ["spindle", "oneTBB", "std::async", "CAF", "StarPU", "Ray"]


def say(text):
    print(text, flush=True)


class Harness:
    def __init__(self, args):
        self.args = args
        self.bin = Path(args.build_dir).resolve() / "bin"
        self.log = open(Path(args.build_dir) / "peers.log", "a")
        self.missing = {}  # system -> reason
        self.results = {}  # (scenario, system) -> [values]
        self.ray_python = None
        self.durations = None  # the pipeline's, as spindle's sample printed them
        self.versions = None  # read from the machine, unless replotting
        self.date = datetime.date.today().isoformat()  # the run's, when replotting

    # ---- finding and installing the peers ------------------------------------------
    def run(self, command, env=None, timeout=900):
        self.log.write(f"$ {' '.join(map(str, command))}\n")
        self.log.flush()
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        self.log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} exited with {done.returncode}: "
                               f"{done.stderr.strip().splitlines()[-1:] or ''}")
        return done.stdout

    def find_peers(self):
        for binary, systems in (("tasks_benchmark", ["spindle", "oneTBB", "std::async"]),
                                ("actors_benchmark", ["CAF"]),
                                ("starpu_benchmark", ["StarPU"])):
            if not (self.bin / binary).exists():
                for system in systems:
                    self.missing.setdefault(system, f"{binary} was not built (see CMake's "
                                                    "output; scripts/peers.sh installs it)")
        if "CAF" not in self.missing:
            listed = self.run([self.bin / "actors_benchmark", "--benchmark_list_tests"])
            if "_caf" not in listed:
                self.missing["CAF"] = "libcaf-dev was not found when spindle was built"
        self.ray_python = self.ensure_ray()

    def ensure_ray(self):
        venv = Path(self.args.venv)
        python = venv / "bin" / "python"
        probe = [str(python), "-c", "import ray, numpy; print(ray.__version__)"]
        created = False
        try:
            if python.exists():
                self.ray_version = self.run(probe).strip()
                return python
            if self.args.no_install:
                raise RuntimeError(f"no venv at {venv} and --no-install was given")
            say(f"installing Ray from PyPI into {venv} (once) ...")
            created = True
            self.run([sys.executable, "-m", "venv", str(venv)])
            self.run([str(venv / "bin" / "pip"), "install", "--quiet", "--timeout", "60",
                      "--retries", "2", "ray", "numpy"], timeout=1800)
            self.ray_version = self.run(probe).strip()
            return python
        except Exception as error:  # any failure: Ray is reported missing, with why
            if created:  # half-made: the next run tries again
                shutil.rmtree(venv, ignore_errors=True)
            self.missing["Ray"] = f"not installed: {error}"
            return None

    # ---- measuring -----------------------------------------------------------------
    def gbench(self, binary, name):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            self.run([self.bin / binary, f"--benchmark_filter=^{re.escape(name.split('/')[0])}"
                      f"(/|$)", f"--benchmark_min_time={self.args.min_time}",
                      f"--benchmark_out={out.name}", "--benchmark_out_format=json"])
            runs = json.load(open(out.name))["benchmarks"]
        for run in runs:
            if run["name"] == name:
                if "items_per_second" in run:
                    return run["items_per_second"]
                scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1}[run["time_unit"]]
                return 1 / (run["real_time"] * scale)
        raise RuntimeError(f"{binary} reported no '{name}'")

    def sample(self, binary, line, extra=(), launcher=()):
        with tempfile.NamedTemporaryFile(suffix=".tsv") as out:
            flags = (["--quick"] if self.args.quick else []) + list(extra)
            stdout = self.run([*launcher, self.bin / binary, *flags],
                              env={"SPINDLE_SAMPLE_RESULTS": out.name})
            if binary == "pipeline":
                self.durations = re.search(r"durations ([\d. ]+) s", stdout).group(1).split()
            if line is None:
                return None
            for row in open(out.name):
                name, seconds = row.rstrip("\n").split("\t")
                if name == line:
                    return float(seconds)
        raise RuntimeError(f"{binary} reported no '{line}'")

    def mpi_sample(self, binary, line, ranks):
        """A cluster sample, on `ranks` ranks of this machine (rank 0 reports)."""
        mpirun = shutil.which("mpirun")
        if not mpirun:
            raise RuntimeError("mpirun not found (openmpi-bin)")
        return self.sample(binary, line, launcher=[mpirun, "--oversubscribe",
                                                   "--allow-run-as-root", "-np", str(ranks)])

    def ray_suite(self, which):
        """One Ray process runs the whole suite (Ray takes seconds to start)."""
        script = [str(self.ray_python), str(HERE / "ray_bench.py")]
        if which == "ray_micro":
            command = [*script, "micro", "--seconds", str(self.args.ray_seconds)]
        elif which == "ray_train":  # one epoch of each mode, as the spindle sample's runs
            command = [str(self.ray_python), str(HERE / "train_fashion_mnist_ray.py"),
                       "--quick" if self.args.quick else "--epochs=1"]
        else:
            if not self.durations:
                self.sample("pipeline", None)  # learns the durations
            command = [*script, "seeds", "--durations", ",".join(self.durations)]
            command += ["--quick"] if self.args.quick else []
        out = self.run(command, env={"RAY_AUTH_MODE": "disabled"}, timeout=1800)
        values = {}
        for row in out.splitlines():
            if row.startswith("{"):
                record = json.loads(row)
                key = record.get("scenario") or record.get("workload")
                values[key] = record.get("ops_per_second") or record.get("seconds")
        return values

    def measure(self):
        plan = []  # (scenario, system, how), one repetition's order
        for _, _, scenarios in GROUPS:
            for label, systems in scenarios:
                for system, how in systems.items():
                    plan.append((label, system, how))
        reps = self.args.reps
        per_rep = sum(1 for _, s, h in plan if s not in self.missing and h[0] in ("gbench", "sample", "mpi_sample"))
        per_rep += sum(1 for suite in RAY_SUITES if "Ray" not in self.missing)
        step = 0
        for rep in range(reps):
            suites = {}
            for label, system, how in plan:
                if system in self.missing:
                    continue
                if how[0] in RAY_SUITES:
                    if how[0] not in suites:
                        step += 1
                        say(f"[{step}/{per_rep * reps}] repetition {rep + 1}/{reps}: Ray "
                            f"({RAY_SUITES[how[0]]})")
                        try:
                            suites[how[0]] = self.ray_suite(how[0])
                        except Exception as error:
                            suites[how[0]] = {}
                            say(f"    failed: {error}")
                    value = suites[how[0]].get(how[1])
                else:
                    step += 1
                    try:
                        measure = {"gbench": self.gbench, "sample": self.sample,
                                   "mpi_sample": self.mpi_sample}[how[0]]
                        value = measure(*how[1:])
                    except Exception as error:
                        value = None
                        say(f"    {system} on '{label}' failed: {error}")
                    say(f"[{step}/{per_rep * reps}] repetition {rep + 1}/{reps}: {label} - "
                        f"{system}: {fmt(value)}")
                if value is not None:
                    self.results.setdefault((label, system), []).append(value)
            # Rotate which system of a scenario goes first from one repetition to the next.
            plan = rotate_systems(plan)

    # ---- the report ----------------------------------------------------------------
    def report(self):
        date = self.date
        out = Path(self.args.out)
        stem = f"{self.args.machine}-{date}"
        lines = [f"# spindle against its peers: {self.args.machine}, {date}", "",
                 f"Command: `{self.args.command}`.", "",
                 f"Machine: {machine_line()}.", "",
                 f"Each figure is the median of {self.args.reps} repetitions; the repetitions "
                 "are interleaved (every scenario on every system, then again, with the order of "
                 "the systems rotated each time), so drift in the machine's speed touches all "
                 "systems alike. Each C++ figure comes from its own process (Google Benchmark, "
                 f"min time {self.args.min_time} s); Ray's from one process per repetition for "
                 "each suite, after a warm-up. \"spindle vs X\" is spindle's speed over X's: "
                 "above 1, spindle is faster.", ""]
        versions = self.versions or peer_versions(self)
        lines += ["Peers: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]
        if self.missing:
            lines += ["**Missing peers** (not measured):", ""]
            lines += [f"- {system}: {why}" for system, why in sorted(self.missing.items())]
            lines += [""]
        for group, unit, scenarios in GROUPS:
            present = [s for s in SYSTEMS if any(s in systems for _, systems in scenarios)]
            peers = [s for s in present if s != "spindle"]
            lines += [f"## {group} ({unit}{', lower is better' if unit == 'seconds' else ''})",
                      ""]
            lines += ["| scenario | " + " | ".join(present) + " | " +
                      " | ".join(f"spindle vs {p}" for p in peers) + " |"]
            lines += ["| --- |" + " ---: |" * (len(present) + len(peers))]
            chart = []
            for label, systems in scenarios:
                medians = {}
                cells = []
                for system in present:
                    if system not in systems:
                        cells.append("n/a")
                    elif system in self.missing:
                        cells.append("missing")
                    elif not self.results.get((label, system)):
                        cells.append("failed")
                    else:
                        medians[system] = statistics.median(self.results[(label, system)])
                        cells.append(fmt(medians[system], unit))
                ratios = []
                for peer in peers:
                    if "spindle" in medians and peer in medians:
                        r = (medians["spindle"] / medians[peer] if unit != "seconds"
                             else medians[peer] / medians["spindle"])
                        ratios.append(f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x")
                    else:
                        ratios.append("missing" if peer in self.missing and peer in systems
                                      else "n/a")
                lines += [f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |"]
                chart.append((label, [medians.get(s) for s in present]))
            png = f"{stem}-{slug(group)}.png"
            if plot(chart, present, group, unit, out / png, self):
                lines += ["", f"![{group}]({png})"]
            lines += [""]
        path = out / f"{stem}.md"
        path.write_text("\n".join(lines))
        raw = {"machine": self.args.machine, "date": date,
               "reps": self.args.reps, "min_time": self.args.min_time,
               "command": self.args.command, "missing": self.missing,
               "versions": versions,
               "results": [{"scenario": k[0], "system": k[1], "values": v}
                           for k, v in sorted(self.results.items())]}
        (out / f"{stem}.json").write_text(json.dumps(raw, indent=1))
        say(f"\nreport: {path}")
        return path


def rotate_systems(plan):
    """The same plan with each scenario's systems rotated by one."""
    out, i = [], 0
    while i < len(plan):
        j = i
        while j < len(plan) and plan[j][0] == plan[i][0]:
            j += 1
        block = plan[i:j]
        out += block[1:] + block[:1]
        i = j
    return out


def fmt(value, unit="tasks per second"):
    if value is None:
        return "-"
    if unit == "seconds":
        return f"{value:.3f} s"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_line():
    model = "unknown CPU"
    try:
        for row in open("/proc/cpuinfo"):
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.1f} GiB, {platform.platform()}"


def default_machine():
    """"2core-amd-epyc": cores and the CPU's first words."""
    words = re.sub(r"\(.*?\)", "", machine_line().split("(", 1)[-1].split(")", 1)[0])
    return slug(f"{os.cpu_count()}core {' '.join(words.split()[:2])}")


def peer_versions(harness):
    versions = {}
    for system, package in (("oneTBB", "libtbb-dev"), ("CAF", "libcaf-dev"),
                            ("StarPU", "libstarpu-dev"), ("Boost.Fiber", "libboost-fiber-dev")):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                               capture_output=True, text=True).stdout.strip()
            versions[system] = v or "not installed"
        except OSError:
            versions[system] = "unknown"
    versions["Ray"] = getattr(harness, "ray_version", None) or "missing"
    return versions


def quoted(text):
    """A gnuplot double-quoted string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def plot(chart, systems, group, unit, png, harness):
    """Bars of each system's speed relative to spindle's (log scale), one group per scenario."""
    if not shutil.which("gnuplot"):
        harness.missing.setdefault("gnuplot (plots)", "gnuplot is not installed: "
                                   "apt-get install gnuplot-nox")
        return False
    data = png.with_suffix(".dat")
    with open(data, "w") as out:
        for label, values in chart:
            base = values[systems.index("spindle")]
            row = []
            for v in values:
                if v is None or base is None:
                    row.append("NaN")
                else:
                    row.append(f"{(v / base if unit != 'seconds' else base / v):.6g}")
            out.write(quoted(label) + " " + " ".join(row) + "\n")
    columns = ", ".join(
        f"{quoted(data)} using {i + 2}{':xtic(1)' if i == 0 else ''} title {quoted(s)}"
        for i, s in enumerate(systems))
    title = quoted(f"{group}: speed relative to spindle (spindle = 1, higher is faster; log scale)")
    script = f"""set terminal pngcairo size 1200,650 noenhanced
set output {quoted(png)}
set title {title}
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set format y "%g"
set bmargin 7
set grid ytics
set key outside top center horizontal
set xtics rotate by -20 left
plot {columns}
"""
    done = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    data.unlink()
    if done.returncode != 0:
        say(f"gnuplot failed on {png}: {done.stderr.strip()}")
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 repetitions, short runs, the samples' --quick sizes")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 2)")
    parser.add_argument("--build-dir", default=str(REPO / "build"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--machine", default=default_machine(),
                        help="names the report: <machine>-<date>.md")
    parser.add_argument("--venv", default=os.environ.get("SPINDLE_PEERS_VENV"),
                        help="Ray's venv (default <build-dir>/peers-venv)")
    parser.add_argument("--no-install", action="store_true", help="do not pip install Ray")
    parser.add_argument("--from-json", help="write the report and plots again from the raw "
                        "figures a run saved (<machine>-<date>.json), without measuring")
    args = parser.parse_args()
    args.reps = args.reps or (2 if args.quick else 5)
    if args.reps < 1:
        parser.error(f"--reps {args.reps}: at least 1 is needed")
    args.min_time = 0.05 if args.quick else 0.5
    args.ray_seconds = 0.2 if args.quick else 1.0
    args.venv = args.venv or str(Path(args.build_dir) / "peers-venv")
    args.command = "scripts/peers.sh" + (" --quick" if args.quick else "")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
        args.reps, args.min_time, args.command = raw["reps"], raw["min_time"], raw["command"]
        args.build_dir = tempfile.gettempdir()  # only the log goes there
        harness = Harness(args)
        harness.missing, harness.versions = raw["missing"], raw["versions"]
        # The report keeps the run's machine and date (older files name them only).
        named = re.fullmatch(r"(.+)-(\d{4}-\d{2}-\d{2})", Path(args.from_json).stem)
        args.machine = raw.get("machine") or (named.group(1) if named else args.machine)
        harness.date = raw.get("date") or (named.group(2) if named else harness.date)
        harness.results = {(r["scenario"], r["system"]): r["values"] for r in raw["results"]}
        harness.report()
        return 0
    if not (Path(args.build_dir) / "bin" / "tasks_benchmark").exists():
        sys.exit(f"{args.build_dir}/bin/tasks_benchmark is missing: build spindle first "
                 "(scripts/peers.sh does)")
    harness = Harness(args)
    say(f"spindle peers' benchmark: {machine_line()}")
    harness.find_peers()
    for system, why in sorted(harness.missing.items()):
        say(f"missing: {system}: {why}")
    harness.measure()
    path = harness.report()
    # The report must account for every peer: measured, or listed as missing.
    text = path.read_text()
    for system in SYSTEMS:
        assert system in text, f"{system} is neither measured nor reported missing"
    return 0


if __name__ == "__main__":
    sys.exit(main())
