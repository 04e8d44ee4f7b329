// Kernel bandwidth: bytes moved a second by each kernel, as a share of a baseline measured
// in the same run at the same size, runs of the two alternating (the share is the median of
// the pairs' ratios): a STREAM triad (a = b + s * c) for the CPU twins, split
// across the runtime's workers exactly as they are, and a device-to-device copy on the GPU.
// Bytes count reads plus writes of the arrays each kernel must touch (STREAM's convention).
//
//   kernels_benchmark [--quick] [--min-mb N] [--max-mb N] [--reps N] [--type float|double]
//                     [--cpu-only | --gpu-only]   (--help says more)
#ifdef SPINDLE_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "context/parallel.hpp"
#include "sample_support.hpp"
#include "spindle/spindle.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
  std::size_t min_mb = 1, max_mb = 1024;
  int reps = 5;
  bool use_double = false, cpu = true, gpu = true;
};

Settings parse(int argc, char** argv) {
  samples::Flags flags(argc, argv,
                       {{"min-mb", {1, 1, "smallest array, in MB; sizes grow 4x", 1, 65536}},
                        {"max-mb", {1024, 4, "largest array, in MB", 1, 65536}},
                        {"reps", {5, 2, "timed pairs per row, whose median is reported", 1, 1000}}},
                       {{"cpu-only", "the CPU twins only"}, {"gpu-only", "the CUDA kernels only"}},
                       {{"type", {"float", "the element type", {"float", "double"}}}});
  Settings settings;
  settings.min_mb = flags.count("min-mb");
  settings.max_mb = flags.count("max-mb");
  settings.reps = static_cast<int>(flags.count("reps"));
  settings.use_double = flags.text("type") == "double";
  settings.cpu = !flags.on("gpu-only");
  settings.gpu = !flags.on("cpu-only");
  if (settings.max_mb < settings.min_mb) {
    flags.refuse("--max-mb " + std::to_string(settings.max_mb) + ": must be at least --min-mb (" +
                 std::to_string(settings.min_mb) + ")");
  }
  if (!settings.cpu && !settings.gpu) flags.refuse("--cpu-only and --gpu-only: one at most");
  return settings;
}

// One kernel to time: how many arrays of the size it reads plus writes, and how to run it
// once (for the GPU: queued on `stream`).
struct Kernel {
  std::string name;
  int arrays_moved;
  std::function<void(spindle::Stream)> run;
};

template <typename T>
struct Arrays {
  spindle::Buffer<T> p, g, m, v, out;
  explicit Arrays(std::size_t n, spindle::Location at)
      : p(n, at), g(n, at), m(n, at), v(n, at), out(n, at) {
    spindle::ops::fill(p, T(1));
    spindle::ops::fill(g, T(0.5));
    spindle::ops::fill(v, T(0.25));
  }
};

// The kernels, on raw pointers: the CPU twins or the CUDA kernels (same signatures).
template <typename T, bool Gpu>
std::vector<Kernel> kernels_of(Arrays<T>& a, std::size_t n, std::vector<T>& scalars) {
  auto call = [](auto cpu, auto gpu) {
    return [=](spindle::Stream stream) {
      if constexpr (Gpu) {
        gpu(stream);
      } else {
        cpu(stream);
      }
    };
  };
  T* p = a.p.data();
  T* g = a.g.data();
  T* m = a.m.data();
  T* v = a.v.data();
  T* out = a.out.data();
  T* result = Gpu ? a.out.data() : scalars.data();
  namespace cpu = spindle::kernels::cpu;
#ifdef SPINDLE_HAVE_CUDA
  namespace cuda = spindle::kernels::cuda;
#define SPINDLE_BOTH(expression) \
  call([=](spindle::Stream s) { cpu::expression; }, [=](spindle::Stream s) { cuda::expression; })
#else
#define SPINDLE_BOTH(expression) \
  call([=](spindle::Stream s) { cpu::expression; }, [](spindle::Stream) {})
#endif
  spindle::kernels::Sgd sgd{.lr = 1e-3};
  spindle::kernels::Sgd momentum{.lr = 1e-3, .momentum = 0.9, .nesterov = true};
  spindle::kernels::Adam adam{.lr = 1e-4, .weight_decay = 0.01, .decoupled = true};
  std::vector<Kernel> kernels = {
      {"sgd", 3, SPINDLE_BOTH(sgd<T>(p, g, nullptr, n, sgd, s))},
      {"momentum (nesterov)", 5, SPINDLE_BOTH(sgd<T>(p, g, m, n, momentum, s))},
      {"adamw", 7, SPINDLE_BOTH(adam<T>(p, g, m, v, n, adam, s))},
      {"aggregate 4 -> 1 (mean)", 5,
       call(
           [=](spindle::Stream s) {
             const T* in[] = {p, g, m, v};
             cpu::aggregate<T>(out, in, n, spindle::kernels::Reduction::mean, s);
           },
           [=]([[maybe_unused]] spindle::Stream s) {
#ifdef SPINDLE_HAVE_CUDA
             const T* in[] = {p, g, m, v};
             cuda::aggregate<T>(out, in, n, spindle::kernels::Reduction::mean, s);
#endif
           })},
      {"axpy", 3, SPINDLE_BOTH(axpy<T>(m, T(1e-3), g, n, s))},
      // Misaligned: one shared offset is peeled; different offsets run the scalar path.
      {"axpy, both offset by 1 element", 3, SPINDLE_BOTH(axpy<T>(m + 1, T(1e-3), g + 1, n - 1, s))},
      {"axpy, x offset by 1 element", 3, SPINDLE_BOTH(axpy<T>(m, T(1e-3), g + 1, n - 1, s))},
      {"scale", 2, SPINDLE_BOTH(scale<T>(v, T(1), n, s))},
      {"fill", 1, SPINDLE_BOTH(fill<T>(out, T(0), n, s))},
      {"dot", 2, SPINDLE_BOTH(dot<T>(p, g, n, result, s))},
      {"norm2", 1, SPINDLE_BOTH(norm2<T>(g, n, result, s))},
  };
#undef SPINDLE_BOTH
  return kernels;
}

using Timer = std::function<double(const std::function<void()>&)>;  // seconds of one run

double wall_seconds(const std::function<void()>& run) {
  auto start = Clock::now();
  run();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Measured {
  double gbps;   // median over the repetitions
  double share;  // median of the per-pair ratios to the baseline
};

// Alternates baseline and kernel runs, so that both see the same moment of a noisy machine.
Measured interleaved(const Timer& time_once, const std::function<void()>& baseline,
                     double baseline_bytes, const std::function<void()>& kernel,
                     double kernel_bytes, int reps) {
  time_once(baseline);  // warm-up
  time_once(kernel);
  std::vector<double> gbps, shares;
  for (int r = 0; r < reps; ++r) {
    double base = baseline_bytes / time_once(baseline);
    double rate = kernel_bytes / time_once(kernel);
    gbps.push_back(rate / 1e9);
    shares.push_back(rate / base);
  }
  return {samples::median(gbps), samples::median(shares)};
}

// `peak_gbps` > 0 adds the share of the device's nominal peak.
void print_row(const char* side, std::size_t mb, const std::string& name, Measured measured,
               double peak_gbps = 0) {
  std::printf("| %s | %zu MB | %s | %.1f | %.0f%% |", side, mb, name.c_str(), measured.gbps,
              100 * measured.share);
  if (peak_gbps > 0) std::printf(" %.0f%% |", 100 * measured.gbps / peak_gbps);
  std::printf("\n");
  std::fflush(stdout);
}

template <typename T>
void run_cpu(const Settings& settings, spindle::Runtime& rt) {
  std::printf(
      "\n### CPU twins (%s), %u workers; share of a STREAM triad in the same run\n(the triad's own "
      "row pairs it with itself: its distance from 100%% is the noise)\n\n",
      settings.use_double ? "double" : "float", rt.num_workers());
  std::printf(
      "| side | array size | kernel | GB/s | share of triad |\n| --- | ---: | --- | ---: | ---: "
      "|\n");
  for (std::size_t mb = settings.min_mb; mb <= settings.max_mb; mb *= 4) {
    // Inside one task, so that the twins split across the workers as in real use.
    rt.task([&] {
        std::size_t n = mb * (std::size_t{1} << 20) / sizeof(T);
        Arrays<T> arrays(n, spindle::Location::host());
        std::vector<T> scalars(1);
        T* a = arrays.out.data();
        const T* b = arrays.g.data();
        const T* c = arrays.v.data();
        auto triad = [&] {
          spindle::detail::parallel_for(n, spindle::detail::kKernelGrain,
                                        [=](std::size_t lo, std::size_t hi) {
                                          for (std::size_t i = lo; i < hi; ++i)
                                            a[i] = b[i] + T(3) * c[i];
                                        });
        };
        double bytes = static_cast<double>(n * sizeof(T));
        print_row("cpu", mb, "STREAM triad (baseline)",
                  interleaved(wall_seconds, triad, 3 * bytes, triad, 3 * bytes, settings.reps));
        for (const Kernel& kernel : kernels_of<T, false>(arrays, n, scalars)) {
          auto run = [&] { kernel.run(spindle::Stream()); };
          print_row("cpu", mb, kernel.name,
                    interleaved(wall_seconds, triad, 3 * bytes, run, kernel.arrays_moved * bytes,
                                settings.reps));
        }
      })
        .options({.num_cpus = 0})
        .remote()
        .get();
  }
}

#ifdef SPINDLE_HAVE_CUDA
// A failed CUDA call ends the run: a row timed around a failed launch would be nonsense.
void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    std::fprintf(stderr, "kernels_benchmark: %s failed: %s, %s\n", what, cudaGetErrorName(error),
                 cudaGetErrorString(error));
    std::exit(1);
  }
}

int attribute(cudaDeviceAttr which, const char* what) {
  int value = 0;
  check(cudaDeviceGetAttribute(&value, which, 0), what);
  return value;
}

template <typename T>
void run_gpu(const Settings& settings) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int driver = 0;
  check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  // Double data rate: two transfers per memory clock over the whole bus.
  const double peak_gbps = 2.0 * attribute(cudaDevAttrMemoryClockRate, "memory clock") * 1e3 *
                           attribute(cudaDevAttrGlobalMemoryBusWidth, "bus width") / 8 / 1e9;
  const double l2_mb = attribute(cudaDevAttrL2CacheSize, "L2 size") / double(1 << 20);
  std::printf(
      "\n### CUDA kernels (%s) on GPU 0, %s, driver %d.%d; share of a device-to-device copy "
      "in the same run and of the nominal peak of %.0f GB/s\n(the copy's own row pairs it with "
      "itself: its distance from 100%% is the noise. The L2 holds %.0f MB: rows whose arrays "
      "fit in it together measure the cache and the launch, not the device memory.)\n\n",
      settings.use_double ? "double" : "float", prop.name, driver / 1000, driver % 1000 / 10,
      peak_gbps, l2_mb);
  std::printf(
      "| side | array size | kernel | GB/s | share of copy | share of peak |\n"
      "| --- | ---: | --- | ---: | ---: | ---: |\n");
  spindle::Stream stream = spindle::this_task::stream();
  cudaStream_t native = stream.native_handle();
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  Timer time_gpu = [&](const std::function<void()>& run) {
    check(cudaEventRecord(start, native), "cudaEventRecord");
    run();
    check(cudaEventRecord(stop, native), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "the timed work");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    return ms / 1e3;
  };
  for (std::size_t mb = settings.min_mb; mb <= settings.max_mb; mb *= 4) {
    std::size_t n = mb * (std::size_t{1} << 20) / sizeof(T);
    Arrays<T> arrays(n, spindle::Location::gpu(0));
    for (auto* buffer : {&arrays.p, &arrays.g, &arrays.m, &arrays.v, &arrays.out}) {
      buffer->write_on(stream);  // the fills ran on the shared stream; the timing runs here
    }
    std::vector<T> scalars(1);
    double bytes = static_cast<double>(n * sizeof(T));
    auto copy = [&] {
      check(cudaMemcpyAsync(arrays.out.data(), arrays.p.data(), n * sizeof(T),
                            cudaMemcpyDeviceToDevice, native),
            "cudaMemcpyAsync");
    };
    print_row("gpu", mb, "device-to-device copy (baseline)",
              interleaved(time_gpu, copy, 2 * bytes, copy, 2 * bytes, settings.reps), peak_gbps);
    for (const Kernel& kernel : kernels_of<T, true>(arrays, n, scalars)) {
      auto run = [&] { kernel.run(stream); };
      print_row(
          "gpu", mb, kernel.name,
          interleaved(time_gpu, copy, 2 * bytes, run, kernel.arrays_moved * bytes, settings.reps),
          peak_gbps);
    }
    stream.synchronize();
  }
  check(cudaEventDestroy(start), "cudaEventDestroy");
  check(cudaEventDestroy(stop), "cudaEventDestroy");
}
#endif

template <typename T>
void run(const Settings& settings) {
  if (settings.cpu) {
    spindle::Runtime rt;
    run_cpu<T>(settings, rt);
  }
  if (!settings.gpu) return;
#ifdef SPINDLE_HAVE_CUDA
  if (spindle::device_count() > 0) {
    run_gpu<T>(settings);
    return;
  }
  std::printf("\nGPU: skipped, no GPU (%s)\n", spindle::Topology::discover().gpu_note.c_str());
#else
  std::printf("\nGPU: skipped, spindle was built without CUDA\n");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings = parse(argc, argv);
  try {
    if (settings.use_double) {
      run<double>(settings);
    } else {
      run<float>(settings);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kernels_benchmark: %s\n", error.what());
    return 1;
  }
}
