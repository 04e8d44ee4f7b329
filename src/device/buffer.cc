// Buffer's untyped side: allocation, copies in every direction, and replicas for consumers.
#include "spindle/buffer.hpp"

#include <algorithm>
#include <boost/fiber/mutex.hpp>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "device/device_runtime.hpp"
#include "spindle/detail/execution_context.hpp"
#include "spindle/detail/thread_annotations.hpp"

namespace spindle::detail {

// Replicas of one stored buffer, by location. A fiber mutex: making a copy suspends the
// fiber, and a second consumer waits for that copy rather than making its own.
class ReplicaCache {
 public:
  boost::fibers::mutex mutex;
  std::map<Location, std::shared_ptr<void>> copies;
};

// Which streams a GPU buffer's work is on: the last write's, and the readers' since. A read
// waits for the last write; a write (and the free) waits for the last write and every reader,
// through events, as CUDA graphs and PyTorch's record_stream order memory shared between
// streams. Readers are counted, not merely the last user: two readers on different streams
// may order themselves at once, each before queuing its kernel, and a later write must wait
// for both kernels. A writer has the buffer to itself (Buffer's contract), so by the time one
// orders itself, every reader has queued its work.
class StreamUse {
 public:
  explicit StreamUse(Stream allocated_on) : writer_(allocated_on) {}

  void read_on(Stream stream) {
    if (!stream.on_gpu()) return;
    MutexLock lock(mutex_);
    if (stream == writer_ ||
        std::find(readers_.begin(), readers_.end(), stream) != readers_.end()) {
      return;  // already after the last write
    }
    order_after(stream, writer_);
    readers_.push_back(stream);
  }

  void write_on(Stream stream) {
    if (!stream.on_gpu()) return;
    MutexLock lock(mutex_);
    order_after(stream, writer_);
    for (Stream reader : readers_) order_after(stream, reader);
    readers_.clear();
    writer_ = stream;
  }

  [[nodiscard]] Stream writer() {
    MutexLock lock(mutex_);
    return writer_;
  }

 private:
  Mutex mutex_;
  Stream writer_ SPINDLE_GUARDED_BY(mutex_);
  std::vector<Stream> readers_ SPINDLE_GUARDED_BY(mutex_);  // since the last write
};

namespace {

// The stream a copy between two buffers is ordered on: the GPU side's (the target's when
// both are GPUs), after the last write of the source and every use of the target.
Stream copy_stream(RawBuffer& target, const RawBuffer& source) {
  Stream stream = stream_for(target.location().on_gpu() ? target.location() : source.location());
  source.read_on(stream);
  target.write_on(stream);
  return stream;
}

}  // namespace

std::size_t checked_bytes(std::size_t size, std::size_t element_bytes) {
  std::size_t limit = std::numeric_limits<std::ptrdiff_t>::max() / element_bytes;
  if (size > limit) {
    throw InvalidArgumentError("size = " + std::to_string(size) + ": at most " +
                               std::to_string(limit) + " elements of " +
                               std::to_string(element_bytes) + " bytes are allowed");
  }
  return size * element_bytes;
}

void check_same_size(std::size_t expected, std::size_t got, const char* what) {
  if (expected != got) {
    throw InvalidArgumentError(std::string(what) + " has " + std::to_string(got) +
                               " elements; the buffer has " + std::to_string(expected) +
                               " and sizes must match");
  }
}

void check_range(std::size_t offset, std::size_t count, std::size_t size) {
  if (offset > size || count > size - offset) {
    throw InvalidArgumentError("elements " + std::to_string(offset) + " to " +
                               std::to_string(offset + count) + ": the source has " +
                               std::to_string(size) + " elements");
  }
}

bool needs_copy(Location there, Location here) {
  if (!there.on_gpu() && !here.on_gpu()) return false;  // host and pinned are one place
  return there != here;
}

RawBuffer::RawBuffer(std::size_t bytes, Location location, bool zeroed)
    : bytes_(bytes), location_(usable(location)) {
  check_location(location_, "Buffer");
  if (ExecutionContext* task = current_context(); task && task->owner && bytes_ > 0) {
    if (MemoryBudget* budget = task->owner->memory_budget()) {
      budget->take(bytes_, location_);
      budget_ = budget->shared_from_this();
    }
  }
  try {
    Stream stream = stream_for(location_);
    if (stream.on_gpu()) use_ = std::make_unique<StreamUse>(stream);
    data_ = allocate(bytes_, location_, stream);
    if (zeroed) zero(data_, bytes_, location_, stream);
  } catch (...) {
    release();
    throw;
  }
}

RawBuffer::RawBuffer() noexcept = default;

RawBuffer RawBuffer::borrowing(const void* data, std::size_t bytes) noexcept {
  RawBuffer view;
  view.data_ = const_cast<void*>(data);  // read-only: Buffer::view hands it out const
  view.bytes_ = bytes;
  view.location_ = Location::host();
  view.borrowed_ = true;
  return view;
}
RawBuffer::~RawBuffer() { release(); }

RawBuffer::RawBuffer(RawBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      location_(other.location_),
      replicas_(std::move(other.replicas_)),
      use_(std::move(other.use_)),
      budget_(std::move(other.budget_)),
      borrowed_(std::exchange(other.borrowed_, false)) {}

RawBuffer& RawBuffer::operator=(RawBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    location_ = other.location_;
    replicas_ = std::move(other.replicas_);
    use_ = std::move(other.use_);
    budget_ = std::move(other.budget_);
    borrowed_ = std::exchange(other.borrowed_, false);
  }
  return *this;
}

// GPU memory is freed on the stream of its last write when that stream is of its device,
// else on the caller's stream; either way after every use.
void RawBuffer::release() noexcept {
  replicas_.reset();
  if (borrowed_) {
    data_ = nullptr;
    borrowed_ = false;
  } else if (data_) {
    try {
      Stream stream = use_ ? use_->writer() : Stream();
      if (stream.device() != location_.device) stream = stream_for(location_);
      write_on(stream);
      deallocate(data_, bytes_, location_, stream);
    } catch (...) {
      // No stream could be had (the device is gone): the memory goes with the context.
    }
    data_ = nullptr;
  }
  use_.reset();
  if (budget_) {
    budget_->give_back(bytes_, location_);
    budget_.reset();
  }
}

void RawBuffer::read_on(Stream stream) const {
  if (use_) use_->read_on(stream);
}

void RawBuffer::write_on(Stream stream) {
  if (use_) use_->write_on(stream);
}

void RawBuffer::copy_from(const RawBuffer& source, std::size_t offset) {
  copy(data_, location_, static_cast<const char*>(source.data_) + offset, source.location_, bytes_,
       copy_stream(*this, source));
}

void RawBuffer::copy_from_at(const RawBuffer& source, std::size_t offset) {
  copy(static_cast<char*>(data_) + offset, location_, source.data_, source.location_, source.bytes_,
       copy_stream(*this, source));
}

void RawBuffer::copy_from_host(const void* source, std::size_t bytes) {
  Stream stream = stream_for(location_);
  write_on(stream);
  copy(data_, location_, source, Location::host(), bytes, stream);
}

void RawBuffer::copy_to_host(void* target, std::size_t bytes) const {
  Stream stream = stream_for(location_);
  read_on(stream);
  copy(target, Location::host(), data_, location_, bytes, stream);
}

const void* RawBuffer::replica(Location location,
                               std::shared_ptr<void> (*make)(const void*, Location),
                               const void* self) const {
  {
    static std::mutex creation;
    std::lock_guard lock(creation);
    if (!replicas_) replicas_ = std::make_shared<ReplicaCache>();
  }
  ReplicaCache& cache = *replicas_;
  std::lock_guard lock(cache.mutex);
  std::shared_ptr<void>& copy = cache.copies[location];
  if (!copy) {
    Clock::time_point start = Clock::now();
    copy = make(self, location);
    ExecutionContext* task = current_context();
    if (task && task->owner) {
      auto kind = [](Location where) { return where.on_gpu() ? DeviceKind::gpu : DeviceKind::cpu; };
      task->owner->record_transfer(
          "copy of a Buffer from " + location_.to_string() + " to " + location.to_string(),
          kind(location_), kind(location), bytes_, start, Clock::now());
    }
  }
  return copy.get();
}

}  // namespace spindle::detail
