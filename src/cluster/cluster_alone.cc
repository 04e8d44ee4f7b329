// Cluster mode in a build without MPI: every process runs alone, as rank 0 of 1.
#include <unistd.h>

#include <cstdlib>

#include "cluster/common.hpp"
#include "spindle/cluster.hpp"
#include "spindle/errors.hpp"
#include "spindle/resources.hpp"
#include "spindle/topology.hpp"

namespace spindle {

struct Cluster::Impl {
  std::vector<RankInfo> ranks;
};

Cluster::Cluster(int& argc, char**& argv, const RuntimeOptions& serving)
    : Cluster(argc, argv, [&serving](int) { return serving; }) {}

Cluster::Cluster(int&, char**&, const std::function<RuntimeOptions(int rank)>& options_for)
    : impl_(std::make_unique<Impl>()) {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(variable)) {
      throw Error(std::string("started by an MPI launcher (") + variable +
                  " is set), but this spindle was built without MPI (SPINDLE_MPI=OFF, or "
                  "libopenmpi-dev missing when it was configured): every rank would run the "
                  "whole program alone");
    }
  }
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  const RuntimeOptions options = options_for(0);
  ResourceSet totals = resource_totals(Topology::discover(), {options.num_cpus, options.num_gpus,
                                                              options.memory, options.resources});
  impl_->ranks = {detail::rank_info(0, host, totals)};
}

Cluster::~Cluster() = default;
namespace {
[[noreturn]] void no_mpi(const char* what) {
  throw Error(std::string(what) +
              ": this spindle was built without MPI, so a Cluster has no ranks to ask; use the "
              "Runtime's own");
}
}  // namespace

std::vector<RuntimeStatus> Cluster::status() const { no_mpi("status"); }
void Cluster::timeline(const std::string&) const { no_mpi("timeline"); }
int Cluster::rank() const { return 0; }
bool Cluster::with_mpi() { return false; }
int Cluster::size() const { return 1; }
const std::vector<RankInfo>& Cluster::ranks() const { return impl_->ranks; }
int this_rank() { return 0; }

void Cluster::make_group(const std::string& name, std::vector<int> ranks) {
  detail::check_group(name, ranks, 1);
  detail::add_group_of_one(name);
}

}  // namespace spindle
