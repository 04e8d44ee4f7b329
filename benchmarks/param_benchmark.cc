// Parameter server throughput: push (copied into slices), push_view (read in place) and pull
// in GB/s by number of shards, host shards against device shards (on the GPU when there is
// one), and synchronous rounds of K workers' pushes measured against the (K+1) x size bytes
// a round must move (K gradients read, one sum written).
//
//   param_benchmark [--quick] [--mb 64] [--reps 5]   (--help lists the flags and their ranges)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

using Clock = std::chrono::steady_clock;

template <typename Run>
double median_seconds(int reps, Run run) {
  run();  // warm-up
  std::vector<double> seconds;
  for (int r = 0; r < reps; ++r) {
    auto start = Clock::now();
    run();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return samples::median(seconds);
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"mb", {64, 2, "MB of float32 parameters", 1, 16384}},
                        {"reps", {5, 2, "timed runs per row, whose median is reported", 1, 1000}}});
  const double mb = flags["mb"];
  const int reps = static_cast<int>(flags.count("reps"));
  const std::size_t n = static_cast<std::size_t>(mb * (1 << 20) / sizeof(float));
  const double bytes = static_cast<double>(n * sizeof(float));
  spindle::Runtime rt;
  const bool gpu = spindle::device_count() > 0;
  std::printf("### Parameter server, %.0f MB of float32, %u workers, %s\n\n", mb, rt.num_workers(),
              gpu ? "device shards on the GPU" : "no GPU: device shards are host shards");
  std::printf("| shards | placement | push GB/s | push_view GB/s | pull GB/s |\n"
              "| ---: | --- | ---: | ---: | ---: |\n");
  std::vector<float> gradient(n, 1e-3f), pulled(n);
  for (std::size_t shards : {1, 2, 4, 8}) {
    for (bool device : {false, true}) {
      spindle::ParameterServer<float> ps(rt, std::vector<float>(n, 1.0f),
                                         {.num_shards = shards, .lr = 0.1, .use_gpus = device});
      double push = median_seconds(reps, [&] {
        for (const auto& ref : ps.push(gradient)) ref.get();
      });
      double view = median_seconds(reps, [&] {
        (void)spindle::get(ps.push_view(gradient));
      });
      double pull = median_seconds(reps, [&] { ps.pull(pulled); });
      std::printf("| %zu | %s | %.2f | %.2f | %.2f |\n", shards, device ? "device" : "host",
                  bytes / push / 1e9, bytes / view / 1e9, bytes / pull / 1e9);
      std::fflush(stdout);
    }
  }

  std::printf(
      "\n### Synchronous rounds: K pushes summed in place, one update (device shards, 2 shards)\n\n");
  std::printf("| K | push: round ms | GB/s | push_view: round ms | GB/s |\n"
              "| ---: | ---: | ---: | ---: | ---: |\n");
  for (std::size_t k : {2, 4, 8}) {
    spindle::ParameterServer<float> ps(
        rt, std::vector<float>(n, 1.0f),
        {.num_shards = 2, .lr = 0.1, .mode = spindle::UpdateMode::synchronous, .workers = k});
    // push copies each gradient into per-shard slices, so its round moves those K copies
    // (read and written) besides the (K+1) x size of the sum and the update's 3; push_view
    // reads the gradients in place.
    std::vector<spindle::Buffer<float>> gradients;
    for (std::size_t w = 0; w < k; ++w) gradients.emplace_back(gradient, spindle::Location::host());
    auto round_of = [&](bool view) {
      return median_seconds(reps, [&] {
        std::vector<spindle::ObjectRef<std::uint64_t>> all;
        for (const auto& g : gradients) {
          for (auto& ref : view ? ps.push_view(g) : ps.push(g)) all.push_back(std::move(ref));
        }
        (void)spindle::get(all);
      });
    };
    double copied = round_of(false), viewed = round_of(true);
    const double moved = static_cast<double>(k + 1) * bytes;
    std::printf("| %zu | %.1f | %.2f | %.1f | %.2f |\n", k, copied * 1e3, moved / copied / 1e9,
                viewed * 1e3, moved / viewed / 1e9);
    std::fflush(stdout);
  }
  return 0;
}
