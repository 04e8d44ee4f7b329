// The execution context: what code running inside a task may ask of it (its GPU, its stream,
// what it was granted) and tell it (a transfer made for it). A small layer below both the
// runtime and the device layer, so that device code never includes scheduler internals: the
// runtime's task record is an ExecutionContext, and the device layer sees only this.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "spindle/device.hpp"
#include "spindle/resources.hpp"

namespace spindle::detail {

/// The Buffer memory one runtime's tasks and actors may hold at each device: every GPU, and
/// the host (pinned and pageable together), as RuntimeOptions::buffer_memory_limit sets it.
/// Buffers keep the budget they were charged to, so it outlives the runtime while they live.
class MemoryBudget : public std::enable_shared_from_this<MemoryBudget> {
 public:
  explicit MemoryBudget(std::size_t limit) : limit_(limit) {}

  /// Takes `bytes` at `where`.
  /// @throws DeviceError naming the bytes, the device, the limit and what is in use there.
  void take(std::size_t bytes, Location where);
  void give_back(std::size_t bytes, Location where) noexcept;

 private:
  static constexpr int kSlots = 65;  // the host, then GPUs 0 to 63 (later ones share the last)
  static int slot(Location where) noexcept;

  const std::size_t limit_;
  std::array<std::atomic<std::size_t>, kSlots> in_use_{};
};

/// The runtime a task belongs to, as device code sees it: told of copies made for a consumer
/// (a Buffer's replica) for the timeline and the model, and keeper of the memory budget.
class ContextOwner {
 public:
  virtual ~ContextOwner() = default;
  virtual void record_transfer(std::string label, DeviceKind from, DeviceKind to, std::size_t bytes,
                               std::chrono::steady_clock::time_point start,
                               std::chrono::steady_clock::time_point end) = 0;
  /// The budget Buffers made in its tasks are charged to; null without a limit.
  [[nodiscard]] virtual MemoryBudget* memory_budget() noexcept = 0;
};

/// The running task as device code sees it. Set by the runtime while the task runs.
struct ExecutionContext {
  /// What the task was granted; null when it is not running.
  const Allocation* allocation = nullptr;
  /// The real GPU it runs on (made current whenever it runs), or -1.
  int device = -1;
  /// Leased by this_task::stream(); drained and returned when the run ends.
  Stream stream;
  /// Streams of other GPUs whose buffers the task worked on; drained and returned likewise.
  std::unique_ptr<std::vector<Stream>> side_streams;
  /// The runtime it belongs to; null for none.
  ContextOwner* owner = nullptr;
};

/// The context of the task running on the calling thread's fiber, or null outside tasks.
ExecutionContext* current_context() noexcept;
void set_current_context(ExecutionContext* context) noexcept;

/// Makes `device` the calling thread's current CUDA device (cheap when it already is); the
/// fiber layer calls it whenever a task on a GPU resumes. The device layer implements it.
void make_current(int device) noexcept;

}  // namespace spindle::detail
