// Cluster soak: cross-rank objects made and dropped in rounds, with every rank's memory
// watched. Each round, rank 0 sends 1,000 calls spread over the ranks (a 1 KB argument and
// result each; every tenth call's are 256 KB instead, so they travel as blocks), and makes an
// actor on each rank, calls it 10 times and drops it. Each call's result is one cross-rank
// object; every one is checked against its expected value.
// At the end, every rank must be idle (nothing queued, blocked or alive as an actor) and its
// resident memory may exceed the highest it reached during the warm-up (the first fifth of
// the objects) by less than 2%. One line per tenth of the run (objects, resident MiB by rank)
// gives the memory curves.
//
//   mpirun -np 3 cluster_soak [--objects 1000000] [--quick]   (--quick: 100,000 objects)
// Exit status 0 when every check held, 1 otherwise.

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "sample_support.hpp"
#include "spindle/cluster.hpp"
#include "spindle/spindle.hpp"

namespace {

// Resident memory of this process in MiB, from /proc/self/statm (pages).
SPINDLE_REMOTE(samples::resident_mib);

// The bytes reversed, and the rank that did it in the first one.
std::vector<char> echoed(std::vector<char> bytes) {
  std::reverse(bytes.begin(), bytes.end());
  if (!bytes.empty()) bytes.front() = static_cast<char>(spindle::this_rank());
  return bytes;
}
SPINDLE_REMOTE(echoed);

struct Tally {
  long total = 0;
  long add(long n) { return total += n; }
};
SPINDLE_REMOTE_ACTOR(Tally);
SPINDLE_REMOTE_METHOD(Tally, add);

int failures = 0;

void expect(bool holds, const std::string& what) {
  if (!holds) {
    std::fprintf(stderr, "cluster_soak: check failed: %s\n", what.c_str());
    ++failures;
  }
}

// Every rank's resident memory, by rank.
std::vector<double> resident_by_rank(spindle::Runtime& rt, int size) {
  std::vector<spindle::ObjectRef<double>> asked;
  for (int rank = 0; rank < size; ++rank) {
    asked.push_back(rt.task(samples::resident_mib).options({.num_cpus = 0, .rank = rank}).remote());
  }
  return spindle::get(asked);
}

// One round: returns the cross-rank objects it made (calls answered from another rank).
long round_of_calls(spindle::Runtime& rt, int size, long round) {
  constexpr int kCalls = 1000;
  std::vector<spindle::ObjectRef<std::vector<char>>> results;
  std::vector<std::vector<char>> sent;
  results.reserve(kCalls);
  for (int call = 0; call < kCalls; ++call) {
    const std::size_t bytes = call % 10 == 0 ? 256u << 10 : 1u << 10;
    std::vector<char> data(bytes, static_cast<char>('a' + (round + call) % 26));
    data.back() = 'z';
    results.push_back(rt.task(echoed).options({.rank = call % size}).remote(data));
    sent.push_back(std::move(data));
  }
  long objects = 0;
  for (int call = 0; call < kCalls; ++call) {
    const int rank = call % size;
    const std::vector<char>& back = results[static_cast<std::size_t>(call)].get();
    const std::vector<char>& data = sent[static_cast<std::size_t>(call)];
    bool right = back.size() == data.size() && back.front() == static_cast<char>(rank) &&
                 std::equal(back.begin() + 1, back.end(), data.rbegin() + 1);
    expect(right, "call " + std::to_string(call) + " of round " + std::to_string(round) +
                      " came back wrong from rank " + std::to_string(rank));
    if (rank != 0) ++objects;
  }
  for (int rank = 1; rank < size; ++rank) {
    auto tally = rt.actor<Tally>().options({.num_cpus = 0, .rank = rank}).remote();
    std::vector<spindle::ObjectRef<long>> sums;
    for (long n = 1; n <= 10; ++n) sums.push_back(tally.call(&Tally::add, n));
    expect(spindle::get(sums).back() == 55, "an actor's sum on rank " + std::to_string(rank));
    objects += 11;  // its creation and its calls
  }
  return objects;
}

std::string joined(const std::vector<double>& values) {
  std::string out;
  for (double value : values) {
    char text[32];
    std::snprintf(text, sizeof text, "%s%.1f", out.empty() ? "" : " ", value);
    out += text;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"objects", {1e6, 1e5, "cross-rank objects to make", 1e4, 1e9}}});
  spindle::Cluster cluster(argc, argv);  // every rank but 0 serves here
  const int size = cluster.size();
  if (size < 2) {
    std::fprintf(stderr, "cluster_soak needs 2 ranks or more: mpirun -np 3 %s\n", argv[0]);
    return 2;
  }
  spindle::Runtime rt;
  const long objects = static_cast<long>(flags["objects"]);
  const long warmup = objects / 5;
  std::vector<double> warm(static_cast<std::size_t>(size), 0.0);  // highest during warm-up
  std::printf("cluster_soak: %d ranks, %ld cross-rank objects; objects, resident MiB by rank\n",
              size, objects);
  long made = 0, rounds = 0, next_report = objects / 10;
  while (made < objects) {
    made += round_of_calls(rt, size, rounds++);
    std::vector<double> resident = resident_by_rank(rt, size);
    if (made <= warmup) {
      for (std::size_t rank = 0; rank < warm.size(); ++rank) {
        warm[rank] = std::max(warm[rank], resident[rank]);
      }
    }
    if (made >= next_report) {
      std::printf("%ld %s\n", made, joined(resident).c_str());
      std::fflush(stdout);
      next_report += objects / 10;
    }
  }
  // Idle everywhere: dropped actors end on their rank soon after the drop, so ask until they
  // have (each ask a round trip).
  std::vector<spindle::RuntimeStatus> status = cluster.status();
  for (int asks = 0; asks < 100000; ++asks) {
    bool gone = std::all_of(status.begin(), status.end(),
                            [](const spindle::RuntimeStatus& each) { return each.actors == 0; });
    if (gone) break;
    status = cluster.status();
  }
  for (int rank = 0; rank < size; ++rank) {
    const spindle::RuntimeStatus& each = status[static_cast<std::size_t>(rank)];
    const std::string where = "rank " + std::to_string(rank);
    expect(each.actors == 0, where + " still has " + std::to_string(each.actors) + " actors");
    expect(each.waiting_for_resources == 0 && each.waiting_for_dependencies == 0,
           where + " still has tasks waiting");
    expect(each.blocked == 0, where + " still has tasks blocked");
    expect(each.running <= (rank == 0 ? 0u : 1u), where + " still runs tasks");  // 1: its reply
  }
  std::vector<double> end = resident_by_rank(rt, size);
  for (int rank = 0; rank < size; ++rank) {
    const auto at = static_cast<std::size_t>(rank);
    expect(end[at] < warm[at] * 1.02,
           "rank " + std::to_string(rank) + " grew from " + std::to_string(warm[at]) +
               " MiB (warm-up's highest) to " + std::to_string(end[at]) + " MiB");
  }
  std::printf("cluster_soak: %ld objects in %ld rounds; resident MiB at the warm-up's highest %s, "
              "at the end %s; %s\n",
              made, rounds, joined(warm).c_str(), joined(end).c_str(),
              failures == 0 ? "every check held" : "CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
