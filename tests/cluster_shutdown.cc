// Rank 0's Cluster ends while calls with large answers (above MPI's eager limit) are still in
// flight on the other ranks: the job must still end, with status 0. Run under mpirun.
#include <cstdio>
#include <vector>

#include "spindle/cluster.hpp"
#include "spindle/spindle.hpp"

namespace {

std::vector<char> large(int size) { return std::vector<char>(static_cast<std::size_t>(size), 1); }
SPINDLE_REMOTE(large);

}  // namespace

int main(int argc, char** argv) {
  {
    spindle::Cluster cluster(argc, argv);
    spindle::Runtime rt;
    std::vector<spindle::ObjectRef<std::vector<char>>> left;
    for (int i = 0; i < 64; ++i) {
      left.push_back(rt.task(large).options({.rank = cluster.size() - 1}).remote(1 << 20));
    }
    std::printf("%zu calls left in flight\n", left.size());
  }  // the runtime, then the cluster, end with the answers on their way
  std::printf("stopped cleanly\n");
  return 0;
}
