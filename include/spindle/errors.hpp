// spindle's error types.
//
// Every error spindle throws derives from spindle::Error. Messages name the
// value that was wrong and what was allowed, e.g.
//   "num_gpus = 1.5: a demand above 1 must be a whole number".
#pragma once

#include <stdexcept>
#include <string>

namespace spindle {

/// @brief Base of every error spindle throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief An argument broke a documented rule; the message names the value and the rule.
class InvalidArgumentError : public Error {
 public:
  using Error::Error;
};

/// @brief A resource demand that this runtime can never satisfy; the message names the
/// demand and the totals.
class InfeasibleError : public Error {
 public:
  using Error::Error;
};

/// @brief A task failed. The task's own exception (or its failed argument's error) is
/// nested: `std::rethrow_if_nested(error)` gives the original type back.
class TaskError : public Error {
 public:
  TaskError(std::string task_name, const std::string& message)
      : Error(message), task_name_(std::move(task_name)) {}
  /// The name of the task that failed.
  [[nodiscard]] const std::string& task_name() const noexcept { return task_name_; }

 private:
  std::string task_name_;
};

/// @brief A get or wait with a timeout ran out before its objects were ready.
class GetTimeoutError : public Error {
 public:
  using Error::Error;
};

/// @brief The task was cancelled (by cancel(), or by the runtime shutting down) before it ran.
class CancelledError : public Error {
 public:
  using Error::Error;
};

/// @brief No task could ever progress: every task able to run needs resources held by tasks
/// blocked in get. The message names the blocked tasks, what they hold and what they wait for.
class DeadlockError : public Error {
 public:
  using Error::Error;
};

/// @brief The actor cannot run the call: it was killed, crashed with no restarts left, failed
/// in its constructor, or crashed during this call and the call may not be retried. The cause
/// (the constructor's or the crash's exception), when there is one, is nested.
class ActorDiedError : public Error {
 public:
  using Error::Error;
};

/// @brief An actor already has max_pending_calls calls waiting; the new call was not queued.
class PendingCallsLimitError : public Error {
 public:
  using Error::Error;
};

/// @brief Thrown by an actor's method to crash the actor on purpose: the call fails, the
/// instance is destroyed and, within max_restarts, built again from its constructor's
/// arguments. Any exception crashes the actor when ActorOptions::crash_on_exception is set.
class ActorCrash : public Error {
 public:
  using Error::Error;
};

/// @brief A checkpoint file could not be written, or was refused on reading: missing,
/// truncated, corrupt (checksum), or made for other parameters. The message names the file.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

/// @brief A CUDA call failed, or a device was used that does not exist or is not allowed.
/// The message names the call, the device and CUDA's error ("cudaMallocAsync(1073741824
/// bytes) on GPU 0: cudaErrorMemoryAllocation, out of memory").
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace spindle
