// Large-block reuse (include/spindle/large_blocks.hpp): the program's operator new and
// delete, over malloc, with freed large blocks kept by size.
#include "spindle/large_blocks.hpp"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

namespace spindle::large_blocks {
namespace {

[[maybe_unused]] constexpr std::size_t kLarge = std::size_t{1} << 20;

std::size_t limit_from_environment() {
  if (const char* text = std::getenv("SPINDLE_LARGE_BLOCK_CACHE_MB"); text && *text) {
    char* end = nullptr;
    unsigned long long mb = std::strtoull(text, &end, 10);
    if (end != text && *end == '\0') return static_cast<std::size_t>(mb) << 20;
  }
  return std::size_t{1} << 30;
}

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> kept;  // by usable size
  std::size_t kept_bytes = 0;
  std::size_t limit = limit_from_environment();
  std::uint64_t reused = 0, allocated = 0;
  std::atomic<bool> enabled{available()};
};

// Never destroyed: blocks are freed during exit too.
Cache& cache() {
  static Cache* const instance = new (std::malloc(sizeof(Cache))) Cache;
  return *instance;
}

[[maybe_unused]] void* take(std::size_t size) {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  if (auto found = c.kept.lower_bound(size);
      found != c.kept.end() && found->first - size <= found->first / 5) {
    void* block = found->second;
    c.kept_bytes -= found->first;
    c.kept.erase(found);
    ++c.reused;
    return block;
  }
  ++c.allocated;
  return nullptr;
}

// Keeps `block` of usable `size` if there is room; false if it must be freed.
[[maybe_unused]] bool keep(void* block, std::size_t size) {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  if (c.kept_bytes + size > c.limit) return false;
  try {
    c.kept.emplace(size, block);  // the node is small: it comes from malloc, not from here
  } catch (const std::bad_alloc&) {
    return false;  // no memory for the node: the block goes back instead
  }
  c.kept_bytes += size;
  return true;
}

}  // namespace

#ifdef SPINDLE_LARGE_BLOCKS_PASSIVE
bool available() noexcept { return false; }
#else
bool available() noexcept { return true; }
#endif

void set_enabled(bool enabled) noexcept { cache().enabled.store(enabled && available()); }
bool enabled() noexcept { return cache().enabled.load(); }

void set_limit(std::size_t bytes) noexcept {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.limit = bytes;
}

Stats stats() noexcept {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return {c.reused, c.allocated, c.kept_bytes, c.limit};
}

void release() noexcept {
  std::multimap<std::size_t, void*> kept;
  {
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    kept.swap(c.kept);
    c.kept_bytes = 0;
  }
  for (const auto& [size, block] : kept) std::free(block);
}

}  // namespace spindle::large_blocks

#ifndef SPINDLE_LARGE_BLOCKS_PASSIVE
namespace reuse = spindle::large_blocks;

void* operator new(std::size_t size) {
  if (size >= reuse::kLarge && reuse::cache().enabled.load(std::memory_order_relaxed)) {
    if (void* block = reuse::take(size)) return block;
  }
  // As the standard's operator new: on failure, give the kept blocks back first, then ask
  // the new-handler, until one frees something or there is none.
  for (;;) {
    if (void* block = std::malloc(size ? size : 1)) return block;
    if (reuse::stats().kept_bytes > 0) {
      reuse::release();
      continue;
    }
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

void* operator new[](std::size_t size) { return ::operator new(size); }

void operator delete(void* block) noexcept {
  if (!block) return;
  // Every block from operator new came from malloc, kept or not: its usable size is known.
  if (std::size_t size = malloc_usable_size(block);
      size >= reuse::kLarge && reuse::cache().enabled.load(std::memory_order_relaxed) &&
      reuse::keep(block, size)) {
    return;
  }
  std::free(block);
}

void operator delete[](void* block) noexcept { ::operator delete(block); }
void operator delete(void* block, std::size_t) noexcept { ::operator delete(block); }
void operator delete[](void* block, std::size_t) noexcept { ::operator delete(block); }
#endif  // SPINDLE_LARGE_BLOCKS_PASSIVE
