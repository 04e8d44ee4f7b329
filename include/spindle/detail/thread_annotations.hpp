// Locking the compiler checks: Clang's thread safety analysis (-Wthread-safety) proves that
// every field marked SPINDLE_GUARDED_BY(m) is touched only with m held, and that every
// function marked SPINDLE_REQUIRES(m) is called with it. Other compilers ignore the marks.
//
// std::mutex carries no annotations in libstdc++, so guarded state uses spindle's Mutex and
// MutexLock, which are std::mutex and a relockable scoped lock with the marks on.
#pragma once

#include <sched.h>

#include <atomic>
#include <mutex>

#if defined(__clang__)
#define SPINDLE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SPINDLE_THREAD_ANNOTATION(x)
#endif

#define SPINDLE_CAPABILITY(x) SPINDLE_THREAD_ANNOTATION(capability(x))
#define SPINDLE_SCOPED_CAPABILITY SPINDLE_THREAD_ANNOTATION(scoped_lockable)
#define SPINDLE_GUARDED_BY(x) SPINDLE_THREAD_ANNOTATION(guarded_by(x))
#define SPINDLE_PT_GUARDED_BY(x) SPINDLE_THREAD_ANNOTATION(pt_guarded_by(x))
#define SPINDLE_REQUIRES(...) SPINDLE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define SPINDLE_EXCLUDES(...) SPINDLE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define SPINDLE_ACQUIRE(...) SPINDLE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define SPINDLE_RELEASE(...) SPINDLE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define SPINDLE_TRY_ACQUIRE(...) SPINDLE_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define SPINDLE_RETURN_CAPABILITY(x) SPINDLE_THREAD_ANNOTATION(lock_returned(x))
#define SPINDLE_NO_THREAD_SAFETY_ANALYSIS SPINDLE_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace spindle::detail {

/// @brief std::mutex, known to the thread safety analysis. Also a BasicLockable, so
/// std::condition_variable_any and Boost.Fiber's condition variables wait on it.
class SPINDLE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() SPINDLE_ACQUIRE() { mutex_.lock(); }
  void unlock() SPINDLE_RELEASE() { mutex_.unlock(); }
  bool try_lock() SPINDLE_TRY_ACQUIRE(true) { return mutex_.try_lock(); }

 private:
  std::mutex mutex_;
};

/// @brief Holds a Mutex for a scope; may be released and taken again inside it.
class SPINDLE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) SPINDLE_ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() SPINDLE_RELEASE() {
    if (locked_) mutex_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() SPINDLE_RELEASE() {
    mutex_.unlock();
    locked_ = false;
  }
  void lock() SPINDLE_ACQUIRE() {
    mutex_.lock();
    locked_ = true;
  }

 private:
  Mutex& mutex_;
  bool locked_ = true;
};

/// @brief A one-byte lock for sections of a few instructions that never block (an object's
/// waiter list): it spins, giving the core up now and then, where a Mutex would cost 40 bytes
/// in every object.
class SPINDLE_CAPABILITY("mutex") SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() SPINDLE_ACQUIRE() {
    int spins = 0;
    while (held_.exchange(true, std::memory_order_acquire)) {
      do {
        // The holder may have been preempted: give it the core rather than spin it away.
        if (++spins % 64 == 0) {
          sched_yield();
        } else {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        }
      } while (held_.load(std::memory_order_relaxed));
    }
  }
  void unlock() SPINDLE_RELEASE() { held_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> held_{false};
};

/// @brief Holds a SpinLock for a scope.
class SPINDLE_SCOPED_CAPABILITY SpinLockGuard {
 public:
  explicit SpinLockGuard(SpinLock& lock) SPINDLE_ACQUIRE(lock) : lock_(lock) { lock_.lock(); }
  ~SpinLockGuard() SPINDLE_RELEASE() { lock_.unlock(); }
  SpinLockGuard(const SpinLockGuard&) = delete;
  SpinLockGuard& operator=(const SpinLockGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace spindle::detail
