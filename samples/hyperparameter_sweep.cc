// A hyperparameter sweep: NUM_MODELS gradient-boosted forests of growing size (XGBoost's C
// API), trained in parallel tasks on Friedman #1 data generated here, each scored by mean
// squared error on held-out rows; the best is printed. Sequential against parallel.
//
//   hyperparameter_sweep [--quick] [--models 8] [--rows 4000] [--seed 7]
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

constexpr int kFeatures = 10;

struct Data {
  std::vector<float> x, y;  // rows x kFeatures, row-major; labels
  [[nodiscard]] std::size_t rows() const { return y.size(); }
};

// Friedman #1: y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5 + noise; x6..x10 are noise.
Data friedman1(std::size_t rows, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0, 1);
  std::normal_distribution<float> noise(0, 1);
  Data data;
  for (std::size_t r = 0; r < rows; ++r) {
    float f[kFeatures];
    for (float& v : f) v = uniform(rng);
    data.x.insert(data.x.end(), f, f + kFeatures);
    data.y.push_back(10 * std::sin(std::numbers::pi_v<float> * f[0] * f[1]) +
                     20 * (f[2] - 0.5f) * (f[2] - 0.5f) + 10 * f[3] + 5 * f[4] + noise(rng));
  }
  return data;
}

void check(int status, const char* call) {
  if (status != 0) throw std::runtime_error(std::string(call) + ": " + XGBGetLastError());
}

using Matrix = std::unique_ptr<void, decltype(&XGDMatrixFree)>;
using Booster = std::unique_ptr<void, decltype(&XGBoosterFree)>;

Matrix matrix(const Data& data) {
  DMatrixHandle handle = nullptr;
  check(XGDMatrixCreateFromMat(data.x.data(), data.rows(), kFeatures, NAN, &handle),
        "XGDMatrixCreateFromMat");
  Matrix owned(handle, &XGDMatrixFree);
  check(XGDMatrixSetFloatInfo(handle, "label", data.y.data(), data.rows()),
        "XGDMatrixSetFloatInfo");
  return owned;
}

// Trains a forest of `trees` trees on one thread and returns its held-out mean squared error.
double train_and_score(const Data& train, const Data& test, int trees) {
  Matrix dtrain = matrix(train), dtest = matrix(test);
  DMatrixHandle inputs[] = {dtrain.get()};
  BoosterHandle handle = nullptr;
  check(XGBoosterCreate(inputs, 1, &handle), "XGBoosterCreate");
  Booster booster(handle, &XGBoosterFree);
  check(XGBoosterSetParam(handle, "nthread", "1"), "XGBoosterSetParam");  // one task, one core
  check(XGBoosterSetParam(handle, "objective", "reg:squarederror"), "XGBoosterSetParam");
  check(XGBoosterSetParam(handle, "max_depth", "4"), "XGBoosterSetParam");
  check(XGBoosterSetParam(handle, "eta", "0.1"), "XGBoosterSetParam");
  for (int round = 0; round < trees; ++round) {
    check(XGBoosterUpdateOneIter(handle, round, dtrain.get()), "XGBoosterUpdateOneIter");
  }
  bst_ulong count = 0;
  const float* predictions = nullptr;
  check(XGBoosterPredict(handle, dtest.get(), 0, 0, 0, &count, &predictions), "XGBoosterPredict");
  double error = 0;
  for (bst_ulong i = 0; i < count; ++i) {
    double d = predictions[i] - test.y[i];
    error += d * d;
  }
  return error / static_cast<double>(count);
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"models", {8, 2, "models (forests of 10, 20, ... trees)", 1, 64}},
                        {"rows", {4000, 300, "training rows (held out: a quarter)", 40, 1e7}},
                        {"seed", {7, 7, "random seed of the data", 0, 4294967295}}});
  const long models = flags.count("models");
  const unsigned seed = static_cast<unsigned>(flags.count("seed"));
  const Data train = friedman1(static_cast<std::size_t>(flags.count("rows")), seed);
  const Data test = friedman1(static_cast<std::size_t>(flags.count("rows")) / 4, seed + 1);
  auto trees = [](long model) { return static_cast<int>(10 * (model + 1)); };

  samples::Stopwatch sequential_clock;
  std::vector<double> sequential_errors;
  for (long m = 0; m < models; ++m)
    sequential_errors.push_back(train_and_score(train, test, trees(m)));
  double sequential = sequential_clock.seconds();

  // XGBoost needs deeper stacks than a task's default 64 KB.
  spindle::Runtime rt({.stack_bytes = 8 << 20});
  auto data = rt.put(train);
  auto held_out = rt.put(test);
  auto fit = rt.task(train_and_score).options({.num_cpus = 1, .name = "train_and_score"});
  samples::Stopwatch parallel_clock;
  std::vector<spindle::ObjectRef<double>> scores;
  for (long m = 0; m < models; ++m) scores.push_back(fit.remote(data, held_out, trees(m)));
  std::vector<double> errors = spindle::get(scores);
  double parallel = parallel_clock.seconds();

  long best = 0;
  std::printf("hyperparameter sweep: %ld models on %zu Friedman #1 rows, %zu held out\n", models,
              train.rows(), test.rows());
  for (long m = 0; m < models; ++m) {
    std::printf("  %3d trees: mean squared error %.4f%s\n", trees(m), errors[m],
                errors[m] == sequential_errors[m] ? "" : " (differs from the sequential run)");
    if (errors[m] < errors[best]) best = m;
  }
  std::printf("best: %d trees, mean squared error %.4f\n", trees(best), errors[best]);
  samples::report("sequential", sequential);
  samples::report("parallel tasks", parallel, sequential);
  return errors == sequential_errors ? 0 : 1;
}
