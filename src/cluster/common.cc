// What both builds of the cluster layer share: collective groups (the registry, blocks,
// checks, groups of one) and a rank's description.
#include "cluster/common.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "spindle/detail/thread_annotations.hpp"
#include "spindle/errors.hpp"
#include "spindle/resources.hpp"

namespace spindle {
namespace detail {

namespace {

struct Groups {
  Mutex mutex;
  std::map<std::string, std::shared_ptr<const CollectiveGroup::State>, std::less<>> by_name
      SPINDLE_GUARDED_BY(mutex);
};

Groups& groups() {
  static Groups* const instance = new Groups;  // never destroyed: groups live until exit
  return *instance;
}

// A group of one member runs nothing across ranks (CollectiveGroup::run copies).
struct GroupOfOne final : CollectiveGroup::State {
  void run(CollectiveOp, CollectiveType, const void*, void*, std::size_t, int,
           ReduceOp) const override {}
};

}  // namespace

RankInfo rank_info(int rank, std::string host, const ResourceSet& totals) {
  RankInfo info{rank,
                std::move(host),
                totals.cpu().to_double(),
                totals.gpu().to_double(),
                totals.memory().to_double(),
                {}};
  for (const auto& [name, amount] : totals.amounts()) {
    if (!ResourceSet::is_builtin(name)) info.resources[name] = amount.to_double();
  }
  return info;
}

void add_group_of_one(const std::string& name) {
  auto group = std::make_shared<GroupOfOne>();
  group->name = name;
  group->ranks = {0};
  Groups& all = groups();
  MutexLock lock(all.mutex);
  if (!all.by_name.try_emplace(name, std::move(group)).second) throw group_exists(name);
}

InvalidArgumentError group_exists(const std::string& name) {
  return InvalidArgumentError("collective group '" + name +
                              "' exists already; a name stands for one group");
}

std::pair<std::size_t, std::size_t> block_of(std::size_t count, int size, int member) {
  const auto n = static_cast<std::size_t>(size), m = static_cast<std::size_t>(member);
  const std::size_t base = count / n, longer = count % n;
  const std::size_t first = m * base + std::min(m, longer);
  return {first, first + base + (m < longer ? 1 : 0)};
}

void check_group(const std::string& name, std::vector<int>& ranks, int size) {
  const std::string what = "collective group '" + name + "'";
  if (name.empty()) throw InvalidArgumentError("a collective group needs a name");
  if (ranks.empty()) throw InvalidArgumentError(what + ": no ranks; give at least one");
  std::sort(ranks.begin(), ranks.end());
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] < 0 || ranks[i] >= size) {
      throw InvalidArgumentError(what + ": rank " + std::to_string(ranks[i]) +
                                 " is out of range; ranks 0 to " + std::to_string(size - 1) +
                                 " are allowed");
    }
    if (i > 0 && ranks[i] == ranks[i - 1]) {
      throw InvalidArgumentError(what + ": rank " + std::to_string(ranks[i]) +
                                 " is given twice; each rank is a member once");
    }
  }
}

void add_group(std::shared_ptr<const CollectiveGroup::State> group) {
  Groups& all = groups();
  MutexLock lock(all.mutex);
  all.by_name[group->name] = std::move(group);
}

}  // namespace detail

CollectiveGroup CollectiveGroup::get(const std::string& name) {
  detail::Groups& all = detail::groups();
  detail::MutexLock lock(all.mutex);
  auto found = all.by_name.find(name);
  if (found == all.by_name.end()) {
    throw InvalidArgumentError("rank " + std::to_string(this_rank()) +
                               " is in no collective group named '" + name +
                               "': rank 0 makes groups with Cluster::make_group, before the "
                               "calls that use them");
  }
  return CollectiveGroup(found->second);
}

int CollectiveGroup::rank() const { return state_->member; }
int CollectiveGroup::size() const { return static_cast<int>(state_->ranks.size()); }
const std::vector<int>& CollectiveGroup::ranks() const { return state_->ranks; }

std::pair<std::size_t, std::size_t> CollectiveGroup::block(std::size_t count, int member) const {
  if (member < 0 || member >= size()) {
    throw InvalidArgumentError("block(" + std::to_string(count) + ", " + std::to_string(member) +
                               "): members are 0 to " + std::to_string(size() - 1));
  }
  return detail::block_of(count, size(), member);
}

void CollectiveGroup::check_block(std::size_t count, std::size_t mine, const char* what) const {
  const auto [first, last] = block(count, rank());
  if (mine == last - first) return;
  throw InvalidArgumentError(std::string(what) + " in group '" + state_->name + "': member " +
                             std::to_string(rank()) + "'s block of " + std::to_string(count) +
                             " elements holds " + std::to_string(last - first) + ", not " +
                             std::to_string(mine));
}

void CollectiveGroup::barrier() {
  run(detail::CollectiveOp::barrier, detail::CollectiveType::u64, nullptr, nullptr, 0, 0, 1);
}

void CollectiveGroup::run(detail::CollectiveOp op, detail::CollectiveType type, const void* in,
                          void* out, std::size_t count, int root, std::size_t element_bytes,
                          ReduceOp reduce) {
  if (op == detail::CollectiveOp::reduce_scatter || op == detail::CollectiveOp::allgather) {
    // MPI takes no overlapping arrays, but for allgather's block already in place.
    const auto [first, last] = block(count, rank());
    const auto* whole = static_cast<const char*>(op == detail::CollectiveOp::allgather ? out : in);
    const auto* part = static_cast<const char*>(op == detail::CollectiveOp::allgather ? in : out);
    const std::size_t whole_bytes = count * element_bytes;
    const std::size_t part_bytes = (last - first) * element_bytes;
    const bool overlap = part < whole + whole_bytes && whole < part + part_bytes && part_bytes > 0;
    const bool in_place =
        op == detail::CollectiveOp::allgather && part == whole + first * element_bytes;
    if (overlap && !in_place) {
      throw InvalidArgumentError(
          std::string(op == detail::CollectiveOp::allgather ? "allgather" : "reduce_scatter") +
          " in group '" + state_->name +
          "': this member's block overlaps the whole array; pass separate arrays" +
          (op == detail::CollectiveOp::allgather ? ", or the block at its own place in the whole"
                                                 : ""));
    }
  }
  if (root < 0 || root >= size()) {
    throw InvalidArgumentError("broadcast in group '" + state_->name + "' from member " +
                               std::to_string(root) + ": members are 0 to " +
                               std::to_string(size() - 1));
  }
  if (size() > 1) {
    state_->run(op, type, in, out, count, root, reduce);
    return;
  }
  // One member: its block is the whole array, and the sum is its own.
  if ((op == detail::CollectiveOp::reduce_scatter || op == detail::CollectiveOp::allgather) &&
      in != out && count > 0) {
    std::memmove(out, in, count * element_bytes);
  }
}

}  // namespace spindle
