// Runtime, task specs, this_task and status printing.
#include "spindle/runtime.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <boost/fiber/operations.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "fibers/worker_algorithm.hpp"
#include "runtime/executor.hpp"
#include "runtime/scheduler.hpp"

namespace spindle {

struct Runtime::Impl {
  Topology topology;
  ResourceSet totals;
  std::unique_ptr<PerfModel> model;  // outlives the scheduler, which records into it
  std::string model_file;
  std::unique_ptr<detail::Scheduler> scheduler;
  std::unique_ptr<detail::Executor> executor;
};

namespace {

constexpr std::size_t kMinStackBytes = 16 * 1024;

void check_options(const RuntimeOptions& options) {
  if (options.num_workers && *options.num_workers == 0) {
    throw InvalidArgumentError("num_workers = 0: at least 1 worker is needed");
  }
  if (std::ranges::find(placement::kPolicies, options.placement) ==
      std::end(placement::kPolicies)) {
    throw InvalidArgumentError(
        "placement = " + std::to_string(static_cast<int>(options.placement)) +
        ": must be cpu_only, gpu_first, round_robin or earliest_finish");
  }
  if (options.stack_bytes < kMinStackBytes) {
    throw InvalidArgumentError("stack_bytes = " + std::to_string(options.stack_bytes) +
                               ": at least " + std::to_string(kMinStackBytes) + " is needed");
  }
  if (options.buffer_memory_limit == 0u) {
    throw InvalidArgumentError(
        "buffer_memory_limit = 0: give a number of bytes above 0, or leave it unset for no limit");
  }
}

bool timeline_enabled(const RuntimeOptions& options) {
  if (options.timeline) return true;
  const char* variable = std::getenv("SPINDLE_TIMELINE");
  return variable && *variable && std::string_view(variable) != "0";
}

}  // namespace

Runtime::Runtime() : Runtime(RuntimeOptions{}) {}

Runtime::Runtime(const RuntimeOptions& options) : impl_(std::make_unique<Impl>()) {
  check_options(options);
  impl_->topology = Topology::discover();
  std::map<std::string, double> resources = options.resources;
  if (detail::cluster_link()) resources.try_emplace(detail::node_resource(), 1.0);  // Ray's too
  impl_->totals = resource_totals(
      impl_->topology, {options.num_cpus, options.num_gpus, options.memory, std::move(resources)});
  impl_->scheduler = std::make_unique<detail::Scheduler>(
      impl_->totals, timeline_enabled(options) ? options.max_timeline_events : 0,
      options.buffer_memory_limit);
  unsigned workers = options.num_workers.value_or(
      std::max(1u, static_cast<unsigned>(impl_->topology.num_cores())));
  impl_->scheduler->set_workers(workers);
  impl_->scheduler->set_runtime(*this);
  impl_->model = std::make_unique<PerfModel>(PerfModel::machine_key(impl_->topology));
  impl_->model_file = options.perf_model_file.value_or(PerfModel::default_path(impl_->topology));
  if (!impl_->model_file.empty()) {
    std::string warning = impl_->model->load(impl_->model_file);
    if (!warning.empty()) std::cerr << "spindle: " << warning << '\n';
  }
  impl_->scheduler->set_placement(options.placement, *impl_->model);
  impl_->executor = std::make_unique<detail::Executor>(*impl_->scheduler, impl_->topology, workers,
                                                       options.pin_workers, options.stack_bytes);
  if (detail::ClusterLink* link = detail::cluster_link()) link->attach(*this);
}

Runtime::~Runtime() {
  if (detail::ClusterLink* link = detail::cluster_link()) link->detach(*this);
  // Stopping wakes idle workers through Boost.Fiber, which needs the calling thread's fiber
  // state; a runtime destroyed at exit (a static) outlives the main thread's. A thread of
  // its own always has it.
  std::thread([this] { impl_->scheduler->stop(); }).join();
  impl_->executor->join();
  impl_->scheduler->cancel_leftovers();
  if (!impl_->model_file.empty() && impl_->scheduler->model_updated()) {
    try {
      impl_->model->save(impl_->model_file);
    } catch (const std::exception& error) {
      std::cerr << "spindle: the performance model was not saved: " << error.what() << '\n';
    }
  }
}

PerfModel& Runtime::perf_model() { return *impl_->model; }

void Runtime::cancel_object(detail::ObjectStateBase& object) {
  // The record is held here, so that it outlives this call even if its task finishes now.
  const std::shared_ptr<detail::TaskRecord> task = object.producer();
  if (!task || task->phase.load(std::memory_order_acquire) == detail::TaskRecord::Phase::finished) {
    return;
  }
  if (task->is_actor_call()) {
    task->actor->cancel(*task);
  } else {
    task->scheduler().cancel(*task);
  }
}

namespace {

void check_recording(const detail::Scheduler& scheduler) {
  if (!scheduler.recording_timeline()) {
    throw Error(
        "timeline: recording is off; turn it on with RuntimeOptions::timeline = true "
        "or SPINDLE_TIMELINE=1 in the environment");
  }
}

}  // namespace

void Runtime::timeline(std::ostream& out) const {
  check_recording(*impl_->scheduler);
  impl_->scheduler->write_timeline(out);
}

void Runtime::timeline(const std::string& path) const {
  check_recording(*impl_->scheduler);
  std::ofstream out(path);
  if (out) impl_->scheduler->write_timeline(out);
  if (!out) throw Error("timeline: cannot write '" + path + "': " + std::strerror(errno));
}

RuntimeStatus Runtime::status() const {
  RuntimeStatus status = impl_->scheduler->status();
  status.workers = num_workers();
  return status;
}

const Topology& Runtime::topology() const { return impl_->topology; }
const ResourceSet& Runtime::total_resources() const { return impl_->totals; }
unsigned Runtime::num_workers() const { return impl_->executor->size(); }

std::string RuntimeStatus::to_string() const {
  std::ostringstream out;
  out << "Resources (used / total)\n";
  for (const auto& [name, amount] : total.amounts()) {
    Quantity used = amount - available.get(name);
    if (name == ResourceSet::kMemory) {
      out << "  " << format_bytes(static_cast<std::uint64_t>(used.whole_part())) << " / "
          << format_bytes(static_cast<std::uint64_t>(amount.whole_part())) << " memory\n";
    } else {
      out << "  " << used.to_string() << " / " << amount.to_string() << ' ' << name << '\n';
    }
  }
  out << "Tasks (" << workers << " workers)\n"
      << "  waiting for dependencies: " << waiting_for_dependencies << '\n'
      << "  waiting for resources: " << waiting_for_resources << '\n'
      << "  running: " << running << '\n'
      << "  blocked in get: " << blocked << '\n'
      << "  finished: " << finished << ", failed: " << failed << ", cancelled: " << cancelled
      << '\n';
  out << "Actors: " << actors << " alive; calls finished: " << actor_calls_finished
      << ", failed: " << actor_calls_failed << '\n';
  out << "Pending demands\n";
  if (pending_demands.empty()) out << "  (none)\n";
  for (const auto& [demand, count] : pending_demands) {
    out << "  " << demand.to_string() << ": " << count << (count == 1 ? " task\n" : " tasks\n");
  }
  return out.str();
}

namespace detail {

Scheduler& scheduler_of(Runtime& runtime) { return *runtime.impl_->scheduler; }

void submit(Runtime& runtime, std::shared_ptr<TaskRecord> task) {
  scheduler_of(runtime).submit(std::move(task));
}

namespace {

std::shared_ptr<TaskSpec> build_spec(Scheduler& scheduler, const TaskOptions& options,
                                     const std::string& name, std::string_view kind, bool codelet,
                                     DeviceKind device_kind) {
  ResourceSet demand =
      ResourceSet::demand(options.num_cpus, options.num_gpus, options.memory, options.resources);
  auto spec = std::make_shared<TaskSpec>();
  spec->name = name;
  spec->max_retries = options.max_retries;
  spec->retry_exceptions = options.retry_exceptions;
  spec->codelet = codelet;
  spec->device_kind = device_kind;
  spec->stack_bytes = options.stack_bytes;
  try {
    spec->request = scheduler.request_for(demand);
  } catch (const InfeasibleError& error) {
    spec->infeasible = std::string(kind) + " '" + spec->name + "': " + error.what();
    return spec;
  } catch (const InvalidArgumentError& error) {
    // A resource unknown here: in a cluster another rank may hold it, so placement decides,
    // and a call that stays here is refused at submit. A codelet never leaves its rank.
    if (!cluster_link() || codelet) throw;
    spec->infeasible = std::string(kind) + " '" + spec->name + "': " + error.what();
    return spec;
  }
  if (!demand.cpu().is_zero()) {
    spec->cpu_request = scheduler.request_for(ResourceSet().set(ResourceSet::kCpu, demand.cpu()));
  }
  return spec;
}

}  // namespace

std::shared_ptr<const TaskSpec> make_task_spec(Runtime& runtime, const TaskOptions& options,
                                               std::string default_name, std::string_view kind,
                                               bool codelet) {
  check_limit("max_retries", options.max_retries);
  check_rank(options.rank, codelet);
  if (options.stack_bytes != 0 && options.stack_bytes < kMinStackBytes) {
    throw InvalidArgumentError("stack_bytes = " + std::to_string(options.stack_bytes) +
                               ": 0 (the runtime's) or at least " + std::to_string(kMinStackBytes) +
                               " is needed");
  }
  if (options.device && !codelet) {
    throw InvalidArgumentError(std::string("device = ") + to_string(*options.device) +
                               ": only a codelet (spindle::codelet, with CPU and GPU "
                               "implementations) takes a device; other tasks ask for num_gpus");
  }
  std::string name = options.name.empty() ? std::move(default_name) : options.name;
  Scheduler& scheduler = scheduler_of(runtime);
  if (!codelet) {
    std::shared_ptr<TaskSpec> spec =
        build_spec(scheduler, options, name, kind, false, DeviceKind::cpu);
    if (cluster_link() || options.rank >= 0) spec->options = std::make_shared<TaskOptions>(options);
    return spec;
  }
  // A codelet: its CPU implementation holds no GPU; its GPU one a whole GPU unless num_gpus
  // asks for a share.
  TaskOptions on_cpu = options, on_gpu = options;
  on_cpu.num_gpus = 0;
  if (on_gpu.num_gpus == 0) on_gpu.num_gpus = 1;
  if (options.device == DeviceKind::cpu) {
    return build_spec(scheduler, on_cpu, name, kind, true, DeviceKind::cpu);
  }
  std::shared_ptr<TaskSpec> gpu = build_spec(scheduler, on_gpu, name, kind, true, DeviceKind::gpu);
  if (options.device == DeviceKind::gpu) {
    if (!gpu->infeasible.empty()) gpu->infeasible += " (device = gpu pins it to a GPU)";
    return gpu;
  }
  std::shared_ptr<TaskSpec> cpu = build_spec(scheduler, on_cpu, name, kind, true, DeviceKind::cpu);
  // GPUs that cannot hold the GPU implementation leave the CPU one.
  if (gpu->infeasible.empty()) cpu->gpu_variant = std::move(gpu);
  return cpu;
}

void check_limit(std::string_view option, int value) {
  if (value < -1) {
    throw InvalidArgumentError(std::string(option) + " = " + std::to_string(value) +
                               ": must be -1 (no limit) or more");
  }
}

std::string type_name(std::type_index type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  return status == 0 && demangled ? demangled.get() : type.name();
}

}  // namespace detail

namespace this_task {

bool in_task() { return detail::current_task() != nullptr; }

Runtime& runtime() {
  detail::TaskRecord* task = detail::current_task();
  if (!task) {
    throw Error(
        "this_task::runtime() is called outside a task: only a task (or an actor's "
        "method) has a runtime running it");
  }
  return *task->scheduler().runtime();
}

std::uint64_t id() {
  detail::TaskRecord* task = detail::current_task();
  return task ? task->id : 0;
}

std::string name() {
  detail::TaskRecord* task = detail::current_task();
  return task ? task->spec->name : std::string();
}

bool cancelled() {
  detail::TaskRecord* task = detail::current_task();
  return task && (task->cancel_requested.load() || task->scheduler().stopping());
}

DeviceKind device_kind() {
  detail::TaskRecord* task = detail::current_task();
  return task ? task->spec->device_kind : DeviceKind::cpu;
}

ResourceSet resources() {
  detail::TaskRecord* task = detail::current_task();
  return task ? task->spec->request->demand() : ResourceSet();
}

std::vector<int> gpu_ids() {
  detail::TaskRecord* task = detail::current_task();
  return task && task->allocation ? task->allocation->gpu_ids() : std::vector<int>();
}

void sleep_until(std::chrono::steady_clock::time_point deadline) {
  boost::this_fiber::sleep_until(deadline);
}

void yield() { detail::yield_fiber(); }

}  // namespace this_task
}  // namespace spindle
