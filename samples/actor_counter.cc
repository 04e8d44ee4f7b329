// The Counter actor examples: one counter called in order, several counters in parallel, and
// a counter shared by tasks; against the same increments on a plain object.
//
//   actor_counter [--quick] [--calls 100000] [--counters 4]
#include <cstdio>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

struct Counter {
  long value = 0;
  long increment() { return ++value; }
  long add(long k) { return value += k; }
  [[nodiscard]] long read() const { return value; }
};

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"calls", {100000, 1000, "calls per counter", 1, 1e9}},
                        {"counters", {4, 2, "counters called at once", 1, 10000}}});
  const long calls = flags.count("calls"), counters = flags.count("counters");
  spindle::Runtime rt;

  samples::Stopwatch plain_clock;
  Counter plain;
  for (long i = 0; i < calls * counters; ++i) plain.increment();
  double plain_seconds = plain_clock.seconds();

  // One counter: calls run in the order they were made, so the last result is the total.
  auto counter = rt.actor<Counter>().remote();
  samples::Stopwatch one_clock;
  spindle::ObjectRef<long> last;
  for (long i = 0; i < calls; ++i) last = counter.call(&Counter::increment);
  std::printf("one counter: last of %ld increments returned %ld\n", calls, last.get());
  double one_seconds = one_clock.seconds();

  // Several counters, each its own actor, called at once.
  std::vector<spindle::ActorHandle<Counter>> many;
  for (long c = 0; c < counters; ++c) many.push_back(rt.actor<Counter>().remote());
  samples::Stopwatch many_clock;
  std::vector<spindle::ObjectRef<long>> lasts(static_cast<std::size_t>(counters));
  for (long i = 0; i < calls; ++i) {
    for (long c = 0; c < counters; ++c) lasts[c] = many[c].call(&Counter::add, 1L);
  }
  std::printf("%ld counters: each holds", counters);
  for (long value : spindle::get(lasts)) std::printf(" %ld", value);
  double many_seconds = many_clock.seconds();

  // A counter shared by tasks that hold its handle.
  auto shared = rt.actor<Counter>().remote();
  auto bump = rt.task([shared](long n) {
    for (long i = 0; i < n; ++i) (void)shared.call(&Counter::increment);
  });
  std::vector<spindle::ObjectRef<void>> done;
  for (long c = 0; c < counters; ++c) done.push_back(bump.remote(calls / counters));
  for (const auto& ref : done) ref.get();
  std::printf("\nshared by %ld tasks: %ld\n", counters, shared.call(&Counter::read).get());

  samples::report("plain object, one thread (all increments)", plain_seconds);
  samples::report("one actor, calls in order", one_seconds);
  samples::report("actors called at once (all increments)", many_seconds);
  std::printf("  %.2f million actor calls a second across %ld actors\n",
              static_cast<double>(calls * counters) / many_seconds / 1e6, counters);
  return 0;
}
