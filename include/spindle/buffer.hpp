// Buffer<T>: an owning 1-D array that knows where it lives (host, pinned host or GPU n).
//
//   spindle::Buffer<float> w(1 << 20);                      // zeros, where the task runs
//   spindle::Buffer<float> g(values, spindle::Location::gpu(0));
//   std::vector<float> back = w.to_vector();               // copied out, staged if needed
//   auto ref = rt.put(std::move(w));                       // into the object store, no copy
//
// GPU memory comes from CUDA's stream-ordered allocator. Copies wait until they are
// complete, suspending only the calling fiber inside a task; kernels (spindle/ops.hpp) are
// queued and complete in stream order. Without a GPU, pinned requests fall back to host
// memory and every call works on host memory.
//
// Streams: a GPU buffer remembers the stream of its last write (its allocation and zero fill,
// a copy into it, an operation that changes it) and the streams that read it since. Work that
// spindle queues on it from another stream (another task's, the shared stream outside tasks,
// another GPU's) first waits on the device: a read for the last write, a write for every
// earlier use; the memory is freed ordered after every use. So a buffer made outside a task
// can be used inside one, and one made in a task can be put in the object store with its
// kernels still queued. Kernels of your own on data() are not seen: call read_on(stream) or
// write_on(stream) before queuing them on a stream spindle did not pick.
//
// In the object store: a task that takes an ObjectRef<Buffer<T>> sees the buffer where it
// runs (Location::here()): a buffer on another device is copied for it once, the copy is
// kept with the stored buffer for later consumers there, and the copy shows in the timeline.
// Host and pinned memory count as one place.
//
// Thread safety: const members may be called from any thread at once; a non-const member
// needs the buffer to itself.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "spindle/device.hpp"
#include "spindle/errors.hpp"
#include "spindle/task.hpp"

namespace spindle {

namespace detail {

class MemoryBudget;
class ReplicaCache;
class StreamUse;

/// Untyped owning memory at one location; Buffer<T> gives it a type.
class RawBuffer {
 public:
  RawBuffer() noexcept;
  /// `bytes` at `location`, zero-filled unless `zeroed` is false (pinned falls back to host
  /// without a GPU).
  /// Inside a task of a runtime with a buffer_memory_limit, the bytes count against it.
  /// @throws DeviceError for a device that does not exist, an allocation that failed, or
  /// one past the limit.
  RawBuffer(std::size_t bytes, Location location, bool zeroed = true);
  /// A view of `bytes` of host memory that the caller owns: never freed or charged here.
  [[nodiscard]] static RawBuffer borrowing(const void* data, std::size_t bytes) noexcept;
  ~RawBuffer();
  RawBuffer(RawBuffer&& other) noexcept;
  RawBuffer& operator=(RawBuffer&& other) noexcept;
  RawBuffer(const RawBuffer&) = delete;
  RawBuffer& operator=(const RawBuffer&) = delete;

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] Location location() const noexcept { return location_; }

  /// Copies bytes() bytes of `source`, from `offset` bytes on, in; waits for it.
  void copy_from(const RawBuffer& source, std::size_t offset = 0);
  /// Copies all of `source` in, from `offset` bytes on; waits for it.
  void copy_from_at(const RawBuffer& source, std::size_t offset);
  void copy_from_host(const void* source, std::size_t bytes);
  void copy_to_host(void* target, std::size_t bytes) const;
  void drop_replicas() noexcept { replicas_.reset(); }
  /// Orders `stream` after the last write of a GPU buffer and counts it among its readers.
  /// @throws DeviceError if the device refused the ordering.
  void read_on(Stream stream) const;
  /// Orders `stream` after every earlier use of a GPU buffer and makes it the last write.
  void write_on(Stream stream);
  /// The kept copy at `location`, made by `make` on first use (once, whoever asks first).
  const void* replica(Location location, std::shared_ptr<void> (*make)(const void*, Location),
                      const void* self) const;

 private:
  void release() noexcept;

  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Location location_;
  mutable std::shared_ptr<ReplicaCache> replicas_;
  std::unique_ptr<StreamUse> use_;  // GPU buffers only
  std::shared_ptr<MemoryBudget> budget_;  // what the bytes were charged to, if anything
  bool borrowed_ = false;                 // a view: the memory is the caller's
};

/// Throws InvalidArgumentError unless `size` elements of `element_bytes` fit in memory sizes.
std::size_t checked_bytes(std::size_t size, std::size_t element_bytes);
/// Throws InvalidArgumentError naming both sizes unless they match.
void check_same_size(std::size_t expected, std::size_t got, const char* what);
/// Throws InvalidArgumentError unless [offset, offset + count) lies within `size` elements.
void check_range(std::size_t offset, std::size_t count, std::size_t size);
/// Whether a consumer at `here` needs its own copy of data at `there`.
[[nodiscard]] bool needs_copy(Location there, Location here);

}  // namespace detail

/// @brief An owning, typed 1-D array at one location. Move-only: copies are explicit (to,
/// copy_from, to_vector).
/// @tparam T a trivially copyable element type; the kernels take float and double.
template <typename T>
class Buffer {
  static_assert(std::is_trivially_copyable_v<T>, "a Buffer holds trivially copyable elements");

 public:
  using value_type = T;

  /// An empty buffer on the host.
  Buffer() = default;
  /// `size` zero-initialised elements at `location` (default: where the calling task runs).
  /// @throws InvalidArgumentError for a size too large to address; DeviceError for a
  /// missing device or an allocation that failed (naming the bytes and the device).
  explicit Buffer(std::size_t size, Location location = Location::here())
      : raw_(detail::checked_bytes(size, sizeof(T)), location), size_(size) {}
  /// `size` elements at `location` whose values are unspecified until written: for a buffer
  /// about to be overwritten whole, it saves the zero fill.
  [[nodiscard]] static Buffer uninitialized(std::size_t size,
                                            Location location = Location::here()) {
    Buffer buffer;
    buffer.raw_ = detail::RawBuffer(detail::checked_bytes(size, sizeof(T)), location, false);
    buffer.size_ = size;
    return buffer;
  }
  /// A copy of `values` at `location`.
  explicit Buffer(std::span<const T> values, Location location = Location::here())
      : Buffer(uninitialized(values.size(), location)) {
    raw_.copy_from_host(values.data(), values.size_bytes());
  }
  explicit Buffer(const std::vector<T>& values, Location location = Location::here())
      : Buffer(std::span<const T>(values), location) {}
  /// A read-only Buffer over host memory the caller owns, without a copy: for handing large
  /// inputs to tasks and actors (ParameterServer::push_view uses it). The caller keeps
  /// `values` alive and unchanged while the Buffer, or a copy of the pointer, is in use;
  /// the memory is never freed here and does not count against a buffer_memory_limit.
  [[nodiscard]] static std::shared_ptr<const Buffer> view(std::span<const T> values) {
    auto buffer = std::make_shared<Buffer>();
    buffer->raw_ = detail::RawBuffer::borrowing(values.data(), values.size_bytes());
    buffer->size_ = values.size();
    return buffer;
  }

  Buffer(Buffer&& other) noexcept
      : raw_(std::move(other.raw_)), size_(std::exchange(other.size_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    raw_ = std::move(other.raw_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] Location location() const noexcept { return raw_.location(); }
  /// The first element: device memory for a GPU buffer.
  [[nodiscard]] T* data() noexcept { return static_cast<T*>(raw_.data()); }
  [[nodiscard]] const T* data() const noexcept { return static_cast<const T*>(raw_.data()); }

  /// The elements, for a host or pinned buffer.
  /// @throws DeviceError for a GPU buffer (copy it with to_vector or to(Location::host())).
  [[nodiscard]] std::span<T> host_span() {
    check_host("host_span");
    return {data(), size_};
  }
  [[nodiscard]] std::span<const T> host_span() const {
    check_host("host_span");
    return {data(), size_};
  }

  /// Copies the elements out to a vector.
  [[nodiscard]] std::vector<T> to_vector() const {
    std::vector<T> values(size_);
    raw_.copy_to_host(values.data(), size_bytes());
    return values;
  }
  /// Copies the elements out; `target` must have size() elements.
  void copy_to(std::span<T> target) const {
    detail::check_same_size(size_, target.size(), "copy_to: the target");
    raw_.copy_to_host(target.data(), size_bytes());
  }
  /// Copies `values` in; they must have size() elements.
  void copy_from(std::span<const T> values) {
    detail::check_same_size(size_, values.size(), "copy_from: the source");
    raw_.copy_from_host(values.data(), values.size_bytes());
  }
  /// Copies another buffer in, from any location; it must have size() elements.
  void copy_from(const Buffer& source) {
    detail::check_same_size(size_, source.size_, "copy_from: the source buffer");
    raw_.copy_from(source.raw_);
  }
  /// Copies size() elements of `source`, from its element `offset` on, in (any locations).
  /// @throws InvalidArgumentError if the range runs past the end of `source`.
  void copy_from(const Buffer& source, std::size_t offset) {
    detail::check_range(offset, size_, source.size_);
    raw_.copy_from(source.raw_, offset * sizeof(T));
  }
  /// Copies all elements into `target` from its element `offset` on (any locations).
  /// @throws InvalidArgumentError if they run past the end of `target`.
  void copy_to(Buffer& target, std::size_t offset) const {
    detail::check_range(offset, size_, target.size_);
    target.raw_.copy_from_at(raw_, offset * sizeof(T));
  }
  /// A new buffer at `location` holding a copy of the elements.
  [[nodiscard]] Buffer to(Location location) const {
    Buffer copy = uninitialized(size_, location);
    copy.raw_.copy_from(raw_);
    return copy;
  }

  /// @brief Before kernels of your own that only read data() on `stream`: makes `stream`
  /// wait, on the device, for the last write spindle knows of, and counts it as a reader, so
  /// that later writes and the free wait for what you queue there. Nothing for a host buffer.
  /// Readers on several streams may call it at once.
  /// @throws DeviceError if the device refused the ordering.
  void read_on(Stream stream) const { raw_.read_on(stream); }
  /// @brief Before kernels of your own that write data() on `stream`: makes `stream` wait for
  /// every earlier use, and makes it the last write. Needs the buffer to itself.
  /// @throws DeviceError if the device refused the ordering.
  void write_on(Stream stream) { raw_.write_on(stream); }

  /// Forgets the copies kept for consumers elsewhere; for an owner about to change a buffer
  /// that it alone holds (the copies would be stale).
  void drop_replicas() noexcept { raw_.drop_replicas(); }

  /// This buffer where a consumer at `location` can use it: itself when no copy is needed,
  /// else a copy made once and kept with this buffer (meant for immutable stored buffers).
  [[nodiscard]] const Buffer& replica(Location location) const {
    if (!detail::needs_copy(this->location(), location)) return *this;
    auto make = [](const void* self, Location where) -> std::shared_ptr<void> {
      return std::make_shared<Buffer>(static_cast<const Buffer*>(self)->to(where));
    };
    return *static_cast<const Buffer*>(raw_.replica(location, make, this));
  }

 private:
  void check_host(const char* what) const {
    if (location().on_gpu()) {
      throw DeviceError(std::string(what) + ": the buffer is on " + location().to_string() +
                        "; only host and pinned buffers can be read in place");
    }
  }

  detail::RawBuffer raw_;
  std::size_t size_ = 0;
};

namespace detail {

/// A task receives a stored Buffer where it runs.
template <typename T>
struct ConsumerView<Buffer<T>> {
  static const Buffer<T>& of(const Buffer<T>& stored) { return stored.replica(Location::here()); }
};

}  // namespace detail

/// Placement sees a Buffer's bytes where they live.
template <typename T>
struct DataTraits<Buffer<T>> {
  static std::size_t bytes(const Buffer<T>& buffer) { return buffer.size() * sizeof(T); }
  static DeviceKind location(const Buffer<T>& buffer) {
    return buffer.location().on_gpu() ? DeviceKind::gpu : DeviceKind::cpu;
  }
};
}  // namespace spindle
