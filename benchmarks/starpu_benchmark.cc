// Heterogeneous tasks against StarPU 1.3 (libstarpu-dev), CPU workers on both sides: many
// small vector-scaling tasks (the cost of one task), and a chain of scalings where each step
// depends on the previous one's data. spindle runs them as codelets on Buffers: each task
// returns a new buffer (spindle's values are immutable); StarPU's tasks scale their vector in
// place (STARPU_RW), its implicit data dependencies ordering the chain. Each system starts on
// first use, so a run filtered to one system never starts the other.
//
//   starpu_benchmark [--benchmark_filter=SmallScaleTasks_starpu] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <starpu.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ratio_reporter.hpp"
#include "spindle/spindle.hpp"

namespace {

constexpr int kTasks = 10'000;
constexpr unsigned kFloats = 1024;  // 4 KB per vector

// ---- spindle ----------------------------------------------------------------------------

spindle::Runtime& runtime() {
  static spindle::Runtime rt({.perf_model_file = ""});
  return rt;
}

spindle::Buffer<float> scaled(const spindle::Buffer<float>& x) {
  spindle::Buffer<float> y = spindle::Buffer<float>::uninitialized(x.size());
  y.copy_from(x);
  spindle::ops::scale(y, 1.0001f);
  return y;
}

auto scale_codelet() {
  using Body = spindle::Buffer<float> (*)(const spindle::Buffer<float>&);
  return runtime().task(spindle::codelet("scale", static_cast<Body>(scaled), static_cast<Body>(scaled)));
}

void SmallScaleTasks_spindle(benchmark::State& state) {
  auto scale = scale_codelet();
  std::vector<spindle::ObjectRef<spindle::Buffer<float>>> inputs, outputs(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    inputs.push_back(runtime().put(spindle::Buffer<float>(kFloats, spindle::Location::host())));
  }
  for (auto _ : state) {
    for (int i = 0; i < kTasks; ++i) outputs[i] = scale.remote(inputs[i]);
    for (const auto& output : outputs) benchmark::DoNotOptimize(output.get().data());
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

void Chain_spindle(benchmark::State& state) {
  auto scale = scale_codelet();
  auto first = runtime().put(spindle::Buffer<float>(kFloats, spindle::Location::host()));
  for (auto _ : state) {
    spindle::ObjectRef<spindle::Buffer<float>> step = first;
    for (int i = 0; i < kTasks; ++i) step = scale.remote(step);
    benchmark::DoNotOptimize(step.get().data());
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

// ---- StarPU -----------------------------------------------------------------------------

void scale_cpu(void* buffers[], void*) {
  auto* vector = static_cast<starpu_vector_interface*>(buffers[0]);
  auto* x = reinterpret_cast<float*>(STARPU_VECTOR_GET_PTR(vector));
  unsigned n = STARPU_VECTOR_GET_NX(vector);
  for (unsigned i = 0; i < n; ++i) x[i] *= 1.0001f;
}

struct StarPU {
  starpu_codelet scale{};
  StarPU() {
    setenv("STARPU_SILENT", "1", 0);
    if (int error = starpu_init(nullptr); error != 0) {
      std::fprintf(stderr, "starpu_init failed: %d\n", error);
      std::exit(1);
    }
    scale.cpu_funcs[0] = scale_cpu;
    scale.nbuffers = 1;
    scale.modes[0] = STARPU_RW;
    scale.name = "scale";
  }
  ~StarPU() { starpu_shutdown(); }
};

StarPU& starpu() {
  static StarPU instance;
  return instance;
}

struct Vectors {
  std::vector<std::vector<float>> data;
  std::vector<starpu_data_handle_t> handles;
  explicit Vectors(int count) : data(count, std::vector<float>(kFloats, 1.0f)), handles(count) {
    for (int i = 0; i < count; ++i) {
      starpu_vector_data_register(&handles[i], STARPU_MAIN_RAM,
                                  reinterpret_cast<uintptr_t>(data[i].data()), kFloats,
                                  sizeof(float));
    }
  }
  ~Vectors() {
    for (starpu_data_handle_t handle : handles) starpu_data_unregister(handle);
  }
};

void submit(starpu_data_handle_t handle) {
  if (int error = starpu_task_insert(&starpu().scale, STARPU_RW, handle, 0); error != 0) {
    std::fprintf(stderr, "starpu_task_insert failed: %d\n", error);
    std::exit(1);
  }
}

void SmallScaleTasks_starpu(benchmark::State& state) {
  (void)starpu();
  Vectors vectors(kTasks);
  for (auto _ : state) {
    for (starpu_data_handle_t handle : vectors.handles) submit(handle);
    starpu_task_wait_for_all();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

void Chain_starpu(benchmark::State& state) {
  (void)starpu();
  Vectors vector(1);
  for (auto _ : state) {
    for (int i = 0; i < kTasks; ++i) submit(vector.handles[0]);  // RW: each waits for the last
    starpu_task_wait_for_all();
  }
  state.SetItemsProcessed(state.iterations() * kTasks);
}

BENCHMARK(SmallScaleTasks_spindle)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(SmallScaleTasks_starpu)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(Chain_spindle)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(Chain_starpu)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  return spindle::bench::run_with_ratios(argc, argv, {"starpu"}, [] {
    std::printf("spindle against StarPU %d.%d: %d tasks on %u floats each\n",
                STARPU_MAJOR_VERSION, STARPU_MINOR_VERSION, kTasks, kFloats);
  });
}
