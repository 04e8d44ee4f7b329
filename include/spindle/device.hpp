// Devices: where memory lives (Location) and where GPU work is ordered (Stream).
//
//   spindle::Location where = spindle::Location::here();  // the task's GPU, or the host
//   spindle::Stream s = spindle::this_task::stream();      // the task's own CUDA stream
//   s.synchronize();                                       // suspends only this fiber
//
// A task or actor granted a share of a real GPU runs with that GPU as the current CUDA
// device every time it runs or resumes, on whichever worker. Without a GPU (no driver, or
// spindle built without CUDA) every location is the host and every stream is the host
// stream: work given to it runs at once, on the calling thread.
//
// Thread safety: Location and Stream are plain values. A Stream may be used from any thread,
// but work queued on one stream from several threads at once runs in an unspecified order.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

struct CUstream_st;  // cudaStream_t is CUstream_st*; no CUDA header is needed here

namespace spindle {

/// @brief The kinds of device a task can run on, as placement and the performance model
/// tell them apart.
enum class DeviceKind : std::uint8_t { cpu, gpu };

/// "cpu" or "gpu".
[[nodiscard]] const char* to_string(DeviceKind kind);

/// @brief Where a buffer's memory lives: pageable host memory, pinned (page-locked) host
/// memory, or the memory of GPU `device`.
struct Location {
  enum class Kind : std::uint8_t { host, pinned, gpu };
  Kind kind = Kind::host;
  /// The GPU's index for Kind::gpu (as CUDA numbers visible devices); -1 otherwise.
  int device = -1;

  [[nodiscard]] static constexpr Location host() { return {}; }
  [[nodiscard]] static constexpr Location pinned() { return {Kind::pinned, -1}; }
  [[nodiscard]] static constexpr Location gpu(int device) { return {Kind::gpu, device}; }
  /// Where the calling task runs: the real GPU it was granted (the first, if several), else
  /// the host. Logical GPUs (declared in RuntimeOptions with no device behind them) count as
  /// the host.
  [[nodiscard]] static Location here();

  [[nodiscard]] constexpr bool on_gpu() const { return kind == Kind::gpu; }
  /// "host", "pinned host" or "GPU 0".
  [[nodiscard]] std::string to_string() const;
  friend constexpr auto operator<=>(const Location&, const Location&) = default;
};

/// @brief An ordered queue of GPU work on one device (a CUDA stream), or the host stream,
/// on which work runs at once. Cheap to copy; does not own the CUDA stream.
class Stream {
 public:
  using native_handle_type = CUstream_st*;

  /// The host stream.
  constexpr Stream() = default;
  constexpr Stream(int device, native_handle_type handle) : device_(device), handle_(handle) {}

  /// The GPU the stream belongs to; -1 for the host stream.
  [[nodiscard]] constexpr int device() const { return device_; }
  [[nodiscard]] constexpr bool on_gpu() const { return device_ >= 0; }
  /// The cudaStream_t; null for the host stream.
  [[nodiscard]] constexpr native_handle_type native_handle() const { return handle_; }
  [[nodiscard]] constexpr Location location() const {
    return on_gpu() ? Location::gpu(device_) : Location::host();
  }

  /// @brief Waits until the work queued so far has finished. Inside a task only its fiber
  /// waits; the worker runs other tasks meanwhile.
  /// @throws DeviceError naming the device if the work failed.
  void synchronize() const;

  friend constexpr bool operator==(const Stream&, const Stream&) = default;

 private:
  int device_ = -1;
  native_handle_type handle_ = nullptr;
};

/// @brief How many CUDA devices this process can use: 0 when spindle was built without CUDA,
/// the driver is missing, or CUDA_VISIBLE_DEVICES hides them all.
[[nodiscard]] int device_count();

namespace this_task {

/// @brief The calling task's own stream on its GPU: non-blocking, taken from a pool on first
/// use and the same for the rest of the task's run. The task's result becomes ready only
/// after the work queued on it has finished, and an error in that work fails the task.
/// A task without a real GPU gets the host stream. Outside a task: a stream of the current
/// device shared by all code outside tasks, or the host stream without a GPU.
[[nodiscard]] Stream stream();

}  // namespace this_task
}  // namespace spindle
