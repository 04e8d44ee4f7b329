// Cluster mode as the runtime sees it: the registry of functions that may run on other ranks,
// the link a spindle::Cluster installs, and where a call goes.
#include "spindle/detail/remote.hpp"

#include <cxxabi.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "runtime/scheduler.hpp"
#include "spindle/errors.hpp"
#include "spindle/runtime.hpp"
#include "spindle/task.hpp"

namespace spindle::detail {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<const void*, std::unique_ptr<RemoteFunction>> by_address;
  std::map<std::string, const RemoteFunction*, std::less<>> by_name;
};

// Built on first use: registrations run before main, in any order of translation units.
Registry& registry() {
  static Registry* const instance = new Registry;  // never destroyed: used until exit
  return *instance;
}

std::atomic<ClusterLink*> installed_link{nullptr};

// A function's name for a message: its symbol where the dynamic linker knows it.
std::string function_name(const void* address, const std::string& fallback) {
  Dl_info info{};
  if (dladdr(address, &info) && info.dli_sname && info.dli_saddr == address) {
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> demangled(
        abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status), &std::free);
    return status == 0 && demangled ? demangled.get() : info.dli_sname;
  }
  return fallback;
}

}  // namespace

bool register_remote_function(const void* address, std::unique_ptr<RemoteFunction> function) {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  auto [named, fresh] = all.by_name.try_emplace(function->name(), function.get());
  if (!fresh) {
    throw std::logic_error("SPINDLE_REMOTE(" + function->name() +
                           "): a function is already registered under that name; each name "
                           "must stand for one function on every rank");
  }
  all.by_address[address] = std::move(function);
  return true;
}

const RemoteFunction* find_remote_function(const void* address) {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  auto found = all.by_address.find(address);
  return found == all.by_address.end() ? nullptr : found->second.get();
}

const RemoteFunction* find_remote_function(std::string_view name) {
  Registry& all = registry();
  std::lock_guard lock(all.mutex);
  auto found = all.by_name.find(name);
  return found == all.by_name.end() ? nullptr : found->second;
}

ClusterLink* cluster_link() { return installed_link.load(std::memory_order_acquire); }

void set_cluster_link(ClusterLink* link) { installed_link.store(link, std::memory_order_release); }

void check_rank(int rank, bool codelet) {
  if (rank == -1) return;
  ClusterLink* link = cluster_link();
  const int size = link ? link->size() : 1;
  const int here = link ? link->rank() : 0;
  if (rank < -1 || rank >= size) {
    throw InvalidArgumentError(
        "rank = " + std::to_string(rank) + ": " +
        (link ? "-1 (placement chooses) or a rank from 0 to " + std::to_string(size - 1) +
                    " is allowed"
              : std::string("-1 or 0 is allowed: this process runs alone (rank 0 of 1); start "
                            "it under mpirun with a spindle::Cluster to reach other ranks")));
  }
  if (codelet && rank != here) {
    throw InvalidArgumentError("rank = " + std::to_string(rank) +
                               ": a codelet runs on this rank (" + std::to_string(here) +
                               "); only functions registered with SPINDLE_REMOTE go to others");
  }
}

std::pair<int, const RemoteFunction*> remote_placement(Runtime&, const TaskSpec& spec,
                                                       const void* address) {
  ClusterLink* link = cluster_link();
  const TaskOptions& options = *spec.options;
  if (!link || options.rank == (link ? link->rank() : 0)) return {-1, nullptr};
  const RemoteFunction* function = find_remote_function(address);
  if (!function) {
    if (options.rank < 0) return {-1, nullptr};  // placement keeps what it cannot send
    throw InvalidArgumentError(
        "task '" + function_name(address, spec.name) +
        "' with rank = " + std::to_string(options.rank) +
        ": only a function registered with SPINDLE_REMOTE(name) runs on another rank");
  }
  const int rank = link->place(options);
  if (rank == link->rank()) return {-1, nullptr};
  return {rank, function};
}

std::shared_ptr<const TaskSpec> remote_call_spec(Runtime& runtime, const TaskSpec& spec, int rank,
                                                 const RemoteFunction& function) {
  TaskOptions local;
  local.num_cpus = 0;                             // the work is done there; here a fiber waits
  local.max_retries = spec.options->max_retries;  // a failure there is retried from here
  local.retry_exceptions = spec.options->retry_exceptions;
  local.name = (spec.options->name.empty() ? function.name() : spec.options->name) + " (on rank " +
               std::to_string(rank) + ")";
  return make_task_spec(runtime, local, local.name);
}

}  // namespace spindle::detail
