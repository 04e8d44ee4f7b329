// Cluster mode on Open MPI: the ranks, the transport of calls and results, and serving.
//
// Each rank polls for messages on one thread (rank 0: a thread of its own; the others: the
// main thread, inside Cluster's constructor). A call is one message from the caller's rank,
// its result or failure one message back; every rank sends from whichever thread makes the
// message (MPI_THREAD_MULTIPLE). Message framing is a trailer, so the payload in front of it
// is taken by shrinking the received string, not by copying it:
//   call:    arguments | header (cereal) | header size (u32)
//   result:  result | call id (u64)
//   failure: message | call id (u64)
//   stop:    empty (rank 0 to the others, when its Cluster ends)
#include "spindle/cluster.hpp"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>
#include <typeinfo>
#include <unordered_map>

#include "spindle/detail/thread_annotations.hpp"
#include "spindle/errors.hpp"
#include "spindle/resources.hpp"
#include "spindle/topology.hpp"

namespace spindle {

namespace {

enum Tag : int { kCall = 1, kResult = 2, kFailure = 3, kStop = 4 };

template <typename T>
void append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// A received message: its bytes are not zeroed first, since MPI writes them all.
struct Bytes {
  std::shared_ptr<char[]> data;
  std::size_t size = 0;
  [[nodiscard]] std::string_view view() const { return {data.get(), size}; }
};

template <typename T>
T take_back(Bytes& in) {
  if (in.size < sizeof(T)) throw Error("a cluster message too short to hold its trailer");
  T value;
  std::memcpy(&value, in.data.get() + in.size - sizeof value, sizeof value);
  in.size -= sizeof value;
  return value;
}

// What a call carries besides its arguments: its id and the options it runs with there.
struct CallHeader {
  std::uint64_t id = 0;
  std::string function;
  double num_cpus = 1;
  double num_gpus = 0;
  double memory = 0;
  std::map<std::string, double> resources;
  std::string name;
  std::uint64_t stack_bytes = 0;

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(id, function, num_cpus, num_gpus, memory, resources, name, stack_bytes);
  }
};

// A rank's totals as sent to every other one.
struct WireRank {
  double num_cpus = 0;
  double num_gpus = 0;
  double memory = 0;
  char host[64] = {};
};

bool launched_by_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(variable)) return true;
  }
  return false;
}

std::string host_name() {
  char name[64] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

RankInfo info_of(int rank, const ResourceSet& totals) {
  return {rank, host_name(), totals.cpu().to_double(), totals.gpu().to_double(),
          totals.memory().to_double()};
}

// The current exception, as a message that names its type.
std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& error) {
    return detail::type_name(typeid(error)) + ": " + error.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string(call) + " failed: " + text);
}

}  // namespace

struct Cluster::Impl final : detail::ClusterLink {
  int rank_ = 0;
  int size_ = 1;
  bool started_mpi = false;  // MPI_Init was ours, so MPI_Finalize is too
  bool in_mpi = false;
  std::vector<RankInfo> ranks;
  std::atomic<bool> stopping{false};
  std::thread poller;  // rank 0's

  // A call sent from here, waiting for its answer.
  struct Pending {
    Reply reply;
    std::string task;  // its name, for the error if it fails
  };

  detail::Mutex mutex;
  std::unordered_map<std::uint64_t, Pending> pending SPINDLE_GUARDED_BY(mutex);
  std::uint64_t next_id SPINDLE_GUARDED_BY(mutex) = 1;
  Runtime* serving SPINDLE_GUARDED_BY(mutex) = nullptr;
  std::atomic<std::uint64_t> turn{0};

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // A pinned call goes to its rank; another one to the ranks whose totals fit its demand, in
  // turn. Custom resources are known only here, so a demand for them stays here.
  int place(const TaskOptions& options) override {
    if (options.rank >= 0) return options.rank;
    if (!options.resources.empty()) return rank_;
    std::vector<int> fit;
    for (const RankInfo& info : ranks) {
      if (options.num_cpus <= info.num_cpus && options.num_gpus <= info.num_gpus &&
          options.memory <= info.memory) {
        fit.push_back(info.rank);
      }
    }
    if (fit.empty()) {
      std::ostringstream out;
      out << "task '" << options.name << "' asks for " << options.num_cpus << " cpus, "
          << options.num_gpus << " gpus and " << options.memory
          << " bytes of memory, which no rank holds:";
      for (const RankInfo& info : ranks) {
        out << " rank " << info.rank << " has " << info.num_cpus << " cpus, " << info.num_gpus
            << " gpus, " << info.memory << " bytes;";
      }
      throw InfeasibleError(out.str());
    }
    return fit[turn.fetch_add(1, std::memory_order_relaxed) % fit.size()];
  }

  void send(int to, const detail::RemoteFunction& function, const void* arguments,
            const TaskOptions& options, Reply reply) override {
    CallHeader header{0,
                      function.name(),
                      options.num_cpus,
                      options.num_gpus,
                      options.memory,
                      options.resources,
                      options.name,
                      options.stack_bytes};
    std::string task = options.name.empty() ? function.name() : options.name;
    {
      detail::MutexLock lock(mutex);
      header.id = next_id++;
      pending.emplace(header.id, Pending{std::move(reply), std::move(task)});
    }
    try {
      std::string message;
      function.encode_arguments(arguments, message);
      const std::size_t arguments_end = message.size();
      {
        detail::StringSink sink(message);
        std::ostream out(&sink);
        cereal::BinaryOutputArchive archive(out);
        archive(header);
      }
      append(message, static_cast<std::uint32_t>(message.size() - arguments_end));
      transmit(to, kCall, message);
    } catch (...) {
      detail::MutexLock lock(mutex);
      pending.erase(header.id);
      throw;
    }
  }

  void attach(Runtime& runtime) override {
    detail::MutexLock lock(mutex);
    if (!serving) serving = &runtime;
  }

  void detach(Runtime& runtime) override {
    detail::MutexLock lock(mutex);
    if (serving == &runtime) serving = nullptr;
  }

  void transmit(int to, int tag, const std::string& bytes) {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
      throw Error("a message of " + std::to_string(bytes.size()) + " bytes to rank " +
                  std::to_string(to) + ": a call's arguments or result may take at most " +
                  std::to_string(INT_MAX) + " bytes");
    }
    check_mpi(
        MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, to, tag, MPI_COMM_WORLD),
        "MPI_Send");
  }

  // Receives and handles messages until rank 0 says stop. Polls, yielding, and sleeps a little
  // once nothing has come for a while, so an idle rank costs next to no CPU.
  void poll_until_stopped() {
    unsigned idle = 0;
    while (!stopping.load(std::memory_order_acquire)) {
      int flag = 0;
      MPI_Message handle;
      MPI_Status status;
      check_mpi(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &handle, &status),
                "MPI_Improbe");
      if (!flag) {
        ++idle;
        if (idle < 200) {
          std::this_thread::yield();
        } else {
          std::this_thread::sleep_for(std::chrono::microseconds(idle < 5000 ? 20 : 500));
        }
        continue;
      }
      idle = 0;
      int count = 0;
      MPI_Get_count(&status, MPI_BYTE, &count);
      Bytes bytes{std::make_shared_for_overwrite<char[]>(static_cast<std::size_t>(count)),
                  static_cast<std::size_t>(count)};
      check_mpi(MPI_Mrecv(bytes.data.get(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE),
                "MPI_Mrecv");
      try {
        handle_message(status.MPI_SOURCE, status.MPI_TAG, std::move(bytes));
      } catch (const std::exception& error) {
        std::cerr << "spindle: rank " << rank_ << " could not handle a message from rank "
                  << status.MPI_SOURCE << ": " << error.what() << '\n';
      }
    }
  }

  void handle_message(int source, int tag, Bytes bytes) {
    switch (tag) {
      case kStop:
        stopping.store(true, std::memory_order_release);
        return;
      case kCall:
        serve(source, std::move(bytes));
        return;
      case kResult:
      case kFailure: {
        const auto id = take_back<std::uint64_t>(bytes);
        Pending call;
        {
          detail::MutexLock lock(mutex);
          auto found = pending.find(id);
          if (found == pending.end()) throw Error("a reply to no call made here");
          call = std::move(found->second);
          pending.erase(found);
        }
        if (tag == kResult) {
          call.reply(bytes.view(), nullptr);
        } else {
          call.reply(
              {}, std::make_exception_ptr(TaskError(
                      call.task, "task '" + call.task + "' failed on rank " +
                                     std::to_string(source) + ": " + std::string(bytes.view()))));
        }
        return;
      }
      default:
        throw Error("a message with tag " + std::to_string(tag) + ", which spindle never sends");
    }
  }

  // Runs a call sent here as a task of this rank's runtime, which replies when it is done.
  struct Serve {
    Impl* cluster;
    const detail::RemoteFunction* function;
    int source;
    std::uint64_t id;

    void operator()(const Bytes& arguments) const {
      std::string reply;
      int tag = kResult;
      try {
        reply = function->invoke(arguments.view());
      } catch (...) {
        reply = function->name() + " threw " + describe_current_exception();
        tag = kFailure;
      }
      append(reply, id);
      cluster->transmit(source, tag, reply);
    }
  };

  void serve(int source, Bytes message) {
    const auto header_size = take_back<std::uint32_t>(message);
    if (header_size > message.size) throw Error("a call whose header is longer than it");
    CallHeader header;
    {
      detail::ViewBuffer buffer(message.view().substr(message.size - header_size));
      std::istream in(&buffer);
      cereal::BinaryInputArchive archive(in);
      archive(header);
    }
    message.size -= header_size;
    auto refuse = [&](const std::string& why) {
      std::string reply = why;
      append(reply, header.id);
      transmit(source, kFailure, reply);
    };
    const detail::RemoteFunction* function = detail::find_remote_function(header.function);
    if (!function) {
      refuse("rank " + std::to_string(rank_) + " has no function registered as '" +
             header.function + "': every rank must run the same program, with SPINDLE_REMOTE(" +
             header.function + ")");
      return;
    }
    TaskOptions options;
    options.num_cpus = header.num_cpus;
    options.num_gpus = header.num_gpus;
    options.memory = header.memory;
    options.resources = header.resources;
    options.name = header.name.empty() ? function->name() : header.name;
    options.stack_bytes = header.stack_bytes;
    detail::MutexLock lock(mutex);  // the runtime is not destroyed meanwhile (detach waits)
    if (!serving) {
      lock.unlock();
      refuse("rank " + std::to_string(rank_) + " has no Runtime to run '" + header.function +
             "' on: make one after the Cluster, on every rank that should serve");
      return;
    }
    try {
      (void)serving->task(Serve{this, function, source, header.id})
          .options(options)
          .remote(std::move(message));
    } catch (const std::exception& error) {
      lock.unlock();
      refuse("rank " + std::to_string(rank_) + " cannot run '" + header.function +
             "': " + error.what());
    }
  }

  // Fails the calls still waiting for a reply (the cluster ends under them).
  void fail_pending(const std::string& why) {
    std::unordered_map<std::uint64_t, Pending> left;
    {
      detail::MutexLock lock(mutex);
      left.swap(pending);
    }
    for (auto& [id, call] : left) {
      call.reply({}, std::make_exception_ptr(
                         TaskError(call.task, "task '" + call.task + "' failed: " + why)));
    }
  }
};

Cluster::Cluster(int& argc, char**& argv, const RuntimeOptions& serving)
    : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  if (!launched_by_mpi()) {
    impl.ranks = {info_of(0, resource_totals(Topology::discover()))};
    return;
  }
  int initialized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  int provided = 0;
  if (!initialized) {
    check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    impl.started_mpi = true;
  } else {
    check_mpi(MPI_Query_thread(&provided), "MPI_Query_thread");
  }
  impl.in_mpi = true;
  if (provided < MPI_THREAD_MULTIPLE) {
    if (impl.started_mpi) MPI_Finalize();
    throw Error("MPI gives thread level " + std::to_string(provided) +
                "; spindle needs MPI_THREAD_MULTIPLE (" + std::to_string(MPI_THREAD_MULTIPLE) +
                "), as Debian's Open MPI provides");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &impl.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &impl.size_);
  detail::set_cluster_link(&impl);
  // A serving rank's runtime is made before the totals are shared: they are its totals.
  std::optional<Runtime> runtime;
  ResourceSet totals;
  try {
    if (impl.rank_ != 0) {
      runtime.emplace(serving);
      totals = runtime->total_resources();
    } else {
      totals = resource_totals(Topology::discover());
    }
  } catch (const std::exception& error) {
    std::cerr << "spindle: rank " << impl.rank_ << " cannot start: " << error.what() << '\n';
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  RankInfo mine = info_of(impl.rank_, totals);
  WireRank wire{mine.num_cpus, mine.num_gpus, mine.memory, {}};
  std::strncpy(wire.host, mine.host.c_str(), sizeof wire.host - 1);
  std::vector<WireRank> all(static_cast<std::size_t>(impl.size_));
  check_mpi(MPI_Allgather(&wire, sizeof wire, MPI_BYTE, all.data(), sizeof wire, MPI_BYTE,
                          MPI_COMM_WORLD),
            "MPI_Allgather");
  for (int rank = 0; rank < impl.size_; ++rank) {
    const WireRank& each = all[static_cast<std::size_t>(rank)];
    impl.ranks.push_back({rank, each.host, each.num_cpus, each.num_gpus, each.memory});
  }
  if (impl.rank_ == 0) {
    impl.poller = std::thread([&impl] { impl.poll_until_stopped(); });
    return;
  }
  // A serving rank: it runs what it is sent until rank 0 says stop, then leaves.
  impl.poll_until_stopped();
  runtime.reset();
  detail::set_cluster_link(nullptr);
  MPI_Finalize();  // whoever started MPI: this process ends here
  std::exit(0);
}

Cluster::~Cluster() {
  Impl& impl = *impl_;
  if (!impl.in_mpi) return;
  for (int rank = 1; rank < impl.size_; ++rank) {
    try {
      impl.transmit(rank, kStop, "");
    } catch (const std::exception& error) {
      std::cerr << "spindle: rank " << rank << " was not told to stop: " << error.what() << '\n';
    }
  }
  impl.stopping.store(true, std::memory_order_release);
  if (impl.poller.joinable()) impl.poller.join();
  impl.fail_pending("the cluster ended before the call's rank replied");
  detail::set_cluster_link(nullptr);
  if (impl.started_mpi) MPI_Finalize();
}

int Cluster::rank() const { return impl_->rank_; }
int Cluster::size() const { return impl_->size_; }
const std::vector<RankInfo>& Cluster::ranks() const { return impl_->ranks; }

int this_rank() {
  detail::ClusterLink* link = detail::cluster_link();
  return link ? link->rank() : 0;
}

}  // namespace spindle
