// Large-block reuse: an opt-in replacement of the program's global operator new and delete
// that keeps freed blocks of 1 MiB and more and hands them out again, instead of giving
// them back to the system and faulting fresh pages in on the next allocation.
//
// glibc's malloc maps every block above its threshold (at most 32 MiB) anew with mmap and
// unmaps it on free, so a program that makes tens of MB values in a loop (an actor method
// returning a std::vector by value, a task building one) pays a page fault per 4 KiB of
// every value. Ray's object store reuses its memory; this is the same lever for spindle
// programs. Buffer<T> host memory has its own cache and does not need it.
//
// Link the program (not a library) with spindle::large_blocks:
//
//   target_link_libraries(my_program PRIVATE spindle::spindle spindle::large_blocks)
//
// Blocks are kept up to a limit (1 GiB unless SPINDLE_LARGE_BLOCK_CACHE_MB says otherwise,
// or set_limit), and reused for requests of at least 4/5 of their size, the best fit first.
// What is kept stays resident until release() or exit. Aligned operator new (over-aligned
// types) is left as it is.
//
// Thread safety: every function may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spindle::large_blocks {

/// What the cache did since the start.
struct Stats {
  std::uint64_t reused = 0;        // allocations served from kept blocks
  std::uint64_t allocated = 0;     // large allocations the system served
  std::size_t kept_bytes = 0;      // bytes kept now
  std::size_t limit_bytes = 0;
};

/// Whether this build replaces operator new. False in sanitizer builds (SPINDLE_SANITIZE),
/// whose runtimes define it themselves: then nothing is ever kept.
[[nodiscard]] bool available() noexcept;
/// Turns reuse on (the default once linked) or off; blocks kept stay kept.
void set_enabled(bool enabled) noexcept;
[[nodiscard]] bool enabled() noexcept;
/// The most bytes kept at once; blocks freed past it go back to the system.
void set_limit(std::size_t bytes) noexcept;
[[nodiscard]] Stats stats() noexcept;
/// Gives every kept block back to the system.
void release() noexcept;

}  // namespace spindle::large_blocks
