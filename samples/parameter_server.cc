// The Ray crash course's parameter server: trainers, one key each, iterations of simulated
// work, each writing its key's new value; sequential, then in parallel. Parallel time should
// come close to sequential divided by the number of trainers.
//
//   parameter_server [--quick] [--trainers 5] [--iterations 10] [--work-ms 100]
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"trainers", {5, 5, "trainers, one key each", 1, 10000}},
                        {"iterations", {10, 3, "iterations per trainer", 1, 1e6}},
                        {"work-ms", {100, 5, "simulated work of one iteration", 0, 60000, false}}});
  const long trainers = flags.count("trainers"), iterations = flags.count("iterations");
  const auto work = std::chrono::microseconds(static_cast<long>(flags["work-ms"] * 1000));
  spindle::Runtime rt({.num_cpus = static_cast<double>(trainers)});
  std::map<std::string, double> initial;
  for (long t = 0; t < trainers; ++t) initial["key" + std::to_string(t)] = 0;
  spindle::KeyedParameterServer<double> params(rt, initial);

  auto train = [&params, iterations, work](const std::string& key, bool in_task) {
    for (long i = 0; i < iterations; ++i) {
      double value = params.get(key).get();
      if (in_task) {
        spindle::this_task::sleep_for(work);  // suspends only this trainer
      } else {
        std::this_thread::sleep_for(work);
      }
      params.set(key, value + 1).get();
    }
  };

  samples::Stopwatch sequential_clock;
  for (long t = 0; t < trainers; ++t) train("key" + std::to_string(t), false);
  double sequential = sequential_clock.seconds();

  auto trainer = rt.task([&train](const std::string& key) { train(key, true); });
  samples::Stopwatch parallel_clock;
  std::vector<spindle::ObjectRef<void>> done;
  for (long t = 0; t < trainers; ++t) done.push_back(trainer.remote("key" + std::to_string(t)));
  for (const auto& ref : done) ref.get();
  double parallel = parallel_clock.seconds();

  std::printf("parameter_server: %ld trainers x %ld iterations of %g ms; values:", trainers,
              iterations, flags["work-ms"]);
  for (const std::string& key : params.keys().get())
    std::printf(" %s=%g", key.c_str(), params.get(key).get());
  std::printf("\n");
  samples::report("sequential trainers", sequential);
  samples::report("parallel trainers", parallel, sequential);
  std::printf("  ideal parallel time: sequential / %ld = %.3f s\n", trainers,
              sequential / static_cast<double>(trainers));
  return 0;
}
