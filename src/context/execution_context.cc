// The running task's context: see spindle/detail/execution_context.hpp.
#include "spindle/detail/execution_context.hpp"

namespace spindle::detail {
namespace {

// Per thread; the worker's fiber algorithm sets it whenever a fiber resumes.
thread_local ExecutionContext* tls_context = nullptr;

}  // namespace

ExecutionContext* current_context() noexcept { return tls_context; }
void set_current_context(ExecutionContext* context) noexcept { tls_context = context; }

}  // namespace spindle::detail
