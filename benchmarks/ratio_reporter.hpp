// A Google Benchmark reporter that keeps each run's items per second and, at the end, prints
// spindle's ratio to each baseline measured in the same run. Benchmarks are named
// `Scenario_spindle[/args]` and `Scenario_<baseline>[/args]`; with repetitions, the median
// stands for a benchmark.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace spindle::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  /// `baselines`: the name suffixes of the baselines, as in `Scenario_<baseline>`.
  explicit RatioReporter(std::vector<std::string> baselines)
      : ConsoleReporter(OO_Tabular), baselines_(std::move(baselines)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (!median && run.run_type != Run::RT_Iteration) continue;
      auto items = run.counters.find("items_per_second");
      if (items == run.counters.end()) continue;
      std::string name = run.run_name.str();
      if (median || !rates_.contains(name)) rates_[name] = items->second.value;
    }
  }

  void print_ratios() const {
    std::printf("\n%-34s %14s", "scenario (items/s)", "spindle");
    for (const auto& baseline : baselines_) std::printf(" %14s", baseline.c_str());
    for (const auto& baseline : baselines_) std::printf(" %12s", ("vs " + baseline).c_str());
    std::printf("\n");
    for (const auto& [name, rate] : rates_) {
      auto at = name.find("_spindle");
      if (at == std::string::npos) continue;
      std::string scenario = name.substr(0, at);
      std::string args = name.substr(at + 8);
      std::printf("%-34s %14.0f", (scenario + args).c_str(), rate);
      for (const auto& baseline : baselines_) {
        std::printf(" %14s", text(rate_of(scenario + "_" + baseline + args)).c_str());
      }
      for (const auto& baseline : baselines_) {
        std::printf(" %12s", ratio(rate, rate_of(scenario + "_" + baseline + args)).c_str());
      }
      std::printf("\n");
    }
  }

 private:
  double rate_of(const std::string& name) const {
    auto it = rates_.find(name);
    return it == rates_.end() ? 0 : it->second;
  }
  static std::string text(double rate) {
    return rate > 0 ? std::to_string(static_cast<long>(rate)) : "-";
  }
  static std::string ratio(double a, double b) {
    if (b <= 0) return "-";
    char out[32];
    std::snprintf(out, sizeof out, "%.2fx", a / b);
    return out;
  }

  std::vector<std::string> baselines_;
  std::map<std::string, double> rates_;
};

/// Runs the registered benchmarks with a RatioReporter and prints the ratio table.
inline int run_with_ratios(int argc, char** argv, std::vector<std::string> baselines,
                           void (*print_header)()) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  print_header();
  RatioReporter reporter(std::move(baselines));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}

}  // namespace spindle::bench
