// Spinning briefly before sleeping.
//
// Work often arrives within microseconds of a thread running dry (a caller's next submit, a
// child task finishing); a short spin answers it without a sleep and a wake-up, which cost
// tens of microseconds on virtual machines. A thread spins this long at most, then sleeps,
// so an idle runtime uses no CPU.
#pragma once

#include <sched.h>

#include <algorithm>
#include <chrono>

namespace spindle::detail {

constexpr auto kSpinBeforeSleep = std::chrono::microseconds(20);

inline void pause_briefly() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Polls `ready` for up to kSpinBeforeSleep (or until `until`); true once it returned true.
/// With `yield_core`, lets another thread ready on this core run between polls.
template <typename Ready>
bool spin_briefly(
    Ready ready,
    std::chrono::steady_clock::time_point until = std::chrono::steady_clock::time_point::max(),
    bool yield_core = true) {
  auto end = std::min(until, std::chrono::steady_clock::now() + kSpinBeforeSleep);
  do {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      pause_briefly();
    }
    // A thread that would run here (the caller submitting work, on a machine with as many
    // workers as cores) gets the core now rather than at the end of the spin.
    if (yield_core) sched_yield();
  } while (std::chrono::steady_clock::now() < end);
  return false;
}

}  // namespace spindle::detail
