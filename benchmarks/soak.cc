// Soak: a mixed load for a set time, checked as it goes and at the end. Each round runs
// chains of dependent tasks, nested gets (a task tree), an actor that crashes and restarts
// and is killed into a restart, a cancel, a task that succeeds on a retry, codelets,
// parameter-server pushes (a shard killed into a restart among them every fifth round) with
// a checkpoint saved and loaded, and a put/get of a Buffer.
// Every result is compared with its expected value; at the end nothing may be left queued,
// running or blocked, and the resident memory at the end may exceed the highest seen during
// the warm-up by less than 2%. One line per interval (seconds, rounds, resident MiB) gives
// the memory curve.
//
//   soak [--seconds 600] [--warmup 60] [--quick]   (--quick: 60 s, 15 s warm-up)
// Exit status 0 when every check held, 1 otherwise.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Resident memory in MiB, from /proc/self/statm (pages).

std::atomic<long> failures{0};

void expect(bool holds, const char* what) {
  if (!holds) {
    std::fprintf(stderr, "soak: check failed: %s\n", what);
    ++failures;
  }
}

// An actor that crashes on request and counts its calls since it was last built.
struct Counter {
  long calls = 0;
  long add(long n) {
    if (n < 0) throw spindle::ActorCrash("asked to crash");
    calls += n;
    return calls;
  }
};

// Nested tasks: a tree of depth `depth` whose leaves return 1; the root returns 2^depth.
long tree(spindle::Runtime& rt, int depth) {
  if (depth == 0) return 1;
  auto child = [&rt, depth] { return tree(rt, depth - 1); };
  auto left = rt.task(child).remote(), right = rt.task(child).remote();
  return left.get() + right.get();
}

void round_of(spindle::Runtime& rt, spindle::ParameterServer<float>& server,
              std::vector<float>& params, spindle::ActorHandle<Counter>& counter,
              const std::string& checkpoint, long round) {
  // Chains of dependent tasks: each adds one to its argument.
  auto add_one = rt.task([](long x) { return x + 1; });
  spindle::ObjectRef<long> chain = rt.put(round);
  for (int i = 0; i < 50; ++i) chain = add_one.remote(chain);
  expect(chain.get() == round + 50, "a chain of 50 dependent tasks");

  // Nested gets.
  expect(rt.task([&rt] { return tree(rt, 6); }).remote().get() == 64, "a tree of nested gets");

  // An actor: a crash and its restart, calls in order, a kill into a restart.
  try {
    (void)counter.call(&Counter::add, -1L).get();
    expect(false, "a crashing call fails");
  } catch (const spindle::Error&) {
  }
  expect(counter.call(&Counter::add, 2L).get() == 2, "the rebuilt actor starts from zero");
  expect(counter.call(&Counter::add, 3L).get() == 5, "an actor's calls run in order");
  rt.kill(counter, {.no_restart = false});
  expect(counter.call(&Counter::add, 1L).get() == 1, "an actor killed into a restart");

  // A cancel: a task that waits for another's result is cancelled before it can start.
  auto slow = rt.task([] {
                  spindle::this_task::sleep_for(std::chrono::microseconds(100));
                  return 0L;
                }).remote();
  auto cancelled = rt.task([](long) { return 1L; }).remote(slow);
  rt.cancel(cancelled);
  try {
    expect(cancelled.get() == 1, "a task the cancel came too late for");  // it may have run
  } catch (const spindle::CancelledError&) {
  }

  // A retry: the first attempt of each task fails.
  auto attempts = std::make_shared<std::atomic<int>>(0);
  auto flaky = rt.task([attempts] {
                   if (attempts->fetch_add(1) == 0) throw std::runtime_error("first attempt");
                   return 7;
                 }).options({.max_retries = 1, .retry_exceptions = true});
  expect(flaky.remote().get() == 7 && attempts->load() == 2, "a task that succeeds on a retry");

  // Codelets on a Buffer.
  auto doubled = rt.task(spindle::codelet(
      "soak scale",
      [](const spindle::Buffer<float>& x) {
        spindle::Buffer<float> y(x.size(), spindle::Location::host());
        y.copy_from(x);
        spindle::ops::scale(y, 2.0f);
        return spindle::ops::dot(y, y);
      },
      [](const spindle::Buffer<float>& x) {
        spindle::Buffer<float> y(x.size());
        y.copy_from(x);
        spindle::ops::scale(y, 2.0f);
        return spindle::ops::dot(y, y);
      }));
  auto ones = rt.put(spindle::Buffer<float>(std::vector<float>(1000, 1.0f)));
  expect(doubled.remote(ones).get() == 4000.0f, "a codelet on a stored buffer");

  // Parameter-server pushes, with a shard killed into a restart among them every few rounds,
  // then a checkpoint saved and loaded back.
  std::vector<float> gradient(params.size(), 1.0f);
  std::vector<spindle::ObjectRef<std::uint64_t>> pushed;
  for (int i = 0; i < 4; ++i) {
    for (auto& ref : server.push(gradient)) pushed.push_back(ref);
    for (float& p : params) p -= 0.01f;
    if (i == 1 && round % 5 == 0) {
      rt.kill(server.shards()[(round / 5) % server.num_shards()], {.no_restart = false});
    }
  }
  for (const auto& ref : pushed) (void)ref.get();
  if (round % 10 == 0) {
    server.save(checkpoint);
    server.load(checkpoint);
  }
  std::vector<float> now = server.pull();
  bool same = now.size() == params.size();
  for (std::size_t i = 0; same && i < now.size(); ++i) {
    same = std::abs(now[i] - params[i]) <= 1e-3f * (1 + std::abs(params[i]));
  }
  expect(same, "the parameter server holds every push, once");
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"seconds", {600, 60, "how long the load runs", 1, 86400}},
                        {"warmup", {60, 15, "seconds before the memory baseline", 1, 3600}}});
  const double seconds = flags["seconds"], warmup = std::min(flags["warmup"], seconds / 2);
  spindle::Runtime rt({.perf_model_file = ""});
  std::string checkpoint =
      (std::filesystem::temp_directory_path() / ("spindle_soak_" + std::to_string(::getpid())))
          .string();
  std::vector<float> params(4096, 1.0f);
  spindle::ParameterServer<float> server(rt, params, {.num_shards = 2, .lr = 0.01});
  auto counter = rt.actor<Counter>().options({.max_restarts = -1}).remote();

  std::printf("seconds,rounds,resident_mib\n");
  const auto start = Clock::now();
  // The baseline is the highest resident size seen during the warm-up: how many fibers are
  // blocked at once, so how many stack pages are touched, varies with the machine's load.
  double baseline = 0, last_print = -seconds;  // the first line at 0 s
  long rounds = 0;
  for (;;) {
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (elapsed >= seconds) break;
    if (elapsed < warmup && rounds % 64 == 0) {
      baseline = std::max(baseline, samples::resident_mib());
    }
    if (elapsed - last_print >= seconds / 60) {
      std::printf("%.0f,%ld,%.1f\n", elapsed, rounds, samples::resident_mib());
      std::fflush(stdout);
      last_print = elapsed;
    }
    round_of(rt, server, params, counter, checkpoint, rounds++);
  }
  std::filesystem::remove(checkpoint);

  spindle::RuntimeStatus status = rt.status();
  const bool idle = status.waiting_for_dependencies == 0 && status.waiting_for_resources == 0 &&
                    status.running == 0 && status.blocked == 0;
  expect(idle, "nothing is left queued, running or blocked");
  if (!idle) {
    std::fprintf(stderr,
                 "soak: %zu waiting for dependencies, %zu for resources, %zu running, %zu "
                 "blocked\n",
                 status.waiting_for_dependencies, status.waiting_for_resources, status.running,
                 status.blocked);
  }
  const double end = samples::resident_mib();
  const double growth = baseline > 0 ? (end - baseline) / baseline : 0;
  expect(growth < 0.02, "resident memory grew by less than 2% after the warm-up");
  std::printf(
      "# %ld rounds in %.0f s; resident %.1f MiB at most in the %.0f s warm-up, %.1f MiB at the "
      "end "
      "(%+.2f%%); %ld failed checks\n",
      rounds, seconds, baseline, warmup, end, 100 * growth, failures.load());
  return failures == 0 ? 0 : 1;
}
