// What both builds of the cluster layer (with MPI, and alone) share: collective groups, and
// how a rank is described.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "spindle/cluster.hpp"
#include "spindle/errors.hpp"

namespace spindle {

/// A group as this rank holds it: how its operations run across the members (with MPI; a group
/// of one runs none).
struct CollectiveGroup::State {
  virtual ~State() = default;
  std::string name;
  std::vector<int> ranks;  // ascending
  int member = 0;          // this rank's place among them

  /// Runs `op` across the members (two or more); `count` elements in the whole array.
  virtual void run(detail::CollectiveOp op, detail::CollectiveType type, const void* in,
                   void* out, std::size_t count, int root, ReduceOp reduce) const = 0;
};

namespace detail {

/// The part [first, last) of `count` elements that member `member` of `size` holds.
std::pair<std::size_t, std::size_t> block_of(std::size_t count, int size, int member);
/// Checks a new group's name and ranks (sorted here) against a cluster of `size` ranks (not
/// whether the name is in use: rank 0 knows every group made, members only theirs).
/// @throws InvalidArgumentError naming what is wrong.
void check_group(const std::string& name, std::vector<int>& ranks, int size);
/// The error for a group name in use.
InvalidArgumentError group_exists(const std::string& name);
/// Registers this rank's part of a group; from then on CollectiveGroup::get finds it.
void add_group(std::shared_ptr<const CollectiveGroup::State> group);
/// Registers a group whose only member is rank 0, where the process runs alone.
/// @throws InvalidArgumentError (group_exists) if the name is in use.
void add_group_of_one(const std::string& name);

/// Rank `rank`'s description, from its totals (custom resources among them).
RankInfo rank_info(int rank, std::string host, const ResourceSet& totals);

}  // namespace detail
}  // namespace spindle
