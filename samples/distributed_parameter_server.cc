// The sharded parameter server of the Ray quickstart, across the ranks of an Open MPI job:
// the parameters (100 MB of float64 by default) are split into shards that are actors on the
// ranks other than 0; workers (tasks on rank 0, the driver) pull every shard, concatenate,
// compute an update, split it and push each slice back to its shard. A sequential baseline
// on rank 0 does the same arithmetic on one plain vector first.
//
//   mpirun -np 4 distributed_parameter_server [--quick] [--mb 100] [--workers 4]
//                                             [--iterations 10] [--shards N]
//
// Then the synchronous variant, as data-parallel training runs it: a trainer actor on each
// rank but 0 holds the whole parameters; each round every trainer computes its gradient, the
// trainers sum them with a reduce-scatter (each gets its block of the sum), each updates its
// block with the mean, and an allgather gives every trainer the whole parameters again (a
// spindle::CollectiveGroup, on Open MPI's collectives). Its sequential baseline does the same
// rounds on one vector.
//
// Started alone it runs the same program with every shard, and the one trainer, on rank 0.
#include <algorithm>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "sample_support.hpp"
#include "spindle/cluster.hpp"
#include "spindle/spindle.hpp"

namespace {

constexpr double kRate = 0.1;

// One slice of the parameters, on whichever rank it was created on.
struct Shard {
  explicit Shard(std::uint64_t size) : values(size, 1.0) {}
  std::vector<double> values;
  std::uint64_t steps = 0;

  std::vector<double> pull() const { return values; }
  std::uint64_t push(const std::vector<double>& gradient) {
    for (std::size_t i = 0; i < values.size(); ++i) values[i] -= kRate * gradient[i];
    return ++steps;
  }
  double sum() const {
    double total = 0;
    for (double v : values) total += v;
    return total;
  }
};
SPINDLE_REMOTE_ACTOR(Shard, std::uint64_t);
SPINDLE_REMOTE_METHOD(Shard, pull);
SPINDLE_REMOTE_METHOD(Shard, push);
SPINDLE_REMOTE_METHOD(Shard, sum);

// One trainer of the synchronous variant: the whole parameters, on its rank.
struct Trainer {
  Trainer(std::uint64_t size, std::string group)
      : params(size, 1.0), group_name(std::move(group)) {}
  std::vector<double> params;
  std::string group_name;

  // Runs `rounds` rounds with the other trainers; returns the sum of its block of the
  // parameters (the blocks of all trainers make the whole).
  double train(std::uint64_t rounds) {
    auto group = spindle::CollectiveGroup::get(group_name);
    const auto [first, last] = group.block(params.size(), group.rank());
    std::vector<double> gradient(params.size()), summed(last - first), mine(last - first);
    const double members = group.size();
    for (std::uint64_t round = 0; round < rounds; ++round) {
      samples::compute_gradient(params, gradient);
      group.reduce_scatter(std::span<const double>(gradient), std::span<double>(summed));
      for (std::size_t i = 0; i < mine.size(); ++i) {
        mine[i] = params[first + i] - kRate * summed[i] / members;
      }
      group.allgather(std::span<const double>(mine), std::span<double>(params));
    }
    double total = 0;
    for (std::size_t i = first; i < last; ++i) total += params[i];
    return total;
  }
};
SPINDLE_REMOTE_ACTOR(Trainer, std::uint64_t, std::string);
SPINDLE_REMOTE_METHOD(Trainer, train);

}  // namespace

int main(int argc, char** argv) {
  spindle::Cluster cluster(argc, argv);  // every rank but 0 serves its shards here
  samples::Flags flags(argc, argv,
                       {{"mb", {100, 4, "parameters, in MB of float64", 0.01, 65536, false}},
                        {"shards", {0, 0, "shards; 0: one per rank but 0 (2 alone)", 0, 1024}},
                        {"workers", {4, 2, "workers pushing at once", 1, 10000}},
                        {"iterations", {10, 2, "iterations per worker", 1, 1e6}}});
  const std::size_t n = static_cast<std::size_t>(flags["mb"] * (1 << 20) / sizeof(double));
  const long workers = flags.count("workers"), iterations = flags.count("iterations");
  const int servers = std::max(cluster.size() - 1, 1);  // the ranks shards go to
  const std::size_t shards = flags["shards"] > 0  ? static_cast<std::size_t>(flags["shards"])
                             : cluster.size() > 1 ? static_cast<std::size_t>(servers)
                                                  : 2;
  if (shards > n) {
    std::fprintf(stderr, "--shards %zu: at most one shard per parameter (%zu)\n", shards, n);
    return 2;
  }
  spindle::Runtime rt;
  std::printf(
      "distributed parameter server: %zu float64 (%.0f MB) in %zu shards on %d rank(s), "
      "%ld workers x %ld iterations on rank 0\n",
      n, flags["mb"], shards, cluster.size(), workers, iterations);

  // Sequential: one vector, the same pulls, gradients and updates, one after another.
  samples::Stopwatch sequential_clock;
  double sequential_mean = 0;
  {
    std::vector<double> reference(n, 1.0), pulled(n), gradient(n);
    for (long step = 0; step < workers * iterations; ++step) {
      pulled = reference;
      samples::compute_gradient(pulled, gradient);
      for (std::size_t i = 0; i < n; ++i) reference[i] -= kRate * gradient[i];
    }
    for (double v : reference) sequential_mean += v;
    sequential_mean /= static_cast<double>(n);
  }
  const double sequential_seconds = sequential_clock.seconds();

  // Shards on the serving ranks in turn (rank 0 alone), each a slice of the parameters.
  std::vector<std::size_t> begin(shards + 1);
  for (std::size_t s = 0; s <= shards; ++s) begin[s] = n * s / shards;
  std::vector<spindle::ActorHandle<Shard>> shard;
  for (std::size_t s = 0; s < shards; ++s) {
    const int rank = cluster.size() > 1 ? 1 + static_cast<int>(s % servers) : 0;
    shard.push_back(rt.actor<Shard>()
                        .options({.rank = rank})
                        .remote(static_cast<std::uint64_t>(begin[s + 1] - begin[s])));
  }
  for (const auto& each : shard) each.ready().get();

  samples::Stopwatch clock;
  auto worker = rt.task([&](long) {
    std::vector<double> params(n), gradient(n), slice;
    for (long i = 0; i < iterations; ++i) {
      std::vector<spindle::ObjectRef<std::vector<double>>> parts;
      for (const auto& each : shard) parts.push_back(each.call(&Shard::pull));
      for (std::size_t s = 0; s < shards; ++s) {
        const std::vector<double>& part = parts[s].get();
        std::copy(part.begin(), part.end(), params.begin() + static_cast<long>(begin[s]));
      }
      samples::compute_gradient(params, gradient);
      std::vector<spindle::ObjectRef<std::uint64_t>> pushed;
      for (std::size_t s = 0; s < shards; ++s) {
        slice.assign(gradient.begin() + static_cast<long>(begin[s]),
                     gradient.begin() + static_cast<long>(begin[s + 1]));
        pushed.push_back(shard[s].call(&Shard::push, slice));  // sent before it returns
      }
      (void)spindle::get(pushed);
    }
  });
  std::vector<spindle::ObjectRef<void>> done;
  for (long w = 0; w < workers; ++w) done.push_back(worker.remote(w));
  spindle::get(done);
  const double seconds = clock.seconds();

  double total = 0;
  for (const auto& each : shard) total += each.call(&Shard::sum).get();
  std::printf("mean parameter: sequential %.6f, distributed %.6f\n", sequential_mean,
              total / static_cast<double>(n));
  samples::report("sequential (one vector, one thread, rank 0)", sequential_seconds, 0);
  samples::report("shards on ranks, workers as tasks on rank 0", seconds, sequential_seconds);
  // Each step moves every parameter from its shard to rank 0 and its gradient back.
  const double moved_gb = 2.0 * static_cast<double>(workers * iterations) *
                          static_cast<double>(n * sizeof(double)) / 1e9;
  std::printf("  moved between ranks: %.1f GB, %.2f GB/s\n", cluster.size() > 1 ? moved_gb : 0.0,
              cluster.size() > 1 ? moved_gb / seconds : 0.0);
  shard.clear();  // each variant's memory is freed before the next

  // Synchronous rounds: a trainer on every rank but 0 (alone: one, on rank 0).
  std::vector<int> trainer_ranks;
  for (int rank = cluster.size() > 1 ? 1 : 0; rank < cluster.size(); ++rank) {
    trainer_ranks.push_back(rank);
  }
  const auto trainers = static_cast<long>(trainer_ranks.size());
  std::printf(
      "\nsynchronous rounds: %zu float64 on each of %ld trainer(s), %ld rounds, gradients summed "
      "with a reduce-scatter and the parameters gathered with an allgather\n",
      n, trainers, iterations);
  samples::Stopwatch sync_sequential_clock;
  double sync_sequential_mean = 0;
  {
    std::vector<double> reference(n, 1.0), gradient(n), mean(n);
    for (long round = 0; round < iterations; ++round) {
      std::fill(mean.begin(), mean.end(), 0.0);
      for (long t = 0; t < trainers; ++t) {  // each trainer's gradient, in turn
        samples::compute_gradient(reference, gradient);
        for (std::size_t i = 0; i < n; ++i) mean[i] += gradient[i];
      }
      for (std::size_t i = 0; i < n; ++i) reference[i] -= kRate * mean[i] / trainers;
    }
    for (double v : reference) sync_sequential_mean += v;
    sync_sequential_mean /= static_cast<double>(n);
  }
  const double sync_sequential_seconds = sync_sequential_clock.seconds();

  cluster.make_group("trainers", trainer_ranks);
  std::vector<spindle::ActorHandle<Trainer>> trainer;
  for (int rank : trainer_ranks) {
    trainer.push_back(
        rt.actor<Trainer>().options({.rank = rank}).remote(static_cast<std::uint64_t>(n),
                                                           std::string("trainers")));
  }
  for (const auto& each : trainer) each.ready().get();
  samples::Stopwatch sync_clock;
  std::vector<spindle::ObjectRef<double>> sums;
  for (const auto& each : trainer) {
    sums.push_back(each.call(&Trainer::train, static_cast<std::uint64_t>(iterations)));
  }
  double sync_total = 0;
  for (double each : spindle::get(sums)) sync_total += each;
  const double sync_seconds = sync_clock.seconds();
  std::printf("mean parameter: sequential %.6f, synchronous %.6f\n", sync_sequential_mean,
              sync_total / static_cast<double>(n));
  samples::report("sequential rounds (one vector, rank 0)", sync_sequential_seconds, 0);
  samples::report("synchronous rounds, trainers on ranks", sync_seconds, sync_sequential_seconds);
  return 0;
}
