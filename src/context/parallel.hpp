// Splitting a loop across the runtime's workers, for the CPU twins of the kernels.
#pragma once

#include <cstddef>
#include <functional>

namespace spindle::detail {

/// The grain of the kernels' CPU twins, in elements: below 1 MB of floats a split costs more
/// than it saves, since waking an idle worker takes tens of microseconds on a busy machine.
inline constexpr std::size_t kKernelGrain = std::size_t{1} << 18;

/// Runs `body(begin, end)` over [0, n) in at most one piece per worker, each piece at least
/// `grain` long. Inside a task the pieces run as tasks of zero demand on the runtime's
/// workers (the caller runs the first and waits for the others, suspending only its fiber);
/// outside a task, or when n is below 2 * grain, the caller runs it all. Piece boundaries
/// are multiples of `grain`, whatever the number of workers. Rethrows the first failure.
void parallel_for(std::size_t n, std::size_t grain,
                  const std::function<void(std::size_t, std::size_t)>& body);

}  // namespace spindle::detail
