// The execution context: what code running inside a task may ask of it (its GPU, its stream,
// what it was granted) and tell it (a transfer made for it). A small layer below both the
// runtime and the device layer, so that device code never includes scheduler internals: the
// runtime's task record is an ExecutionContext, and the device layer sees only this.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "spindle/device.hpp"
#include "spindle/resources.hpp"

namespace spindle::detail {

/// Told of copies made for a consumer (a Buffer's replica), for the timeline and the model.
class TransferRecorder {
 public:
  virtual ~TransferRecorder() = default;
  virtual void record_transfer(std::string label, DeviceKind from, DeviceKind to, std::size_t bytes,
                               std::chrono::steady_clock::time_point start,
                               std::chrono::steady_clock::time_point end) = 0;
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
  /// Where its transfers are recorded; null for none.
  TransferRecorder* recorder = nullptr;
};

/// The context of the task running on the calling thread's fiber, or null outside tasks.
ExecutionContext* current_context() noexcept;
void set_current_context(ExecutionContext* context) noexcept;

/// Makes `device` the calling thread's current CUDA device (cheap when it already is); the
/// fiber layer calls it whenever a task on a GPU resumes. The device layer implements it.
void make_current(int device) noexcept;

}  // namespace spindle::detail
