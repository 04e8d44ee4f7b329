// Data-parallel training of a multi-layer perceptron (784-256-128-10, ReLU, softmax
// cross-entropy) on Fashion-MNIST, with the gradients averaged or applied by a
// ParameterServer, in both of Ray's parameter-server modes:
//
// - synchronous: each step, every worker (a task) takes its share of one batch, pulls the
//   parameters, computes a gradient and pushes it; the server averages the step's gradients
//   into one Adam update;
// - asynchronous: each worker (a task per epoch) goes through its own share of the epoch's
//   batches at its own pace, pulling, computing and pushing; the server applies each push.
//
// Forward and backward run through OpenBLAS's sgemm, one thread per worker. The dataset is
// Debian's dataset-fashion-mnist (IDX files under /usr/share/datasets/fashion-mnist/); a
// damaged file is refused with the reason. It prints the test accuracy and time per epoch,
// against a sequential baseline run first (one thread, whole batches, no runtime), and with
// --plot draws the training loss and test accuracy over time (gnuplot).
//
//   train_fashion_mnist [--quick] [--epochs 5] [--workers 2] [--batch 128] [--lr 0.001]
//                       [--mode both|sync|async] [--data DIR] [--plot FILE.png]
//                       [--min-accuracy 0.85] [--check-sync]
#include <cblas.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "plot.hpp"
#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

// ---- the dataset: IDX files, gzip-compressed or not ------------------------------------------

struct Dataset {
  std::size_t count = 0;
  std::vector<float> images;  // count x 784, scaled to [0, 1]
  std::vector<std::uint8_t> labels;
};

constexpr std::size_t kPixels = 28 * 28;
constexpr std::size_t kClasses = 10;

std::vector<unsigned char> read_file(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) {
    throw std::runtime_error("cannot open '" + path +
                             "' (Debian's dataset-fashion-mnist installs it; --data DIR "
                             "reads the four IDX files from DIR)");
  }
  std::vector<unsigned char> bytes;
  unsigned char chunk[1 << 16];
  for (;;) {
    int got = gzread(file, chunk, sizeof chunk);
    if (got < 0) {
      int code = 0;
      std::string why = gzerror(file, &code);
      gzclose(file);
      throw std::runtime_error("'" + path + "' is damaged: " + why);
    }
    if (got == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  // A stream cut short ends like a whole one, with an error left behind.
  int code = Z_OK;
  std::string why = gzerror(file, &code);
  gzclose(file);
  if (code != Z_OK && code != Z_STREAM_END) {
    throw std::runtime_error("'" + path + "' is damaged: " + why);
  }
  return bytes;
}

std::uint32_t big_endian(const unsigned char* at) {
  return std::uint32_t{at[0]} << 24 | std::uint32_t{at[1]} << 16 | std::uint32_t{at[2]} << 8 |
         std::uint32_t{at[3]};
}

// The items of an IDX file of unsigned bytes with the given dimensions after the first (0
// for any); throws naming the file and what is wrong with it.
std::vector<unsigned char> read_idx(const std::string& path, std::vector<std::uint32_t> dims,
                                    std::uint32_t& count) {
  std::vector<unsigned char> bytes = read_file(path);
  const std::size_t header = 4 + 4 * (dims.size() + 1);
  auto refuse = [&](const std::string& why) {
    throw std::runtime_error("'" + path + "' is not a Fashion-MNIST IDX file: " + why);
  };
  if (bytes.size() < header) {
    refuse("it holds " + std::to_string(bytes.size()) + " bytes, less than its " +
           std::to_string(header) + "-byte header");
  }
  if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] != dims.size() + 1) {
    char magic[16];
    std::snprintf(magic, sizeof magic, "%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3]);
    refuse(std::string("its magic number is 0x") + magic + ", where unsigned bytes in " +
           std::to_string(dims.size() + 1) + " dimensions are 0x0000080" +
           std::to_string(dims.size() + 1));
  }
  count = big_endian(&bytes[4]);
  std::size_t item = 1;
  for (std::size_t d = 0; d < dims.size(); ++d) {
    std::uint32_t got = big_endian(&bytes[8 + 4 * d]);
    if (got != dims[d]) {
      refuse("dimension " + std::to_string(d + 2) + " is " + std::to_string(got) + ", where " +
             std::to_string(dims[d]) + " is expected");
    }
    item *= got;
  }
  const std::size_t expected = header + std::size_t{count} * item;
  if (bytes.size() != expected) {
    refuse("its header promises " + std::to_string(count) + " items (" +
           std::to_string(expected) + " bytes) but it holds " + std::to_string(bytes.size()) +
           " bytes");
  }
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
  return bytes;
}

Dataset load(const std::string& dir, const std::string& part, std::size_t limit) {
  std::uint32_t images = 0, labels = 0;
  std::string images_path = dir + "/" + part + "-images-idx3-ubyte.gz";
  std::string labels_path = dir + "/" + part + "-labels-idx1-ubyte.gz";
  std::vector<unsigned char> pixels = read_idx(images_path, {28, 28}, images);
  std::vector<unsigned char> classes = read_idx(labels_path, {}, labels);
  if (images != labels) {
    throw std::runtime_error("'" + images_path + "' holds " + std::to_string(images) +
                             " images but '" + labels_path + "' holds " + std::to_string(labels) +
                             " labels");
  }
  for (std::size_t i = 0; i < classes.size(); ++i) {
    if (classes[i] >= kClasses) {
      throw std::runtime_error("'" + labels_path + "': label " + std::to_string(classes[i]) +
                               " of item " + std::to_string(i) + " is not a class (0 to 9)");
    }
  }
  Dataset data;
  data.count = std::min<std::size_t>(images, limit);
  data.images.resize(data.count * kPixels);
  for (std::size_t i = 0; i < data.images.size(); ++i) data.images[i] = pixels[i] / 255.0f;
  data.labels.assign(classes.begin(), classes.begin() + static_cast<std::ptrdiff_t>(data.count));
  return data;
}

// ---- the model -----------------------------------------------------------------------------

// Layer l maps kSizes[l] inputs to kSizes[l + 1] outputs: Z = X W + b, W stored row-major
// (inputs x outputs). All parameters live in one vector: W1 b1 W2 b2 W3 b3.
constexpr std::size_t kSizes[] = {kPixels, 256, 128, kClasses};
constexpr std::size_t kLayers = 3;

struct Layer {
  std::size_t in, out, weights, bias;  // sizes, and offsets into the parameter vector
};

struct Layout {
  Layer layers[kLayers];
  std::size_t total = 0;
  Layout() {
    for (std::size_t l = 0; l < kLayers; ++l) {
      layers[l] = {kSizes[l], kSizes[l + 1], total, total + kSizes[l] * kSizes[l + 1]};
      total = layers[l].bias + kSizes[l + 1];
    }
  }
};
const Layout kLayout;

std::vector<float> initial_parameters(unsigned seed) {
  std::vector<float> params(kLayout.total, 0.0f);
  std::mt19937 random(seed);
  for (const Layer& layer : kLayout.layers) {  // He-uniform weights, zero biases
    std::uniform_real_distribution<float> uniform(-std::sqrt(6.0f / layer.in),
                                                  std::sqrt(6.0f / layer.in));
    for (std::size_t i = 0; i < layer.in * layer.out; ++i) params[layer.weights + i] = uniform(random);
  }
  return params;
}

// What one worker computes with: activations for a batch of up to `rows`.
struct Workspace {
  explicit Workspace(std::size_t rows) : rows(rows) {
    for (std::size_t l = 0; l <= kLayers; ++l) {
      activations[l].resize(rows * kSizes[l]);
      deltas[l].resize(rows * kSizes[l]);
    }
  }
  std::size_t rows;
  std::vector<float> activations[kLayers + 1];  // [0] the inputs, [3] the probabilities
  std::vector<float> deltas[kLayers + 1];       // d loss / d pre-activation
};

// Forward through the layers for `rows` inputs already in ws.activations[0].
void forward(const float* params, Workspace& ws, std::size_t rows) {
  for (std::size_t l = 0; l < kLayers; ++l) {
    const Layer& layer = kLayout.layers[l];
    float* out = ws.activations[l + 1].data();
    for (std::size_t r = 0; r < rows; ++r) {
      std::copy_n(params + layer.bias, layer.out, out + r * layer.out);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                static_cast<int>(layer.out), static_cast<int>(layer.in), 1.0f,
                ws.activations[l].data(), static_cast<int>(layer.in), params + layer.weights,
                static_cast<int>(layer.out), 1.0f, out, static_cast<int>(layer.out));
    if (l + 1 < kLayers) {
      for (std::size_t i = 0; i < rows * layer.out; ++i) out[i] = std::max(out[i], 0.0f);
    } else {
      for (std::size_t r = 0; r < rows; ++r) {  // softmax, stable
        float* z = out + r * kClasses;
        float top = *std::max_element(z, z + kClasses), sum = 0;
        for (std::size_t c = 0; c < kClasses; ++c) sum += z[c] = std::exp(z[c] - top);
        for (std::size_t c = 0; c < kClasses; ++c) z[c] /= sum;
      }
    }
  }
}

// The mean loss over the batch `order[first, first + rows)` and its gradient into `grad`.
float gradient(const float* params, const Dataset& data, const std::uint32_t* order,
               std::size_t rows, float* grad, Workspace& ws) {
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy_n(&data.images[order[r] * kPixels], kPixels, &ws.activations[0][r * kPixels]);
  }
  forward(params, ws, rows);
  float loss = 0;
  const float* probs = ws.activations[kLayers].data();
  float* delta = ws.deltas[kLayers].data();
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint8_t label = data.labels[order[r]];
    loss -= std::log(std::max(probs[r * kClasses + label], 1e-30f));
    for (std::size_t c = 0; c < kClasses; ++c) {
      delta[r * kClasses + c] = (probs[r * kClasses + c] - (c == label ? 1.0f : 0.0f)) / rows;
    }
  }
  for (std::size_t l = kLayers; l-- > 0;) {
    const Layer& layer = kLayout.layers[l];
    const float* in = ws.activations[l].data();
    const float* d = ws.deltas[l + 1].data();
    // dW = in^T d, db = column sums of d.
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(layer.in),
                static_cast<int>(layer.out), static_cast<int>(rows), 1.0f, in,
                static_cast<int>(layer.in), d, static_cast<int>(layer.out), 0.0f,
                grad + layer.weights, static_cast<int>(layer.out));
    float* db = grad + layer.bias;
    std::fill_n(db, layer.out, 0.0f);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t o = 0; o < layer.out; ++o) db[o] += d[r * layer.out + o];
    }
    if (l == 0) break;
    // d(previous) = d W^T, through the ReLU.
    float* back = ws.deltas[l].data();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(layer.in), static_cast<int>(layer.out), 1.0f, d,
                static_cast<int>(layer.out), params + layer.weights, static_cast<int>(layer.out),
                0.0f, back, static_cast<int>(layer.in));
    for (std::size_t i = 0; i < rows * layer.in; ++i) {
      if (in[i] <= 0.0f) back[i] = 0.0f;
    }
  }
  return loss / static_cast<float>(rows);
}

double accuracy(const std::vector<float>& params, const Dataset& test) {
  constexpr std::size_t kRows = 500;
  Workspace ws(kRows);
  std::size_t correct = 0;
  for (std::size_t first = 0; first < test.count; first += kRows) {
    std::size_t rows = std::min(kRows, test.count - first);
    std::copy_n(&test.images[first * kPixels], rows * kPixels, ws.activations[0].data());
    forward(params.data(), ws, rows);
    for (std::size_t r = 0; r < rows; ++r) {
      const float* p = &ws.activations[kLayers][r * kClasses];
      correct += static_cast<std::size_t>(std::max_element(p, p + kClasses) - p) ==
                 test.labels[first + r];
    }
  }
  return static_cast<double>(correct) / static_cast<double>(test.count);
}

// ---- training ------------------------------------------------------------------------------

struct Settings {
  std::size_t epochs, workers, batch;
  double lr;
  unsigned seed = 7;
};

struct Point {
  double seconds;  // training time so far
  double value;
};

struct Curve {
  std::string mode;
  std::vector<Point> loss;      // the training loss, averaged over a window of steps
  std::vector<Point> accuracy;  // the test accuracy after each epoch
  std::vector<double> epoch_seconds;
  std::uint64_t updates = 0;
  std::vector<float> params;  // at the end
  [[nodiscard]] double train_seconds() const {
    return std::accumulate(epoch_seconds.begin(), epoch_seconds.end(), 0.0);
  }
};

// What one worker keeps between its steps.
struct Worker {
  explicit Worker(std::size_t rows) : params(kLayout.total), grad(kLayout.total), ws(rows) {}
  std::vector<float> params, grad;
  Workspace ws;
  std::vector<Point> losses;  // (time of the step, its loss)
};

// After an epoch of `seconds`: the test accuracy, a line of output, and the loss curve from
// the steps' losses (each worker's, in time order, averaged over windows).
void end_epoch(Curve& curve, std::size_t epoch, double seconds, double& trained,
               const std::vector<float>& params, const Dataset& test, std::size_t rows,
               std::vector<std::vector<Point>*> losses_of) {
  trained += seconds;
  curve.epoch_seconds.push_back(seconds);
  double acc = accuracy(params, test);
  curve.accuracy.push_back({trained, acc});
  std::vector<Point> losses;
  for (std::vector<Point>* some : losses_of) {
    losses.insert(losses.end(), some->begin(), some->end());
    some->clear();
  }
  double epoch_loss = 0;
  for (const Point& point : losses) epoch_loss += point.value;
  std::printf("  %-12s epoch %zu: train loss %.4f, test accuracy %.2f%%, %.2f s (%.0f "
              "images/s)\n",
              curve.mode.c_str(), epoch, epoch_loss / static_cast<double>(losses.size()),
              100 * acc, seconds, static_cast<double>(losses.size() * rows) / seconds);
  std::fflush(stdout);
  std::sort(losses.begin(), losses.end(),
            [](const Point& a, const Point& b) { return a.seconds < b.seconds; });
  const std::size_t window = std::max<std::size_t>(1, losses.size() / 20);
  for (std::size_t i = 0; i + window <= losses.size(); i += window) {
    double sum = 0;
    for (std::size_t j = i; j < i + window; ++j) sum += losses[j].value;
    curve.loss.push_back({losses[i + window - 1].seconds, sum / static_cast<double>(window)});
  }
}

// The baseline: one thread, whole batches, Adam applied in place, no runtime. The same
// arithmetic as the synchronous mode (whose update is the mean over the same batch).
Curve train_sequential(const Dataset& train_set, const Dataset& test, const Settings& settings) {
  Curve curve{"sequential"};
  const std::size_t share = settings.batch / settings.workers;
  const std::size_t rows = share * settings.workers;  // the synchronous mode's batch
  std::vector<float> params = initial_parameters(settings.seed), grad(kLayout.total),
                     first(kLayout.total), second(kLayout.total);
  Workspace ws(rows);
  std::vector<Point> losses;
  std::vector<std::uint32_t> order(train_set.count);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 shuffle(settings.seed);
  const std::size_t steps = train_set.count / share / settings.workers;
  double trained = 0;
  std::int64_t step = 0;
  curve.accuracy.push_back({0, accuracy(params, test)});
  for (std::size_t epoch = 1; epoch <= settings.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), shuffle);
    samples::Stopwatch clock;
    for (std::size_t s = 0; s < steps; ++s) {
      float loss = gradient(params.data(), train_set, &order[s * rows], rows, grad.data(), ws);
      spindle::kernels::cpu::adam<float>(params.data(), grad.data(), first.data(), second.data(),
                                         kLayout.total, {.lr = settings.lr, .step = ++step});
      losses.push_back({trained + clock.seconds(), loss});
    }
    end_epoch(curve, epoch, clock.seconds(), trained, params, test, rows, {&losses});
  }
  curve.updates = static_cast<std::uint64_t>(step);
  curve.params = std::move(params);
  return curve;
}

Curve train(spindle::Runtime& rt, const Dataset& train_set, const Dataset& test,
            const Settings& settings, spindle::UpdateMode mode) {
  const bool sync = mode == spindle::UpdateMode::synchronous;
  Curve curve{sync ? "synchronous" : "asynchronous"};
  const std::size_t share = settings.batch / settings.workers;  // rows per push
  spindle::ParameterServer<float> ps(rt, initial_parameters(settings.seed),
                                     {.num_shards = 2,
                                      .optimizer = spindle::Optimizer::adam,
                                      .lr = settings.lr,
                                      .mode = mode,
                                      .workers = sync ? settings.workers : 1});
  std::vector<Worker> workers;
  for (std::size_t w = 0; w < settings.workers; ++w) workers.emplace_back(share);
  std::vector<std::uint32_t> order(train_set.count);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 shuffle(settings.seed);
  const std::size_t pushes = train_set.count / share;  // per epoch; the rest is left out
  double trained = 0;  // seconds, evaluation left out

  // One push's work: pull, compute the gradient of rows [first, first + share), push it.
  auto step = [&](Worker& worker, std::size_t first, const samples::Stopwatch& since,
                  double before) {
    ps.pull(worker.params);
    float loss = gradient(worker.params.data(), train_set, &order[first], share,
                          worker.grad.data(), worker.ws);
    (void)spindle::get(ps.push_view(worker.grad));  // all done, even if one failed
    worker.losses.push_back({before + since.seconds(), loss});
  };
  // synchronous: worker w's share of step s; asynchronous: every workers-th push from w.
  auto sync_step = rt.task([&](std::size_t w, std::size_t s, samples::Stopwatch since,
                               double before) {
    step(workers[w], (s * settings.workers + w) * share, since, before);
  });
  auto async_epoch = rt.task([&](std::size_t w, samples::Stopwatch since, double before) {
    for (std::size_t k = w; k < pushes; k += settings.workers) {
      step(workers[w], k * share, since, before);
    }
  });

  curve.accuracy.push_back({0, accuracy(ps.pull(), test)});
  for (std::size_t epoch = 1; epoch <= settings.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), shuffle);
    samples::Stopwatch epoch_clock;
    std::vector<spindle::ObjectRef<void>> done;
    if (sync) {
      for (std::size_t s = 0; s < pushes / settings.workers; ++s) {
        done.clear();
        for (std::size_t w = 0; w < settings.workers; ++w) {
          done.push_back(sync_step.remote(w, s, epoch_clock, trained));
        }
        spindle::get(done);  // all of them end before an error leaves: they use this frame
      }
    } else {
      for (std::size_t w = 0; w < settings.workers; ++w) {
        done.push_back(async_epoch.remote(w, epoch_clock, trained));
      }
      spindle::get(done);
    }
    std::vector<std::vector<Point>*> losses;
    for (Worker& worker : workers) losses.push_back(&worker.losses);
    curve.params = ps.pull();
    end_epoch(curve, epoch, epoch_clock.seconds(), trained, curve.params, test, share, losses);
  }
  curve.updates = ps.steps().front();
  return curve;
}

}  // namespace

int main(int argc, char** argv) {
  samples::Flags flags(
      argc, argv,
      {{"epochs", {5, 1, "passes over the training set", 1, 1000}},
       {"workers", {2, 2, "workers (tasks) computing gradients", 1, 256}},
       {"batch", {128, 128, "rows per synchronous step (split among the workers)", 1, 60000}},
       {"lr", {0.001, 0.001, "Adam's learning rate", 1e-6, 1, false}},
       {"train-rows", {60000, 6000, "training rows used (the first ones)", 1, 60000}},
       {"min-accuracy", {0, 0, "exit with status 1 if a mode ends below this test accuracy", 0, 1,
                         false}}},
      {{"check-sync", "exit with status 1 if the synchronous mode's parameters leave the "
                      "sequential baseline's by more than 1e-2 of the largest (a push lost "
                      "or taken twice does; rounding does not, over a --quick run)"}},
      {{"mode", {"both", "parameter-server mode", {"both", "sync", "async"}}},
       {"data", {"/usr/share/datasets/fashion-mnist", "folder of the four IDX files", {}}},
       {"plot", {"", "draw loss and accuracy over time into this PNG", {}}}});
  Settings settings{static_cast<std::size_t>(flags.count("epochs")),
                    static_cast<std::size_t>(flags.count("workers")),
                    static_cast<std::size_t>(flags.count("batch")), flags["lr"]};
  if (settings.batch < settings.workers) {
    flags.refuse("--batch " + std::to_string(settings.batch) + ": must be at least --workers (" +
                 std::to_string(settings.workers) + ")");
  }
  // OpenBLAS falls back to its oldest x86-64 kernels on a CPU model it does not know (seen
  // on virtual machines that hide the model: Debian's 0.3.21 picks Prescott there), which
  // makes this program 3-4x slower. It reads its choice once, when loaded; so this program
  // starts itself again with the right one, unless the user chose one (OPENBLAS_CORETYPE).
  const bool haswell = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool skylake_x = haswell && __builtin_cpu_supports("avx512f") &&
                         __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (std::string core = openblas_get_corename();
      (core == "Prescott" || core == "Core2") && haswell && !std::getenv("OPENBLAS_CORETYPE")) {
    const char* right = skylake_x ? "SkylakeX" : "Haswell";
    std::printf("note: OpenBLAS chose its %s kernels on a CPU with AVX2 and FMA%s (it did not "
                "know the model); starting again with OPENBLAS_CORETYPE=%s\n",
                core.c_str(), skylake_x ? " and AVX-512" : "", right);
    std::fflush(stdout);
    setenv("OPENBLAS_CORETYPE", right, 1);
    execv("/proc/self/exe", argv);
    std::perror("train_fashion_mnist: starting again failed; going on");
  }
  openblas_set_num_threads(1);  // the workers are the parallelism

  Dataset train_set, test;
  try {
    train_set = load(flags.text("data"), "train", static_cast<std::size_t>(flags.count("train-rows")));
    test = load(flags.text("data"), "t10k", flags.quick() ? 2000 : 10000);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", error.what());
    return 2;
  }
  if (train_set.count < settings.batch) {
    flags.refuse("--batch " + std::to_string(settings.batch) + ": the training set has only " +
                 std::to_string(train_set.count) + " rows");
  }

  spindle::Runtime rt;
  std::printf("Fashion-MNIST: MLP 784-256-128-10 (%zu parameters), %zu training and %zu test "
              "images, batch %zu over %zu workers, Adam lr %g, %zu epoch(s), %u runtime workers, "
              "OpenBLAS %s kernels\n",
              kLayout.total, train_set.count, test.count, settings.batch, settings.workers,
              settings.lr, settings.epochs, rt.num_workers(), openblas_get_corename());
  std::vector<Curve> curves{train_sequential(train_set, test, settings)};
  const std::string& mode = flags.text("mode");
  if (mode != "async") {
    curves.push_back(train(rt, train_set, test, settings, spindle::UpdateMode::synchronous));
  }
  if (mode != "sync") {
    curves.push_back(train(rt, train_set, test, settings, spindle::UpdateMode::asynchronous));
  }

  bool passed = true;  // the checks asked for by --min-accuracy and --check-sync
  for (const Curve& curve : curves) {
    const double final_accuracy = curve.accuracy.back().value;
    std::printf("  %-12s %.2f%% test accuracy after %zu epoch(s), %llu updates, %.2f s of "
                "training (%.2f s per epoch)\n",
                curve.mode.c_str(), 100 * final_accuracy, settings.epochs,
                static_cast<unsigned long long>(curve.updates), curve.train_seconds(),
                curve.train_seconds() / static_cast<double>(settings.epochs));
    std::string name = "train fashion-mnist, " + curve.mode;
    samples::report(name.c_str(), curve.train_seconds(),
                    &curve == &curves.front() ? 0 : curves.front().train_seconds());
    if (final_accuracy < flags["min-accuracy"]) {
      std::fprintf(stderr, "train_fashion_mnist: the %s run ended below --min-accuracy %g\n",
                   curve.mode.c_str(), flags["min-accuracy"]);
      passed = false;
    }
  }
  // The synchronous mode makes the sequential baseline's updates, summed in another order.
  for (const Curve& curve : curves) {
    if (curve.mode != "synchronous") continue;
    float largest = 0, difference = 0;
    for (std::size_t i = 0; i < curve.params.size(); ++i) {
      largest = std::max(largest, std::abs(curves.front().params[i]));
      difference = std::max(difference, std::abs(curve.params[i] - curves.front().params[i]));
    }
    std::printf("  synchronous against sequential: parameters differ by at most %.3g (%.2g of "
                "the largest); both sum the same gradients, in another order, and rounding "
                "differences grow with the steps\n",
                difference, difference / largest);
    if (flags.on("check-sync") && difference > 1e-2f * largest) {
      std::fprintf(stderr, "train_fashion_mnist: the synchronous mode's parameters left the "
                           "sequential baseline's by more than 1e-2 of the largest\n");
      passed = false;
    }
  }
  if (const std::string& png = flags.text("plot"); !png.empty()) {
    std::vector<bench::LineChart> panels(2);
    panels[0] = {"training loss (windowed mean)", "seconds of training", "loss", {}, "top right"};
    panels[1] = {"test accuracy after each epoch", "seconds of training", "accuracy", {}};
    for (const Curve& curve : curves) {
      auto points = [](const std::vector<Point>& from) {
        std::vector<std::pair<double, double>> to;
        for (const Point& p : from) to.emplace_back(p.seconds, p.value);
        return to;
      };
      panels[0].series.push_back({curve.mode, points(curve.loss)});
      panels[1].series.push_back({curve.mode, points(curve.accuracy)});
    }
    if (bench::plot_lines(panels, png)) std::printf("  plot: %s\n", png.c_str());
  }
  return passed ? 0 : 1;
}
