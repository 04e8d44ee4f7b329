// One allocation per task record: the shared_ptr's control block holds the record, and the
// body follows it in the same block. See task_record.hpp.
#include "runtime/task_record.hpp"

#include <algorithm>
#include <cstddef>
#include <new>

#if !defined(SPINDLE_PLAIN_BLOCKS)
#include <tbb/scalable_allocator.h>
#endif

#include "runtime/scheduler.hpp"

namespace spindle::detail {
namespace {

constexpr std::size_t round_up(std::size_t bytes, std::size_t align) {
  return (bytes + align - 1) / align * align;
}

// What allocate_task asks of the allocator: its tail's size and alignment, and where the
// tail starts once allocated. Passed through the thread, so that the allocator the control
// block keeps holds nothing (or only the alignment, for an over-aligned body).
struct TailRequest {
  std::size_t bytes;
  std::size_t align;
  void* tail = nullptr;
};
thread_local TailRequest* tail_request = nullptr;

// Allocates `head` bytes, then the requested tail, in one block.
void* allocate_with_tail(std::size_t head) {
  TailRequest& request = *tail_request;
  const std::size_t head_bytes = round_up(head, request.align);
  void* block = allocate_block(head_bytes + request.bytes, request.align);
  request.tail = static_cast<std::byte*>(block) + head_bytes;
  return block;
}

// The allocator std::allocate_shared is given for a body aligned as operator new aligns:
// empty, so that the control block spends nothing on it.
template <typename T>
struct TailAllocator {
  using value_type = T;

  TailAllocator() = default;
  template <typename U>
  TailAllocator(const TailAllocator<U>& /*other*/) {}  // NOLINT: rebinding converts implicitly

  T* allocate(std::size_t n) { return static_cast<T*>(allocate_with_tail(n * sizeof(T))); }
  void deallocate(T* block, std::size_t /*n*/) noexcept {
    free_block(block, __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  }

  template <typename U>
  bool operator==(const TailAllocator<U>& /*other*/) const noexcept {
    return true;
  }
};

// For an over-aligned body (or record): keeps the alignment to free the block with.
template <typename T>
struct AlignedTailAllocator {
  using value_type = T;

  std::size_t align;

  explicit AlignedTailAllocator(std::size_t align) : align(align) {}
  template <typename U>
  AlignedTailAllocator(const AlignedTailAllocator<U>& other)  // NOLINT: rebinding
      : align(other.align) {}

  T* allocate(std::size_t n) { return static_cast<T*>(allocate_with_tail(n * sizeof(T))); }
  void deallocate(T* block, std::size_t /*n*/) noexcept {
    free_block(block, align);
  }

  template <typename U>
  bool operator==(const AlignedTailAllocator<U>& other) const noexcept {
    return align == other.align;
  }
};

}  // namespace

// oneTBB's scalable allocator: a block freed on another thread goes back to the thread that
// made it without a lock, where glibc's malloc would make the two threads contend for its
// arena (a task's record is made by the submitting thread and freed by a worker). Under a
// sanitizer, operator new (see CMakeLists.txt).
void* allocate_block(std::size_t bytes, std::size_t align) {
  const bool aligned = align > __STDCPP_DEFAULT_NEW_ALIGNMENT__;
#if defined(SPINDLE_PLAIN_BLOCKS)
  return aligned ? ::operator new(bytes, std::align_val_t{align}) : ::operator new(bytes);
#else
  void* block = aligned ? scalable_aligned_malloc(bytes, align) : scalable_malloc(bytes);
  if (block == nullptr) throw std::bad_alloc();
  return block;
#endif
}

void free_block(void* block, std::size_t align) noexcept {
  const bool aligned = align > __STDCPP_DEFAULT_NEW_ALIGNMENT__;
#if defined(SPINDLE_PLAIN_BLOCKS)
  if (aligned) {
    ::operator delete(block, std::align_val_t{align});
  } else {
    ::operator delete(block);
  }
#else
  if (aligned) {
    scalable_aligned_free(block);
  } else {
    scalable_free(block);
  }
#endif
}

std::shared_ptr<TaskRecord> allocate_task(Scheduler& scheduler,
                                          std::shared_ptr<const TaskSpec> spec,
                                          std::size_t bytes, std::size_t align, void*& body) {
  // The control block's own alignment is at most the record's, which new's default covers.
  static_assert(alignof(TaskRecord) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  TailRequest request{bytes, std::max(align, alignof(TaskRecord))};
  tail_request = &request;
  std::shared_ptr<TaskRecord> record =
      request.align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__
          ? std::allocate_shared<TaskRecord>(TailAllocator<TaskRecord>(), scheduler,
                                             std::move(spec))
          : std::allocate_shared<TaskRecord>(AlignedTailAllocator<TaskRecord>(request.align),
                                             scheduler, std::move(spec));
  body = request.tail;
  return record;
}

TaskRecord::TaskRecord(Scheduler& scheduler, std::shared_ptr<const TaskSpec> spec)
    : spec(std::move(spec)) {
  owner = &scheduler;
}

void attach_body(TaskRecord& record, TaskBody& body) noexcept { record.attach(body); }

void TaskRecord::attach(TaskBody& body) noexcept {
  body_ = &body;
  body.result().set_producer(*this);
}

// The body was built in this block after the record, so the record ends its life: first the
// body (its arguments, function and share of the result), then the record's own fields. The
// result may live on, held by refs; it forgets its producer first.
TaskRecord::~TaskRecord() {
  if (!body_) return;
  detach_result();
  body_->~TaskBody();
}

void TaskRecord::detach_result() noexcept {
  if (!body_ || result_detached_) return;
  result_detached_ = true;
  body_->result().forget_producer();
  body_->release_result();
}

}  // namespace spindle::detail
