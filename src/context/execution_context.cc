// The running task's context: see spindle/detail/execution_context.hpp.
#include "spindle/detail/execution_context.hpp"

#include <algorithm>
#include <string>

#include "spindle/errors.hpp"

namespace spindle::detail {
namespace {

// Per thread; the worker's fiber algorithm sets it whenever a fiber resumes.
thread_local ExecutionContext* tls_context = nullptr;

}  // namespace

int MemoryBudget::slot(Location where) noexcept {
  return where.on_gpu() ? std::clamp(where.device + 1, 1, kSlots - 1) : 0;
}

void MemoryBudget::take(std::size_t bytes, Location where) {
  std::atomic<std::size_t>& used = in_use_[slot(where)];
  std::size_t before = used.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ - std::min(before, limit_)) {
      std::string place = where.on_gpu() ? "GPU " + std::to_string(where.device) : "the host";
      throw DeviceError("a Buffer of " + std::to_string(bytes) + " bytes on " + place +
                        " would exceed the runtime's buffer_memory_limit of " +
                        std::to_string(limit_) + " bytes per device: " + std::to_string(before) +
                        " bytes are in use there");
    }
  } while (!used.compare_exchange_weak(before, before + bytes, std::memory_order_relaxed));
}

void MemoryBudget::give_back(std::size_t bytes, Location where) noexcept {
  in_use_[slot(where)].fetch_sub(bytes, std::memory_order_relaxed);
}

ExecutionContext* current_context() noexcept { return tls_context; }
void set_current_context(ExecutionContext* context) noexcept { tls_context = context; }

}  // namespace spindle::detail
