// Actor calls against CAF 0.17 request/response in the same binary, with the scenarios of
// Ray's `ray microbenchmark`:
//   sync        one call, then its result, then the next
//   async       1,000 calls, then all their results
//   concurrent  async, on an actor with max_concurrency 16 (CAF has no such actor)
//   1:n async   one caller spreads 1,000 calls a round over n actors (n = workers)
//   n:n async   n callers, each making 1,000 calls to its own actor
//   n:n arg     n:n async with a 1 KB argument copied into every call
// and the creation and destruction of 10,000 actors (time, and memory per live actor).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "ratio_reporter.hpp"
#include "spindle/spindle.hpp"

#ifdef SPINDLE_BENCH_CAF
#include <caf/all.hpp>
#endif

namespace {

constexpr int kBatch = 1'000;
constexpr int kArgBytes = 1024;

spindle::Runtime& runtime() {
  static spindle::Runtime rt;
  return rt;
}

int num_actors() { return static_cast<int>(runtime().num_workers()); }

struct Server {
  int small_value() { return 0; }
  int with_arg(const std::vector<char>& arg) { return static_cast<int>(arg.size()); }
};

spindle::ActorHandle<Server> new_server(int max_concurrency = 1) {
  auto server = runtime().actor<Server>().options({.max_concurrency = max_concurrency}).remote();
  server.ready().get();
  return server;
}

void ActorCallsSync_spindle(benchmark::State& state) {
  auto server = new_server();
  for (auto _ : state) benchmark::DoNotOptimize(server.call(&Server::small_value).get());
  state.SetItemsProcessed(state.iterations());
}

void calls_then_gets(benchmark::State& state, const std::vector<spindle::ActorHandle<Server>>& to) {
  std::vector<spindle::ObjectRef<int>> refs(kBatch);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) refs[i] = to[i % to.size()].call(&Server::small_value);
    for (const auto& ref : refs) benchmark::DoNotOptimize(ref.get());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void ActorCallsAsync_spindle(benchmark::State& state) { calls_then_gets(state, {new_server()}); }

void ActorCallsConcurrent_spindle(benchmark::State& state) {
  calls_then_gets(state, {new_server(16)});
}

void ActorCallsOneToN_spindle(benchmark::State& state) {
  std::vector<spindle::ActorHandle<Server>> servers;
  for (int i = 0; i < num_actors(); ++i) servers.push_back(new_server());
  calls_then_gets(state, servers);
}

// n caller tasks, each with its own server; `with_arg` adds a 1 KB argument to every call.
void n_to_n(benchmark::State& state, bool with_arg) {
  std::vector<spindle::ActorHandle<Server>> servers;
  for (int i = 0; i < num_actors(); ++i) servers.push_back(new_server());
  auto caller = runtime()
                    .task([with_arg](const spindle::ActorHandle<Server>& server) {
                      std::vector<char> arg(kArgBytes, 1);
                      std::vector<spindle::ObjectRef<int>> refs(kBatch);
                      for (auto& ref : refs) {
                        ref = with_arg ? server.call(&Server::with_arg, arg)
                                       : server.call(&Server::small_value);
                      }
                      for (const auto& ref : refs) benchmark::DoNotOptimize(ref.get());
                    })
                    .options({.num_cpus = 0});
  std::vector<spindle::ObjectRef<void>> callers(servers.size());
  for (auto _ : state) {
    for (std::size_t i = 0; i < servers.size(); ++i) callers[i] = caller.remote(servers[i]);
    for (const auto& done : callers) done.get();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * static_cast<long>(servers.size()));
}

void ActorCallsNToN_spindle(benchmark::State& state) { n_to_n(state, false); }
void ActorCallsNToNWithArg_spindle(benchmark::State& state) { n_to_n(state, true); }

long resident_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Creation (until every constructor ran) and destruction (until the runtime counts no live
// actor) of 10,000 actors; items are actors created.
void CreateDestroy10kActors_spindle(benchmark::State& state) {
  constexpr int kActors = 10'000;
  using Clock = std::chrono::steady_clock;
  double create_s = 0, destroy_s = 0, kib_per_actor = 0;
  for (auto _ : state) {
    long before = resident_kib();
    auto start = Clock::now();
    std::vector<spindle::ActorHandle<Server>> actors;
    actors.reserve(kActors);
    for (int i = 0; i < kActors; ++i) actors.push_back(runtime().actor<Server>().remote());
    for (const auto& actor : actors) actor.ready().get();
    auto created = Clock::now();
    kib_per_actor = static_cast<double>(resident_kib() - before) / kActors;
    actors.clear();
    while (runtime().status().actors > 0) std::this_thread::yield();
    auto destroyed = Clock::now();
    create_s += std::chrono::duration<double>(created - start).count();
    destroy_s += std::chrono::duration<double>(destroyed - created).count();
    state.SetIterationTime(std::chrono::duration<double>(destroyed - start).count());
  }
  auto n = static_cast<double>(state.iterations());
  state.counters["create_us_per_actor"] = create_s / n / kActors * 1e6;
  state.counters["destroy_us_per_actor"] = destroy_s / n / kActors * 1e6;
  state.counters["resident_B_per_actor"] = kib_per_actor * 1024;
  state.SetItemsProcessed(state.iterations() * kActors);
}

#ifdef SPINDLE_BENCH_CAF

// CAF with as many scheduler threads as spindle has workers. Made and destroyed inside
// main: a caf::actor_system destroyed at exit (a static) corrupts the heap.
struct CafSystem {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  CafSystem() {
    config.set("scheduler.max-threads", static_cast<std::size_t>(num_actors()));
    system = std::make_unique<caf::actor_system>(config);
  }
};
CafSystem* caf_instance = nullptr;

caf::actor_system& caf_system() { return *caf_instance->system; }

caf::behavior caf_server(caf::event_based_actor*) {
  return {[](int) { return 0; },
          [](const std::vector<char>& arg) { return static_cast<int>(arg.size()); }};
}

struct CafServers {
  std::vector<caf::actor> actors;
  explicit CafServers(int n) {
    for (int i = 0; i < n; ++i) actors.push_back(caf_system().spawn(caf_server));
  }
  ~CafServers() {
    for (auto& actor : actors) caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  }
};

void ActorCallsSync_caf(benchmark::State& state) {
  CafServers servers(1);
  caf::scoped_actor self{caf_system()};
  for (auto _ : state) {
    self->request(servers.actors[0], caf::infinite, 0)
        .receive([](int value) { benchmark::DoNotOptimize(value); }, [](caf::error&) {});
  }
  state.SetItemsProcessed(state.iterations());
}

// Requests a batch, then receives every response (each handle in order).
void caf_requests_then_responses(benchmark::State& state, caf::scoped_actor& self,
                                 const std::vector<caf::actor>& to, const caf::message& message) {
  std::vector<decltype(self->request(to[0], caf::infinite, message))> pending;
  pending.reserve(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    pending.push_back(self->request(to[i % to.size()], caf::infinite, message));
  }
  for (auto& response : pending) {
    response.receive([](int value) { benchmark::DoNotOptimize(value); }, [](caf::error&) {});
  }
  (void)state;
}

void ActorCallsAsync_caf(benchmark::State& state) {
  CafServers servers(1);
  caf::scoped_actor self{caf_system()};
  auto message = caf::make_message(0);
  for (auto _ : state) caf_requests_then_responses(state, self, servers.actors, message);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void ActorCallsOneToN_caf(benchmark::State& state) {
  CafServers servers(num_actors());
  caf::scoped_actor self{caf_system()};
  auto message = caf::make_message(0);
  for (auto _ : state) caf_requests_then_responses(state, self, servers.actors, message);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// n caller threads, each with its own server and scoped actor.
void caf_n_to_n(benchmark::State& state, bool with_arg) {
  const int n = num_actors();
  CafServers servers(n);
  auto message =
      with_arg ? caf::make_message(std::vector<char>(kArgBytes, 1)) : caf::make_message(0);
  for (auto _ : state) {
    std::vector<std::thread> callers;
    for (int i = 0; i < n; ++i) {
      callers.emplace_back([&, i] {
        caf::scoped_actor self{caf_system()};
        caf_requests_then_responses(state, self, {servers.actors[i]}, message);
      });
    }
    for (auto& caller : callers) caller.join();
  }
  state.SetItemsProcessed(state.iterations() * kBatch * n);
}

void ActorCallsNToN_caf(benchmark::State& state) { caf_n_to_n(state, false); }
void ActorCallsNToNWithArg_caf(benchmark::State& state) { caf_n_to_n(state, true); }

void CreateDestroy10kActors_caf(benchmark::State& state) {
  constexpr int kActors = 10'000;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    {
      CafServers servers(kActors);
      caf::scoped_actor self{caf_system()};
      for (auto& actor : servers.actors) {  // as spindle waits for every constructor
        self->request(actor, caf::infinite, 0).receive([](int) {}, [](caf::error&) {});
      }
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(state.iterations() * kActors);
}

BENCHMARK(ActorCallsSync_caf)->UseRealTime();
BENCHMARK(ActorCallsAsync_caf)->UseRealTime();
BENCHMARK(ActorCallsOneToN_caf)->UseRealTime();
BENCHMARK(ActorCallsNToN_caf)->UseRealTime();
BENCHMARK(ActorCallsNToNWithArg_caf)->UseRealTime();
BENCHMARK(CreateDestroy10kActors_caf)->UseManualTime()->Unit(benchmark::kMillisecond);

#endif  // SPINDLE_BENCH_CAF

BENCHMARK(ActorCallsSync_spindle)->UseRealTime();
BENCHMARK(ActorCallsAsync_spindle)->UseRealTime();
BENCHMARK(ActorCallsConcurrent_spindle)->UseRealTime();
BENCHMARK(ActorCallsOneToN_spindle)->UseRealTime();
BENCHMARK(ActorCallsNToN_spindle)->UseRealTime();
BENCHMARK(ActorCallsNToNWithArg_spindle)->UseRealTime();
BENCHMARK(CreateDestroy10kActors_spindle)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
#ifdef SPINDLE_BENCH_CAF
  CafSystem caf;
  caf_instance = &caf;
  std::vector<std::string> baselines{"caf"};
#else
  std::vector<std::string> baselines{};
#endif
  return spindle::bench::run_with_ratios(argc, argv, baselines, [] {
    std::printf("spindle actors benchmark: %u workers; CAF baseline: %s\n", runtime().num_workers(),
#ifdef SPINDLE_BENCH_CAF
                "CAF 0.17 (libcaf-dev), as many scheduler threads"
#else
                "missing (libcaf-dev not found)"
#endif
    );
  });
}
