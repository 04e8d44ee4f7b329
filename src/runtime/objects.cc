// Objects: completion, waiters, and blocking until objects are done.
#include <algorithm>
#include <cstdio>
#include <utility>

#include "fibers/event.hpp"
#include "fibers/spin.hpp"
#include "fibers/worker_algorithm.hpp"
#include "runtime/scheduler.hpp"
#include "spindle/object_ref.hpp"

namespace spindle::detail {

std::shared_ptr<TaskRecord> ObjectStateBase::producer() const {
  SpinLockGuard lock(lock_);
  // Null if the record's last owner is already destroying it (its destructor then waits here
  // to clear the pointer, so the record's memory is still there to look at).
  return producer_ ? producer_->weak_from_this().lock() : nullptr;
}

// No other thread can see the object yet: no lock is needed.
void ObjectStateBase::set_producer(TaskRecord& task) noexcept SPINDLE_NO_THREAD_SAFETY_ANALYSIS {
  producer_ = &task;
  made_by_task_ = true;
}

void ObjectStateBase::forget_producer() noexcept {
  SpinLockGuard lock(lock_);
  producer_ = nullptr;
}

// Runs once no other thread can reach the object, so without the lock.
ObjectStateBase::~ObjectStateBase() SPINDLE_NO_THREAD_SAFETY_ANALYSIS { delete_list(waiters_); }

bool ObjectStateBase::add_waiter(std::shared_ptr<Waiter> waiter) {
  auto* node = new WaiterNode{std::move(waiter), nullptr};
  {
    SpinLockGuard lock(lock_);
    auto state = Waiters::none;
    if (waiters_state_.compare_exchange_strong(state, Waiters::some) || state != Waiters::closed) {
      node->next = waiters_;
      waiters_ = node;
      return true;
    }
  }
  delete node;  // completed; outside the lock, as the waiter's last owner may go with it
  return false;
}

void ObjectStateBase::remove_waiter(const Waiter* waiter) {
  WaiterNode* removed = nullptr;
  {
    SpinLockGuard lock(lock_);
    for (WaiterNode** link = &waiters_; *link != nullptr;) {
      WaiterNode* node = *link;
      if (node->waiter.get() == waiter) {
        *link = node->next;
        node->next = removed;
        removed = node;
      } else {
        link = &node->next;
      }
    }
  }
  delete_list(removed);  // outside the lock: a waiter's last owner may be freed here
}

void ObjectStateBase::delete_list(WaiterNode* node) noexcept {
  while (node != nullptr) delete std::exchange(node, node->next);
}

void ObjectStateBase::fail(std::exception_ptr error) noexcept {
  complete(Status::failed, std::move(error));
}

// The first completion wins (the runtime may fail an object its producer never ran); later
// ones do nothing. Completing takes no lock unless someone waits. Waiters are told in the
// order they registered.
void ObjectStateBase::complete(Status status, std::exception_ptr error) noexcept {
  if (claimed_.exchange(true, std::memory_order_acq_rel)) return;  // completed already
  error_ = std::move(error);
  status_.store(status, std::memory_order_release);  // the value and error are visible first
  auto none = Waiters::none;
  if (waiters_state_.compare_exchange_strong(none, Waiters::closed)) return;  // nobody waits
  WaiterNode* newest_first = nullptr;
  {
    SpinLockGuard lock(lock_);
    waiters_state_.store(Waiters::closed, std::memory_order_release);
    newest_first = std::exchange(waiters_, nullptr);
  }
  WaiterNode* oldest_first = nullptr;
  while (newest_first != nullptr) {
    WaiterNode* node = std::exchange(newest_first, newest_first->next);
    node->next = std::exchange(oldest_first, node);
  }
  for (WaiterNode* node = oldest_first; node != nullptr; node = node->next) {
    node->waiter->on_complete();
  }
  delete_list(oldest_first);
}

namespace {

// A thread outside any task has nothing else to run, and a result due within microseconds is
// cheaper to spin for than to sleep for; but only while a worker is idle, so that a core is
// free: spinning while every worker is busy would slow them down.
bool should_spin(std::span<ObjectStateBase* const> pending) {
  for (ObjectStateBase* object : pending) {
    if (object->done()) continue;
    if (object->made_by_task()) {
      return object->look_at_producer(
          [](const TaskRecord& producer) { return producer.scheduler().has_idle_worker(); },
          true);  // its record is gone: it has just completed
    }
  }
  return false;
}

// Up to this many objects, a thread outside any task polls them all before it waits.
constexpr std::size_t kMostPolled = 8;

}  // namespace

bool block_until_done(std::span<ObjectStateBase* const> objects, std::size_t needed,
                      std::optional<Clock::time_point> deadline) {
  // The event counts what is still to come. Objects done now are not registered; one that
  // completes between this look and its registration is found by add_waiter and counted.
  std::vector<bool> done(objects.size());
  std::size_t done_count = 0;
  for (std::size_t i = 0; i < objects.size(); ++i) done_count += done[i] = objects[i]->done();
  if (done_count >= needed) return true;
  TaskRecord* const caller = current_task();
  // A thread outside any task polls a few objects before it registers a waiter: a result due
  // within microseconds then costs the task no lock and no wake-up when it completes.
  if (!caller && objects.size() <= kMostPolled && should_spin(objects)) {
    auto enough = [&] {
      return std::ranges::count_if(objects, [](auto* o) { return o->done(); }) >=
             static_cast<std::ptrdiff_t>(needed);
    };
    if (spin_briefly(enough, deadline.value_or(Clock::time_point::max()))) return true;
  }
  // A task waiting without a deadline first runs what it waits for, where it may, inline.
  if (caller && !deadline) {
    for (std::size_t i = 0; i < objects.size() && done_count < needed; ++i) {
      if (done[i] || !caller->scheduler().run_inline(*caller, *objects[i])) continue;
      done_count += done[i] = objects[i]->done();  // a retried task is queued again
    }
    if (done_count >= needed) return true;
  }
  auto event = std::make_shared<Event>(needed - done_count);
  std::vector<ObjectStateBase*> registered;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    if (done[i]) continue;
    if (objects[i]->add_waiter(event)) {
      registered.push_back(objects[i]);
    } else {
      event->on_complete();
    }
  }
  // A wait that a deadline or another runtime's task may end is never part of a deadlock; one
  // that no task here ends (an answer from another rank) may be part of one across the
  // cluster, which its check reports (see Scheduler::stillness).
  bool timed = deadline.has_value();
  bool remote = false;
  for (ObjectStateBase* object : registered) {
    if (timed || !caller) break;
    remote = remote || !object->made_by_task();
    timed = object->look_at_producer(
        [&](const TaskRecord& producer) { return &producer.scheduler() != &caller->scheduler(); },
        false);
  }
  BlockedWait wait{caller, event, timed, remote && !timed, false, objects, 0};
  if (wait.task) {
    wait.task->scheduler().block(wait);
  } else if (objects.size() > kMostPolled && should_spin(registered)) {
    spin_briefly([&] { return event->settled(); }, deadline.value_or(Clock::time_point::max()));
  }
  bool satisfied = event->wait(deadline);
  if (wait.task) wait.task->scheduler().unblock(wait);
  for (ObjectStateBase* object : registered) object->remove_waiter(event.get());
  if (std::exception_ptr error = event->error()) std::rethrow_exception(error);
  return satisfied;
}

void throw_empty_ref(const std::string& what) {
  throw InvalidArgumentError(what +
                             " is an empty ObjectRef: default-constructed or moved from, "
                             "it refers to no object");
}

void block_until_all_done(std::span<ObjectStateBase* const> objects,
                          std::optional<Clock::duration> timeout) {
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  if (block_until_done(objects, objects.size(), deadline)) return;
  auto done = std::ranges::count_if(objects, [](const ObjectStateBase* o) { return o->done(); });
  char ms[32];
  std::snprintf(ms, sizeof ms, "%g", std::chrono::duration<double, std::milli>(*timeout).count());
  throw GetTimeoutError("get timed out after " + std::string(ms) + " ms: " + std::to_string(done) +
                        " of " + std::to_string(objects.size()) +
                        (objects.size() == 1 ? " object was" : " objects were") + " ready");
}

}  // namespace spindle::detail
