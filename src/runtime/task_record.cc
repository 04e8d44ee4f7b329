// One allocation per task: the shared_ptr's control block holds the record, and the body
// follows it in the same block. See task_record.hpp.
#include "runtime/task_record.hpp"

#include <algorithm>
#include <cstddef>
#include <new>

namespace spindle::detail {
namespace {

constexpr std::size_t round_up(std::size_t bytes, std::size_t align) {
  return (bytes + align - 1) / align * align;
}

// Allocates the control block std::allocate_shared asks for with `tail_bytes` more after it,
// aligned to `tail_align`, and tells where they start. The block is freed with the alignment
// it was allocated with, which every rebound copy keeps.
template <typename T>
struct TailAllocator {
  using value_type = T;

  std::size_t tail_bytes;
  std::size_t tail_align;
  void** tail;  // set by allocate; read only by make

  TailAllocator(std::size_t bytes, std::size_t align, void** where)
      : tail_bytes(bytes), tail_align(align), tail(where) {}
  template <typename U>
  TailAllocator(const TailAllocator<U>& other)  // NOLINT: rebinding converts implicitly
      : tail_bytes(other.tail_bytes), tail_align(other.tail_align), tail(other.tail) {}

  [[nodiscard]] std::size_t head_bytes(std::size_t n) const {
    return round_up(n * sizeof(T), tail_align);
  }
  // Over-aligned blocks only when asked: the aligned operator new takes a slower path.
  [[nodiscard]] bool over_aligned() const {
    return std::max(alignof(T), tail_align) > __STDCPP_DEFAULT_NEW_ALIGNMENT__;
  }
  [[nodiscard]] std::align_val_t alignment() const {
    return std::align_val_t{std::max(alignof(T), tail_align)};
  }

  T* allocate(std::size_t n) {
    const std::size_t bytes = head_bytes(n) + tail_bytes;
    void* block = over_aligned() ? ::operator new(bytes, alignment()) : ::operator new(bytes);
    *tail = static_cast<std::byte*>(block) + head_bytes(n);
    return static_cast<T*>(block);
  }
  void deallocate(T* block, std::size_t /*n*/) noexcept {
    if (over_aligned()) {
      ::operator delete(block, alignment());
    } else {
      ::operator delete(block);
    }
  }

  template <typename U>
  bool operator==(const TailAllocator<U>& other) const noexcept {
    return tail_bytes == other.tail_bytes && tail_align == other.tail_align;
  }
};

}  // namespace

std::shared_ptr<TaskRecord> allocate_task(Scheduler& scheduler,
                                          std::shared_ptr<const TaskSpec> spec,
                                          std::size_t bytes, std::size_t align, void*& body) {
  return std::allocate_shared<TaskRecord>(TailAllocator<TaskRecord>(bytes, align, &body),
                                          scheduler, std::move(spec));
}

void attach_body(TaskRecord& record, TaskBody& body) noexcept { record.attach(body); }

void TaskRecord::attach(TaskBody& body) noexcept {
  body_ = &body;
  body.result().producer = this;
}

// The body was built in this block after the record, so the record ends its life: first the
// body (its result object, arguments, function), then the record's own fields.
TaskRecord::~TaskRecord() {
  if (body_) body_->~TaskBody();
}

}  // namespace spindle::detail
