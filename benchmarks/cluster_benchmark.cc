// Cluster mode against raw MPI, in one job of 2 ranks (or more; rank 1 is the far end):
// - round trip: an empty registered call on rank 1, from submit to result (p50, p99), against
//   an MPI ping-pong of 1 byte each way;
// - async: calls per second to rank 1, --calls submitted then all gotten;
// - transfer: a call on rank 1 taking N bytes and returning their size, against MPI sending the
//   same N bytes with a 1-byte reply, from 1 KB to --max-mb; the bytes as a std::vector<char>
//   (which the far end zero-fills before receiving into it, as std::vector does) and as a
//   spindle::Buffer<char> (received into unzeroed memory).
// - allreduce: doubles summed over every rank through a CollectiveGroup (a task on each
//   rank runs the loop) against MPI_Allreduce on MPI_COMM_WORLD, from 8 KB to --max-mb.
// The raw MPI figures are measured first in the same job; ratios are raw / spindle (1.0 is
// parity). Medians of --reps runs.
//
//   mpirun -np 2 cluster_benchmark [--quick] [--calls 20000] [--reps 5] [--max-mb 64]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "sample_support.hpp"
#include "spindle/cluster.hpp"
#include "spindle/spindle.hpp"

namespace {

using Clock = std::chrono::steady_clock;

void nothing() {}
SPINDLE_REMOTE(nothing);

std::size_t size_of(const std::vector<char>& bytes) { return bytes.size(); }
SPINDLE_REMOTE(size_of);

std::size_t buffer_size(const spindle::Buffer<char>& bytes) { return bytes.size(); }
SPINDLE_REMOTE(buffer_size);

// Seconds per allreduce of `count` doubles over `comm` (`times` of them, after a barrier), on
// the slowest rank. Zeros: their sums stay ordinary numbers.
double allreduce_seconds(MPI_Comm comm, std::size_t count, int times) {
  std::vector<double> values(count, 0.0);
  MPI_Barrier(comm);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < times; ++i) {
    MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(count), MPI_DOUBLE, MPI_SUM, comm);
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / times;
  MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm);
  return seconds;
}

// The same through a spindle::CollectiveGroup, run in a task on each member.
double group_allreduce_seconds(std::string group_name, std::uint64_t count, int times) {
  auto group = spindle::CollectiveGroup::get(group_name);
  std::vector<double> values(count, 0.0);
  group.barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < times; ++i) group.allreduce(std::span<double>(values));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / times;
}
SPINDLE_REMOTE(group_allreduce_seconds);

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Transfers timed per size: enough to take a few milliseconds, at least 3.
int transfers_for(std::size_t bytes) {
  return static_cast<int>(
      std::clamp<std::size_t>((256u << 20) / std::max<std::size_t>(bytes, 1), 3, 2000));
}

// Raw MPI between ranks 0 and 1: `bytes` to rank 1, a 1-byte reply back; seconds per transfer
// on rank 0 (rank 1 mirrors it and returns 0).
double raw_transfer(std::size_t bytes, int times) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<char> buffer(std::max<std::size_t>(bytes, 1), 1);
  char ack = 0;
  MPI_Barrier(MPI_COMM_WORLD);
  auto start = Clock::now();
  for (int i = 0; i < times; ++i) {
    if (rank == 0) {
      MPI_Send(buffer.data(), static_cast<int>(bytes), MPI_BYTE, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(&ack, 1, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(buffer.data(), static_cast<int>(bytes), MPI_BYTE, 0, 0, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
      MPI_Send(&ack, 1, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
    }
  }
  return rank == 0 ? seconds_since(start) / times : 0;
}

// Seconds per call of `sized` on `data`, the median of `reps` runs of `times` calls each.
template <typename Call, typename Ref>
double seconds_per_transfer(const Call& sized, const Ref& data, std::size_t bytes, int times,
                            int reps) {
  std::vector<double> runs;
  for (int r = 0; r < reps; ++r) {
    auto start = Clock::now();
    for (int i = 0; i < times; ++i) {
      if (sized.remote(data).get() != bytes) {
        std::fprintf(stderr, "a transfer's size came back wrong\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
    runs.push_back(seconds_since(start) / times);
  }
  return samples::median(runs);
}

double percentile(std::vector<double> values, double share) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(share * static_cast<double>(values.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"calls", {20000, 2000, "async calls per run", 1, 1e7}},
                        {"reps", {5, 2, "runs of each measure", 1, 1000}},
                        {"max-mb", {64, 4, "largest transfer, MB", 1, 1024}}});
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) {
    std::fprintf(stderr, "cluster_benchmark needs 2 ranks: mpirun -np 2 %s\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  const int reps = static_cast<int>(flags["reps"]);
  const int round_trips = flags.quick() ? 2000 : 20000;
  std::vector<std::size_t> sizes;
  for (std::size_t bytes = 1024; bytes <= static_cast<std::size_t>(flags["max-mb"]) << 20;
       bytes *= 4) {
    sizes.push_back(bytes);
  }

  // Raw MPI first, every rank taking part.
  std::vector<double> raw_round_trip;
  for (int r = 0; r < reps; ++r) raw_round_trip.push_back(raw_transfer(1, round_trips));
  std::vector<double> raw_seconds;
  for (std::size_t bytes : sizes) {
    std::vector<double> runs;
    for (int r = 0; r < reps; ++r) runs.push_back(raw_transfer(bytes, transfers_for(bytes)));
    raw_seconds.push_back(samples::median(runs));
  }
  // Allreduce of doubles over every rank, from 8 KB.
  std::vector<std::size_t> reduce_counts;
  for (std::size_t count = 1024; count * sizeof(double) <= sizes.back(); count *= 16) {
    reduce_counts.push_back(count);
  }
  std::vector<double> raw_reduce;
  for (std::size_t count : reduce_counts) {
    std::vector<double> runs;
    for (int r = 0; r < reps; ++r) {
      runs.push_back(allreduce_seconds(MPI_COMM_WORLD, count, transfers_for(count * 8)));
    }
    raw_reduce.push_back(samples::median(runs));
  }

  {
    spindle::Cluster cluster(argc, argv);  // from here rank 0 drives, the others serve
    spindle::Runtime rt;
    auto empty = rt.task(nothing).options({.rank = 1});
    std::vector<double> latencies;
    for (int r = 0; r < reps; ++r) {
      for (int i = 0; i < round_trips; ++i) {
        auto start = Clock::now();
        empty.remote().get();
        latencies.push_back(seconds_since(start));
      }
    }
    const int calls = static_cast<int>(flags["calls"]);
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
      auto start = Clock::now();
      std::vector<spindle::ObjectRef<void>> refs;
      refs.reserve(static_cast<std::size_t>(calls));
      for (int i = 0; i < calls; ++i) refs.push_back(empty.remote());
      spindle::get(refs);
      rates.push_back(calls / seconds_since(start));
    }
    std::printf("cluster_benchmark: %d ranks on %s; rank 1 is the far end; medians of %d runs\n",
                size, cluster.ranks()[1].host.c_str(), reps);
    std::printf(
        "round trip, empty call: p50 %.1f us, p99 %.1f us (raw MPI 1-byte ping-pong: "
        "%.1f us; ratio %.2f)\n",
        percentile(latencies, 0.5) * 1e6, percentile(latencies, 0.99) * 1e6,
        samples::median(raw_round_trip) * 1e6,
        samples::median(raw_round_trip) / percentile(latencies, 0.5));
    std::printf("async calls to rank 1: %.0f calls/s\n", samples::median(rates));
    std::printf("transfers, GB/s (ratio: raw MPI's time over spindle's)\n");
    std::printf("%-10s %8s %16s %7s %16s %7s\n", "bytes", "raw MPI", "std::vector", "ratio",
                "spindle::Buffer", "ratio");
    auto sized = rt.task(size_of).options({.rank = 1});
    auto buffer_sized = rt.task(buffer_size).options({.rank = 1});
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      const std::size_t bytes = sizes[s];
      const int times = transfers_for(bytes);
      double vector_seconds = 0;
      {
        auto data = rt.put(std::vector<char>(bytes, 1));
        vector_seconds = seconds_per_transfer(sized, data, bytes, times, reps);
      }
      double buffer_seconds = 0;
      {
        std::vector<char> ones(bytes, 1);
        auto data = rt.put(spindle::Buffer<char>(ones, spindle::Location::host()));
        buffer_seconds = seconds_per_transfer(buffer_sized, data, bytes, times, reps);
      }
      std::printf("%-10zu %8.2f %16.2f %7.2f %16.2f %7.2f\n", bytes, bytes / raw_seconds[s] / 1e9,
                  bytes / vector_seconds / 1e9, raw_seconds[s] / vector_seconds,
                  bytes / buffer_seconds / 1e9, raw_seconds[s] / buffer_seconds);
    }
    // Allreduce: a task on every rank runs the loop on one group of all ranks; each rank
    // times its own loop, and the slowest counts.
    std::vector<int> everyone(static_cast<std::size_t>(size));
    for (int r = 0; r < size; ++r) everyone[static_cast<std::size_t>(r)] = r;
    cluster.make_group("everyone", everyone);
    auto reduce = rt.task(group_allreduce_seconds);
    std::printf("allreduce of doubles over %d ranks, ms per call (ratio: raw MPI's over "
                "spindle's, tasks on every rank)\n",
                size);
    std::printf("%-10s %10s %10s %7s\n", "bytes", "raw MPI", "spindle", "ratio");
    for (std::size_t c = 0; c < reduce_counts.size(); ++c) {
      const std::size_t count = reduce_counts[c];
      std::vector<double> runs;
      for (int r = 0; r < reps; ++r) {
        std::vector<spindle::ObjectRef<double>> each;
        for (int member : everyone) {
          each.push_back(reduce.options({.rank = member})
                             .remote(std::string("everyone"), static_cast<std::uint64_t>(count),
                                     transfers_for(count * 8)));
        }
        std::vector<double> seconds = spindle::get(each);
        runs.push_back(*std::max_element(seconds.begin(), seconds.end()));
      }
      const double spindle_seconds = samples::median(runs);
      std::printf("%-10zu %10.3f %10.3f %7.2f\n", count * sizeof(double), raw_reduce[c] * 1e3,
                  spindle_seconds * 1e3, raw_reduce[c] / spindle_seconds);
    }
  }
  MPI_Finalize();  // after ~Cluster stopped the serving ranks: MPI was started here
  return 0;
}
