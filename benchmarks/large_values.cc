// Large values the Ray way: an actor whose method returns a std::vector<double> of tens of MB
// by value, and tasks that sum each one, --values of them with --in-flight at once. Run with
// large-block reuse (spindle::large_blocks, linked into this program) off and on, interleaved
// --reps times in this one process; prints the median seconds and page faults of each, and
// the ratio. Without reuse, glibc maps every such vector anew and faults its pages in.
//
//   large_values [--quick] [--mb 40] [--values 40] [--in-flight 2] [--reps 5]
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <vector>

#include "sample_support.hpp"
#include "spindle/large_blocks.hpp"
#include "spindle/spindle.hpp"

namespace {

struct Producer {
  std::size_t n;
  std::vector<double> make(long i) const { return std::vector<double>(n, static_cast<double>(i)); }
};

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"mb", {40, 8, "MB of float64 per value", 1, 4096}},
                        {"values", {40, 8, "values made and summed per run", 1, 1e6}},
                        {"in-flight", {2, 2, "values made at once", 1, 1024}},
                        {"reps", {5, 2, "runs of each variant, interleaved", 1, 1000}}});
  const std::size_t n = static_cast<std::size_t>(flags["mb"]) * (1 << 20) / sizeof(double);
  const long values = flags.count("values"), in_flight = flags.count("in-flight");
  spindle::Runtime rt;
  auto producer = rt.actor<Producer>().remote(Producer{n});
  auto sum = rt.task([](const std::vector<double>& value) {
    return std::accumulate(value.begin(), value.end(), 0.0);
  });
  std::printf("large values the Ray way: an actor returns %ld vectors of %.0f MB by value, tasks "
              "sum them, %ld at once, %u runtime workers\n",
              values, flags["mb"], in_flight, rt.num_workers());

  if (!spindle::large_blocks::available()) {
    std::printf("  (a sanitizer build: its runtime defines operator new, so large-block reuse "
                "is off in both variants)\n");
  }

  auto run = [&] {
    double total = 0;
    for (long first = 0; first < values; first += in_flight) {
      std::vector<spindle::ObjectRef<double>> sums;
      for (long i = first; i < std::min(values, first + in_flight); ++i) {
        sums.push_back(sum.remote(producer.call(&Producer::make, i)));
      }
      for (const auto& ref : sums) total += ref.get();
    }
    const double want = static_cast<double>(n) * static_cast<double>(values * (values - 1) / 2);
    if (total != want) {
      std::fprintf(stderr, "large_values: the sums add up to %g, not %g\n", total, want);
      std::exit(1);
    }
  };

  struct Variant {
    const char* name;
    bool reuse;
    std::vector<double> seconds, faults;
  } variants[] = {{"large values, system malloc", false, {}, {}},
                  {"large values, large-block reuse", true, {}, {}}};
  for (long rep = 0; rep < flags.count("reps"); ++rep) {
    for (Variant& variant : variants) {
      spindle::large_blocks::set_enabled(variant.reuse);
      spindle::large_blocks::release();
      run();  // warm-up: the first values fill the cache
      long faults = minor_faults();
      samples::Stopwatch clock;
      run();
      variant.seconds.push_back(clock.seconds());
      variant.faults.push_back(static_cast<double>(minor_faults() - faults));
    }
  }
  for (const Variant& variant : variants) {
    samples::report(variant.name, samples::median(variant.seconds),
                    variant.reuse ? samples::median(variants[0].seconds) : 0);
    const double faults = samples::median(variant.faults);
    std::printf("    %.0f page faults per run (median), %.1f per value\n", faults,
                faults / static_cast<double>(values));
  }
  spindle::large_blocks::Stats stats = spindle::large_blocks::stats();
  std::printf("  large-block reuse: %llu allocations reused, %llu from the system, %.0f MiB kept\n",
              static_cast<unsigned long long>(stats.reused),
              static_cast<unsigned long long>(stats.allocated),
              static_cast<double>(stats.kept_bytes) / (1 << 20));
  return 0;
}
