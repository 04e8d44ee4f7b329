// Cluster mode on Open MPI: the ranks, the transport of calls and results, and serving.
//
// Each rank polls for messages on one thread (rank 0: a thread of its own; the others: the
// main thread, inside Cluster's constructor). A call is one message from the caller's rank,
// its result or failure one message back; every rank sends from whichever thread makes the
// message (MPI_THREAD_MULTIPLE). Message framing is a trailer, so the payload in front of it
// is taken by shrinking the received string, not by copying it:
//   call:    arguments | header (cereal) | header size (u32) | blocks
//   result:  result | call id (u64) | blocks
//   failure: message | call id (u64) | blocks
//   stop:    blocks (rank 0 to the others, when its Cluster ends)
// where blocks is: each block's size (u64) | their tag (i32) | their count (u32). The blocks
// themselves (large arrays in the values, detail::Contiguous) follow the message as messages
// of their own, sent from the values' memory on a second communicator with a tag that no other
// message of the sender's has in use, and are received straight into the values decoded from
// it: no copy but MPI's own. The receiving thread takes them right after the message; what its
// decoding did not take (it failed, or never began) is received and dropped, so the sender
// never waits for them forever.
#include "spindle/cluster.hpp"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <typeinfo>
#include <unordered_map>

#include "cluster/common.hpp"
#include "spindle/detail/thread_annotations.hpp"
#include "spindle/errors.hpp"
#include "spindle/resources.hpp"
#include "spindle/topology.hpp"

namespace spindle {

// What a call or an actor's creation sends of its options: all but where it runs (and a
// codelet's device, which never leaves its rank). Found by cereal in the types' namespace.
template <typename Archive>
void serialize(Archive& archive, TaskOptions& options) {
  archive(options.num_cpus, options.num_gpus, options.memory, options.resources,
          options.max_retries, options.retry_exceptions, options.name, options.stack_bytes);
}

template <typename Archive>
void serialize(Archive& archive, ActorOptions& options) {
  archive(options.num_cpus, options.num_gpus, options.memory, options.resources,
          options.max_concurrency, options.max_restarts, options.max_task_retries,
          options.max_pending_calls, options.crash_on_exception, options.name,
          options.get_if_exists, options.stack_bytes);
}

// A rank's status, as Cluster::status() gathers it.
template <typename Archive>
void save(Archive& archive, const ResourceSet& resources) {
  std::map<std::string, std::int64_t> units;
  for (const auto& [name, amount] : resources.amounts()) units[name] = amount.units();
  archive(units);
}

template <typename Archive>
void load(Archive& archive, ResourceSet& resources) {
  std::map<std::string, std::int64_t> units;
  archive(units);
  resources = ResourceSet();
  for (const auto& [name, amount] : units) resources.set(name, Quantity::from_units(amount));
}

template <typename Archive>
void serialize(Archive& archive, RuntimeStatus& status) {
  archive(status.total, status.available, status.waiting_for_dependencies,
          status.waiting_for_resources, status.running, status.blocked, status.finished,
          status.failed, status.cancelled, status.actors, status.actor_calls_finished,
          status.actor_calls_failed, status.pending_demands, status.workers);
}

namespace {

enum Tag : int {
  kCall = 1,
  kResult = 2,
  kFailure = 3,
  kStop = 4,
  kCreateActor = 5,
  kActorCall = 6,
  kReleaseActor = 7,
  kKillActor = 8,
  kStopped = 9,  // a serving rank to rank 0: its runtime is gone, nothing more will come
  kName = 10,     // to rank 0: claim or find an actor's name
  kSettleName = 11,  // to rank 0: the actor that claimed a name was made, or its name is free
  kMakeGroup = 12,   // rank 0 to a member: join a collective group
  // The deadlock check across ranks (rank 0 asks, the others answer); not counted as traffic.
  kProbe = 13,       // rank 0 to the others: are you still?
  kProbeReply = 14,  // the answer
  kDeadlock = 15,    // rank 0 to the others: fail your blocked gets, if you are still as you were
};

// Whether a message counts in a rank's traffic, which the deadlock check compares.
constexpr bool counted(int tag) { return tag < kProbe; }

// The first byte of a failure: which error the caller raises.
enum class Failed : char { task = 'T', actor_died = 'A', cancelled = 'C' };

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

// A block travels in pieces of at most this many bytes: MPI counts in int, and a block that
// nobody takes is received, piece by piece, into this much scratch memory.
constexpr std::size_t kPieceBytes = std::size_t{16} << 20;

// The blocks that came with a message, received from `source` in the order they were sent.
class MpiBlocks final : public detail::BlockSource {
 public:
  MpiBlocks(MPI_Comm comm, int source) : comm_(comm), source_(source) {}

  // Takes the blocks' trailer off `message`.
  void read(Bytes& message) {
    const auto count = take_back<std::uint32_t>(message);
    if (count == 0) return;
    tag_ = take_back<std::int32_t>(message);
    if (count > message.size / sizeof(std::uint64_t)) {
      throw Error("a cluster message announcing more blocks than it can list");
    }
    sizes_.resize(count);
    for (std::size_t i = count; i-- > 0;) sizes_[i] = take_back<std::uint64_t>(message);
  }

  [[nodiscard]] std::size_t next_size() const override {
    if (next_ == sizes_.size())
      throw Error("a cluster message decoded into more blocks than it has");
    return static_cast<std::size_t>(sizes_[next_]);
  }

  void receive(void* into, std::size_t bytes) override {
    if (bytes != next_size()) throw Error("a block received into memory of another size");
    ++next_;
    receive_pieces(static_cast<char*>(into), bytes, false);
  }

  [[nodiscard]] bool empty() const { return sizes_.empty(); }

  // Receives and drops the blocks nobody took.
  void drain() {
    if (next_ == sizes_.size()) return;
    std::unique_ptr<char[]> scratch(new char[kPieceBytes]);
    for (; next_ < sizes_.size(); ++next_) {
      receive_pieces(scratch.get(), static_cast<std::size_t>(sizes_[next_]), true);
    }
  }

 private:
  void receive_pieces(char* into, std::size_t bytes, bool scratch) {
    for (std::size_t done = 0; done < bytes;) {
      const std::size_t piece = std::min(kPieceBytes, bytes - done);
      const int code = MPI_Recv(scratch ? into : into + done, static_cast<int>(piece), MPI_BYTE,
                                source_, tag_, comm_, MPI_STATUS_IGNORE);
      if (code != MPI_SUCCESS) throw Error("MPI_Recv of a block failed");
      done += piece;
    }
  }

  MPI_Comm comm_;
  int source_;
  int tag_ = 0;
  std::vector<std::uint64_t> sizes_;
  std::size_t next_ = 0;
};

// What a call carries besides its arguments: its id and the options it runs with there.
struct CallHeader {
  std::uint64_t id = 0;
  std::string function;
  TaskOptions options;  // as serialize() below sends them

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(id, function, options);
  }
};

// An actor to create: the reply to its creation, its id, its class and its options.
struct ActorHeader {
  std::uint64_t call = 0;
  std::uint64_t actor = 0;
  std::string type;
  ActorOptions options;  // as serialize() below sends them

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(call, actor, type, options);
  }
};

// A call of an actor's method. The actor is known there by (owner, actor); owner -1 stands
// for the sender.
struct ActorCallHeader {
  std::uint64_t call = 0;
  std::uint64_t actor = 0;
  std::string method;
  std::int32_t owner = -1;

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(call, actor, method, owner);
  }
};

// A release or a kill.
struct ActorOnlyHeader {
  std::uint64_t actor = 0;
  bool no_restart = true;
  std::int32_t owner = -1;

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(actor, no_restart, owner);
  }
};

// A claim of a name (answered once it is the claimer's, or with the live actor that has it),
// or a look-up (answered with the live actor, if any).
struct NameHeader {
  std::uint64_t call = 0;
  bool find = false;
  std::string name;
  detail::NamedAddress address;  // the claimer's actor

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(call, find, name, address);
  }
};

// Whether the actor that claimed a name was made, or its name is free.
struct SettleHeader {
  std::string name;
  detail::NamedAddress address;
  bool live = false;

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(name, address, live);
  }
};

// A collective group to join: its name, members and the tag that makes it.
struct GroupHeader {
  std::string name;
  std::vector<int> ranks;
  int tag = 0;

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(name, ranks, tag);
  }
};

// What a rank answers the deadlock check with: whether its runtime is still (nothing there
// can move until a message comes) and nothing else moves there, whether a task blocks in
// get, what blocks, and the messages it has sent and handled.
struct StillHeader {
  std::uint64_t wave = 0;
  bool still = true;
  bool waits = false;
  std::string described;
  std::uint64_t sent = 0;
  std::uint64_t handled = 0;

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(wave, still, waits, described, sent, handled);
  }
};

// Rank 0 to a rank: the cluster is deadlocked, as `message` says, if the rank has sent and
// handled what it had when it last answered.
struct DeadlockHeader {
  std::string message;
  std::uint64_t sent = 0;
  std::uint64_t handled = 0;

  template <typename Archive>
  void serialize(Archive& archive) {
    archive(message, sent, handled);
  }
};

// Collective operations of tasks under way on this rank's group threads: a task waiting for
// one waits for other ranks, through MPI, not through messages the deadlock check counts.
std::atomic<int> collectives_under_way{0};

// The answer to a NameHeader: a live actor, or none (then a claim was granted).
std::string encode_name_answer(const std::optional<detail::NamedAddress>& live) {
  std::string out;
  detail::StringSink sink(out);
  std::ostream stream(&sink);
  cereal::BinaryOutputArchive archive(stream);
  archive(live.has_value(), live.value_or(detail::NamedAddress{}));
  return out;
}

std::optional<detail::NamedAddress> decode_name_answer(std::string_view bytes) {
  detail::ViewBuffer buffer(bytes);
  std::istream stream(&buffer);
  cereal::BinaryInputArchive archive(stream);
  bool found = false;
  detail::NamedAddress address;
  archive(found, address);
  if (!found) return std::nullopt;
  return address;
}

// Rank 0's directory of the actors named across the cluster. A claim reserves a name until
// its actor is made (then it is listed, and found) or not; a claim or look-up of a reserved
// name waits for that outcome, so that two ranks asking get_if_exists at once share one
// actor, and a look-up right after a creation finds it.
class Directory {
 public:
  // Given the live actor that has the name, or none: the claim is granted, or nothing found.
  using Answer = std::function<void(std::optional<detail::NamedAddress>)>;

  void claim(const std::string& name, const detail::NamedAddress& address, Answer answer) {
    std::optional<detail::NamedAddress> live;
    {
      detail::MutexLock lock(mutex_);
      auto [entry, fresh] = names_.try_emplace(name);
      if (fresh) {
        entry->second.address = address;
      } else if (entry->second.live) {
        live = entry->second.address;
      } else {
        entry->second.waiting.push_back({address, std::move(answer), false});
        return;
      }
    }
    answer(live);
  }

  void settle(const std::string& name, const detail::NamedAddress& address, bool live) {
    std::vector<std::pair<Answer, std::optional<detail::NamedAddress>>> answers;
    {
      detail::MutexLock lock(mutex_);
      auto entry = names_.find(name);
      if (entry == names_.end() || !entry->second.address.same_actor(address)) return;
      Entry& named = entry->second;
      if (live && !named.live) {  // found by all that wait: claims and look-ups
        named.live = true;
        for (Waiting& waiting : named.waiting) {
          answers.emplace_back(std::move(waiting.answer), address);
        }
        named.waiting.clear();
      } else if (!live) {  // look-ups find nothing; the next claim waiting gets the name
        std::deque<Waiting> claims;
        for (Waiting& waiting : named.waiting) {
          if (waiting.find) {
            answers.emplace_back(std::move(waiting.answer), std::nullopt);
          } else {
            claims.push_back(std::move(waiting));
          }
        }
        if (claims.empty()) {
          names_.erase(entry);
        } else {
          named.address = claims.front().address;
          named.live = false;
          answers.emplace_back(std::move(claims.front().answer), std::nullopt);
          claims.pop_front();
          named.waiting = std::move(claims);
        }
      }
    }
    for (auto& [answer, found] : answers) answer(found);  // each catches its own failures
  }

  // Answers with the live actor called `name`, or none; for one being made, once it is (or
  // is not).
  void find(const std::string& name, Answer answer) {
    std::optional<detail::NamedAddress> live;
    {
      detail::MutexLock lock(mutex_);
      auto entry = names_.find(name);
      if (entry != names_.end() && !entry->second.live) {
        entry->second.waiting.push_back({{}, std::move(answer), true});
        return;
      }
      if (entry != names_.end()) live = entry->second.address;
    }
    answer(live);
  }

 private:
  struct Waiting {
    detail::NamedAddress address;  // a claim's
    Answer answer;
    bool find = false;  // a look-up, not a claim
  };
  struct Entry {
    detail::NamedAddress address;
    bool live = false;  // made; else reserved by a claim
    std::deque<Waiting> waiting;
  };
  detail::Mutex mutex_;
  std::map<std::string, Entry> names_ SPINDLE_GUARDED_BY(mutex_);
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
  return detail::rank_info(rank, host_name(), totals);
}

// Which error a failure is, for the caller to raise the same kind.
Failed kind_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ActorDiedError&) {
    return Failed::actor_died;
  } catch (const CancelledError&) {
    return Failed::cancelled;
  } catch (...) {
    return Failed::task;
  }
}

// An exception, as a message that names its type.
std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
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

// Every rank's info, by rank, from each rank's own.
std::vector<RankInfo> share(const RankInfo& mine, MPI_Comm comm, int size) {
  std::string bytes;
  {
    detail::StringSink sink(bytes);
    std::ostream out(&sink);
    cereal::BinaryOutputArchive archive(out);
    archive(mine.host, mine.num_cpus, mine.num_gpus, mine.memory, mine.resources);
  }
  std::vector<int> sizes(static_cast<std::size_t>(size));
  const int my_size = static_cast<int>(bytes.size());
  check_mpi(MPI_Allgather(&my_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm), "MPI_Allgather");
  std::vector<int> offsets(sizes.size());
  int total = 0;
  for (std::size_t rank = 0; rank < sizes.size(); ++rank) {
    offsets[rank] = total;
    total += sizes[rank];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  check_mpi(MPI_Allgatherv(bytes.data(), my_size, MPI_BYTE, all.data(), sizes.data(),
                           offsets.data(), MPI_BYTE, comm),
            "MPI_Allgatherv");
  std::vector<RankInfo> ranks;
  for (int rank = 0; rank < size; ++rank) {
    const auto at = static_cast<std::size_t>(rank);
    detail::ViewBuffer buffer(std::string_view(all).substr(static_cast<std::size_t>(offsets[at]),
                                                           static_cast<std::size_t>(sizes[at])));
    std::istream in(&buffer);
    cereal::BinaryInputArchive archive(in);
    RankInfo info;
    info.rank = rank;
    archive(info.host, info.num_cpus, info.num_gpus, info.memory, info.resources);
    ranks.push_back(std::move(info));
  }
  return ranks;
}

MPI_Datatype mpi_type(detail::CollectiveType type) {
  switch (type) {
    case detail::CollectiveType::f32:
      return MPI_FLOAT;
    case detail::CollectiveType::f64:
      return MPI_DOUBLE;
    case detail::CollectiveType::i32:
      return MPI_INT32_T;
    case detail::CollectiveType::i64:
      return MPI_INT64_T;
    case detail::CollectiveType::u64:
      break;
  }
  return MPI_UINT64_T;
}

// A group's operations, on the group's own communicator, run for a task by a thread of the
// group's while the task's fiber waits (its CPU free meanwhile): a worker never blocks in MPI,
// so a member waiting for the others never holds up the tasks they may be waiting for. Small
// ones run as Open MPI's nonblocking collectives, polled; large ones as its blocking
// collectives, about twice as fast here as their nonblocking forms. But MPI's blocking calls
// spin, so where some machine's ranks outnumber its cores (mpirun --oversubscribe) large ones
// are polled too: spinning ranks would take the cores the others compute on (measured: 1.5-1.8
// s polled against 2.4-2.6 s blocking for distributed_parameter_server's rounds, 4 ranks on 2
// cores).
constexpr std::size_t kBlockingFromBytes = 64 << 10;

struct MpiGroup final : CollectiveGroup::State {
  MPI_Comm comm = MPI_COMM_NULL;  // never freed: MPI_Finalize ends it with the Cluster
  bool oversubscribed = false;    // more ranks on some machine than it has cores

  // The thread that runs this member's large operations, made on first use; it lives until
  // the process ends (groups are never destroyed).
  struct Helper {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::function<void()>> jobs;
    std::thread thread;
  };
  mutable std::once_flag helper_made;
  mutable Helper* helper = nullptr;

  void run(detail::CollectiveOp op, detail::CollectiveType type, const void* in, void* out,
           std::size_t count, int root, ReduceOp reduce) const override {
    if (!detail::cluster_link()) {
      throw Error("collective group '" + name + "': the spindle::Cluster has ended");
    }
    if (count > static_cast<std::size_t>(INT_MAX)) {
      throw InvalidArgumentError("collective group '" + name + "': " + std::to_string(count) +
                                 " elements; MPI counts at most " + std::to_string(INT_MAX));
    }
    const MPI_Datatype datatype = mpi_type(type);
    const MPI_Op combine = reduce == ReduceOp::product ? MPI_PROD
                           : reduce == ReduceOp::min   ? MPI_MIN
                           : reduce == ReduceOp::max   ? MPI_MAX
                                                       : MPI_SUM;
    int element_bytes = 0;
    MPI_Type_size(datatype, &element_bytes);
    const int size = static_cast<int>(ranks.size());
    std::vector<int> counts, offsets;
    if (op == detail::CollectiveOp::reduce_scatter || op == detail::CollectiveOp::allgather) {
      for (int m = 0; m < size; ++m) {
        const auto [first, last] = detail::block_of(count, size, m);
        offsets.push_back(static_cast<int>(first));
        counts.push_back(static_cast<int>(last - first));
      }
    }
    auto start = [&, n = static_cast<int>(count)](MPI_Request* request) {
      switch (op) {
        case detail::CollectiveOp::allreduce:
          return request ? MPI_Iallreduce(in == out ? MPI_IN_PLACE : in, out, n, datatype,
                                          combine, comm, request)
                         : MPI_Allreduce(in == out ? MPI_IN_PLACE : in, out, n, datatype,
                                         combine, comm);
        case detail::CollectiveOp::reduce_scatter:
          return request ? MPI_Ireduce_scatter(in, out, counts.data(), datatype, combine, comm,
                                               request)
                         : MPI_Reduce_scatter(in, out, counts.data(), datatype, combine, comm);
        case detail::CollectiveOp::allgather: {
          const auto m = static_cast<std::size_t>(member);
          const int mine = counts[m];
          // This member's block already in place in `out` (CollectiveGroup::run allows that).
          const void* send = in == static_cast<const char*>(out) +
                                       static_cast<std::size_t>(offsets[m]) *
                                           static_cast<std::size_t>(element_bytes)
                                 ? MPI_IN_PLACE
                                 : in;
          return request ? MPI_Iallgatherv(send, mine, datatype, out, counts.data(),
                                           offsets.data(), datatype, comm, request)
                         : MPI_Allgatherv(send, mine, datatype, out, counts.data(),
                                          offsets.data(), datatype, comm);
        }
        case detail::CollectiveOp::broadcast:
          return request ? MPI_Ibcast(out, n, datatype, root, comm, request)
                         : MPI_Bcast(out, n, datatype, root, comm);
        case detail::CollectiveOp::barrier:
          break;
      }
      return request ? MPI_Ibarrier(comm, request) : MPI_Barrier(comm);
    };
    // Every member picks the same form for an operation (MPI does not match a blocking
    // collective with a nonblocking one): by its size, and `oversubscribed`, which every rank
    // agreed on.
    const bool blocking =
        count * static_cast<std::size_t>(element_bytes) >= kBlockingFromBytes && !oversubscribed;
    auto complete = [&] {
      if (blocking) {
        check_mpi(start(nullptr), "a collective operation");
        return;
      }
      MPI_Request request = MPI_REQUEST_NULL;
      check_mpi(start(&request), "a collective operation");
      poll(request);
    };
    if (!this_task::in_task()) {  // a thread of the program's own waits itself
      complete();
      return;
    }
    // A task waits for the group's thread to run it: its fiber suspends and its CPU is free
    // meanwhile, for tasks that other members may be waiting for.
    auto done = std::make_shared<detail::ObjectState<void>>();
    collectives_under_way.fetch_add(1);
    post([&complete, done] {
      try {
        complete();
        done->set_value();
      } catch (...) {
        done->fail(std::current_exception());
      }
      collectives_under_way.fetch_sub(1);  // once the task it wakes is no longer still
    });
    ObjectRef<void>(done).get();  // `complete` and the arrays live until the job has run
  }

  void post(std::function<void()> job) const {
    std::call_once(helper_made, [this] {
      helper = new Helper;  // never deleted: it serves until the process ends
      helper->thread = std::thread([h = helper] {
        for (;;) {
          std::function<void()> next;
          {
            std::unique_lock lock(h->mutex);
            h->wake.wait(lock, [h] { return !h->jobs.empty(); });
            next = std::move(h->jobs.front());
            h->jobs.pop_front();
          }
          next();
        }
      });
      helper->thread.detach();
    });
    {
      std::lock_guard lock(helper->mutex);
      helper->jobs.push_back(std::move(job));
    }
    helper->wake.notify_one();
  }

  // Polls until `request` is done, yielding the core between polls and sleeping a little
  // once it has waited a while: a thread waiting in MPI_Wait would spin.
  static void poll(MPI_Request& request) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      int done = 0;
      check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) return;
      if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(200)) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      } else {
        std::this_thread::yield();
      }
    }
  }
};

}  // namespace

struct Cluster::Impl final : detail::ClusterLink {
  int rank_ = 0;
  int size_ = 1;
  bool started_mpi = false;  // MPI_Init was ours, so MPI_Finalize is too
  bool in_mpi = false;
  std::vector<RankInfo> ranks;
  MPI_Comm comm = MPI_COMM_NULL;         // spindle's own: the program's messages never reach it
  MPI_Comm blocks_comm = MPI_COMM_NULL;  // the blocks that follow messages
  int block_tags = 1;                    // tags 0..block_tags-1 serve blocks, in turn
  std::atomic<std::uint64_t> next_block_tag{0};
  std::atomic<bool> stopping{false};
  int stopped = 0;     // rank 0: serving ranks that said kStopped (the poller's)
  std::thread poller;  // rank 0's
  // Messages this rank sent (from when it begins to) and handled (once done with), the
  // deadlock check's own not counted: equal sums over the ranks mean none is in flight.
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> handled{0};
  // Rank 0's deadlock check (its poller's): waves of kProbe to every rank. Two waves in a row
  // that find every rank still, with the same traffic on each and none in flight, and a task
  // blocked in get somewhere, find a deadlock: no rank can move without a message, and none
  // is on its way. Each rank then fails its blocked gets, if it is still as it answered.
  struct DeadlockCheck {
    std::uint64_t wave = 0;
    bool out = false;                            // this wave's probes are out
    std::vector<std::optional<StillHeader>> answers;  // this wave's, by rank
    std::vector<StillHeader> last;               // the previous wave's, if all were still
    std::chrono::steady_clock::time_point next;  // when the next wave may start
  } check;
  // Held while the check sends, and while rank 0's Cluster marks it stopping: no probe or
  // report reaches a rank after its kStop, when it no longer receives.
  std::mutex check_sends;

  // A call sent from here, waiting for its answer.
  struct Pending {
    Reply reply;
    std::string task;  // its name, for the error if it fails
  };

  detail::Mutex mutex;
  std::unordered_map<std::uint64_t, Pending> pending SPINDLE_GUARDED_BY(mutex);
  std::uint64_t next_id SPINDLE_GUARDED_BY(mutex) = 1;
  Runtime* serving SPINDLE_GUARDED_BY(mutex) = nullptr;
  std::vector<Runtime*> runtimes SPINDLE_GUARDED_BY(mutex);  // every one made here, serving too
  // Actors this rank serves for others, by (creator's rank, id there), and local actors it
  // shows to other ranks (by their names), by (this rank, id).
  struct Hosted {
    detail::AnyActor handle;
    const detail::RemoteActorClass* type = nullptr;
    std::string refused;                        // why it could not be created
    std::string name;                           // its registered name, if any
    std::weak_ptr<detail::ActorCore> exposed;  // a local one: its handle pointer
  };
  std::map<std::pair<int, std::uint64_t>, Hosted> hosted SPINDLE_GUARDED_BY(mutex);
  // The ids of local actors shown to other ranks, by core; swept of ended ones as it grows.
  std::unordered_map<const detail::ActorCore*, std::uint64_t> exposed_ids
      SPINDLE_GUARDED_BY(mutex);
  std::size_t swept_at SPINDLE_GUARDED_BY(mutex) = 0;
  std::atomic<std::uint64_t> next_actor{1};
  std::atomic<std::uint64_t> turn{0};

  // Names: rank 0 keeps the directory. Each rank's name messages leave in order under
  // `names_order`: what settle_name queued (under `settled_mutex`, which it may take under
  // the scheduler's lock) goes before the next claim or look-up.
  Directory directory;
  detail::Mutex names_order;
  detail::Mutex settled_mutex;
  std::vector<SettleHeader> settled SPINDLE_GUARDED_BY(settled_mutex);
  std::atomic<bool> any_settled{false};

  // Collective groups: made on groups_comm, one at a time (rank 0 sends each member the
  // groups in the order it makes them, so that every member joins them in that order).
  MPI_Comm groups_comm = MPI_COMM_NULL;
  bool oversubscribed = false;  // more ranks on this machine than it has cores
  detail::Mutex making_groups;
  int groups_made SPINDLE_GUARDED_BY(making_groups) = 0;
  std::set<std::string> group_names SPINDLE_GUARDED_BY(making_groups);  // rank 0's

  // Joins a group with the other members: returns once all have.
  void join_group(const GroupHeader& header) {
    auto group = std::make_shared<MpiGroup>();
    group->name = header.name;
    group->ranks = header.ranks;
    group->member = static_cast<int>(
        std::find(header.ranks.begin(), header.ranks.end(), rank_) - header.ranks.begin());
    group->oversubscribed = oversubscribed;
    MPI_Group all = MPI_GROUP_NULL, members = MPI_GROUP_NULL;
    check_mpi(MPI_Comm_group(groups_comm, &all), "MPI_Comm_group");
    check_mpi(MPI_Group_incl(all, static_cast<int>(header.ranks.size()), header.ranks.data(),
                             &members),
              "MPI_Group_incl");
    const int code = MPI_Comm_create_group(groups_comm, members, header.tag, &group->comm);
    MPI_Group_free(&members);
    MPI_Group_free(&all);
    check_mpi(code, "MPI_Comm_create_group");
    detail::add_group(std::move(group));
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // A pinned call goes to its rank; another one to the ranks whose totals fit its demand, in
  // turn.
  int place(const TaskOptions& options) override {
    auto fits = [&](const RankInfo& info) {
      if (options.num_cpus > info.num_cpus || options.num_gpus > info.num_gpus ||
          options.memory > info.memory) {
        return false;
      }
      for (const auto& [name, amount] : options.resources) {
        auto held = info.resources.find(name);
        if (amount > 0 && (held == info.resources.end() || held->second < amount)) return false;
      }
      return true;
    };
    auto refuse = [&](const std::vector<RankInfo>& holders, const char* which) {
      std::ostringstream out;
      out << "task '" << options.name << "' asks for " << options.num_cpus << " cpus, "
          << options.num_gpus << " gpus, " << options.memory << " bytes of memory";
      for (const auto& [name, amount] : options.resources) out << ", " << amount << ' ' << name;
      out << ", which " << which << " holds:";
      for (const RankInfo& info : holders) {
        out << " rank " << info.rank << " has " << info.num_cpus << " cpus, " << info.num_gpus
            << " gpus, " << info.memory << " bytes";
        for (const auto& [name, amount] : info.resources) out << ", " << amount << ' ' << name;
        out << ';';
      }
      throw InfeasibleError(out.str());
    };
    if (options.rank >= 0) {
      const RankInfo& pinned = ranks[static_cast<std::size_t>(options.rank)];
      if (!fits(pinned)) refuse({pinned}, "the rank it is pinned to never");
      return options.rank;
    }
    std::vector<int> fit;
    for (const RankInfo& info : ranks) {
      if (fits(info)) fit.push_back(info.rank);
    }
    if (fit.empty()) refuse(ranks, "no rank");
    return fit[turn.fetch_add(1, std::memory_order_relaxed) % fit.size()];
  }

  // Waits for the answer to a call: its id.
  std::uint64_t expect(Reply reply, std::string task) {
    detail::MutexLock lock(mutex);
    const std::uint64_t id = next_id++;
    pending.emplace(id, Pending{std::move(reply), std::move(task)});
    return id;
  }

  void forget(std::uint64_t id) {
    detail::MutexLock lock(mutex);
    pending.erase(id);
  }

  // Sends `message` (a payload) with `header` behind it.
  template <typename Header>
  void request(int to, int tag, detail::Encoded message, const Header& header) {
    const std::size_t payload_end = message.bytes.size();
    {
      detail::StringSink sink(message.bytes);
      std::ostream out(&sink);
      cereal::BinaryOutputArchive archive(out);
      archive(header);
    }
    append(message.bytes, static_cast<std::uint32_t>(message.bytes.size() - payload_end));
    transmit(to, tag, std::move(message.bytes), message.blocks);
  }

  // Sends a request that expects answer `id`; `encode` appends its payload. A failure to
  // encode or to send forgets the answer.
  template <typename Header, typename Encode>
  void ask(int to, int tag, const Header& header, std::uint64_t id, Encode encode) {
    try {
      detail::Encoded message;
      encode(message);
      request(to, tag, std::move(message), header);
    } catch (...) {
      forget(id);
      throw;
    }
  }

  template <typename Header>
  static Header read_header(Bytes& message) {
    const auto header_size = take_back<std::uint32_t>(message);
    if (header_size > message.size) throw Error("a request whose header is longer than it");
    Header header;
    {
      detail::ViewBuffer buffer(message.view().substr(message.size - header_size));
      std::istream in(&buffer);
      cereal::BinaryInputArchive archive(in);
      archive(header);
    }
    message.size -= header_size;
    return header;
  }

  void send(int to, const detail::RemoteFunction& function, const void* arguments,
            const TaskOptions& options, Reply reply) override {
    CallHeader header{0, function.name(), options};
    header.id = expect(std::move(reply), options.name.empty() ? function.name() : options.name);
    ask(to, kCall, header, header.id,
        [&](detail::Encoded& out) { function.encode_arguments(arguments, out); });
  }

  std::uint64_t next_actor_id() override { return next_actor.fetch_add(1); }

  void create_actor(int to, std::uint64_t id, const detail::RemoteActorClass& type,
                    const void* arguments, const ActorOptions& options, Reply created) override {
    ActorHeader header{0, id, type.name(), options};
    header.call =
        expect(std::move(created),
               "actor '" + (options.name.empty() ? type.name() : options.name) + "' (created)");
    ask(to, kCreateActor, header, header.call,
        [&](detail::Encoded& out) { type.encode_arguments(arguments, out); });
  }

  void call_actor(const detail::RemoteActor& actor, const detail::RemoteMethod& method,
                  const void* arguments, Reply reply) override {
    ActorCallHeader header{expect(std::move(reply), method.name()), actor.id, method.name(),
                           actor.owner};
    ask(actor.rank, kActorCall, header, header.call,
        [&](detail::Encoded& out) { method.encode_arguments(arguments, out); });
  }

  std::optional<detail::NamedAddress> claim_name(const std::string& name,
                                                 const detail::NamedAddress& address) override {
    return ask_directory(false, name, address);
  }

  std::optional<detail::NamedAddress> find_name(const std::string& name) override {
    return ask_directory(true, name, {});
  }

  // Claims or finds `name` at rank 0, after this rank's settled names; waits for the answer.
  std::optional<detail::NamedAddress> ask_directory(bool find, const std::string& name,
                                                    const detail::NamedAddress& address) {
    using Answer = std::optional<detail::NamedAddress>;
    auto state = std::make_shared<detail::ObjectState<Answer>>();
    {
      detail::MutexLock order(names_order);
      send_settled_locked();
      if (rank_ == 0) {
        auto answer = [state](Answer live) { state->set_value(std::move(live)); };
        if (find) {
          directory.find(name, answer);
        } else {
          directory.claim(name, address, answer);
        }
      } else {
        auto reply = [state](detail::Received answer, std::exception_ptr failure) {
          if (failure) {
            state->fail(failure);
            return;
          }
          try {
            state->set_value(decode_name_answer(answer.bytes));
          } catch (...) {
            state->fail(std::current_exception());
          }
        };
        NameHeader header{expect(std::move(reply), "actor name '" + name + "'"), find, name,
                          address};
        ask(0, kName, header, header.call, [](detail::Encoded&) {});
      }
    }
    return ObjectRef<Answer>(std::move(state)).get();
  }

  void settle_name(const std::string& name, const detail::NamedAddress& address,
                   bool live) noexcept override {
    try {
      detail::MutexLock lock(settled_mutex);
      settled.push_back({name, address, live});
      any_settled.store(true, std::memory_order_release);
    } catch (const std::exception& error) {
      std::cerr << "spindle: rank " << rank_ << " could not tell rank 0 about actor name '"
                << name << "': " << error.what() << '\n';
    }
  }

  // Sends what settle_name queued to rank 0 (applies it there), in order; a local actor
  // whose name is free is no longer shown to other ranks.
  void send_settled_locked() SPINDLE_REQUIRES(names_order) {
    if (!any_settled.load(std::memory_order_acquire)) return;
    std::vector<SettleHeader> sending;
    {
      detail::MutexLock lock(settled_mutex);
      sending.swap(settled);
      any_settled.store(false, std::memory_order_relaxed);
    }
    for (const SettleHeader& each : sending) {
      if (!each.live && each.address.host == rank_ && each.address.owner == rank_) {
        Hosted ending;  // destroyed after the lock
        detail::MutexLock lock(mutex);
        auto found = hosted.find({rank_, each.address.actor});
        if (found != hosted.end()) {
          ending = std::move(found->second);
          hosted.erase(found);
        }
      }
      try {
        if (rank_ == 0) {
          directory.settle(each.name, each.address, each.live);
        } else {
          request(0, kSettleName, {}, each);
        }
      } catch (const std::exception& error) {
        std::cerr << "spindle: rank " << rank_ << " could not tell rank 0 about actor name '"
                  << each.name << "': " << error.what() << '\n';
      }
    }
  }

  void send_settled() {
    if (!any_settled.load(std::memory_order_acquire)) return;
    detail::MutexLock order(names_order);
    send_settled_locked();
  }

  void expose(std::uint64_t id, std::weak_ptr<detail::ActorCore> handle,
              const detail::RemoteActorClass& type) override {
    detail::MutexLock lock(mutex);
    expose_locked(id, std::move(handle), type);
  }

  void expose_locked(std::uint64_t id, std::weak_ptr<detail::ActorCore> handle,
                     const detail::RemoteActorClass& type) SPINDLE_REQUIRES(mutex) {
    const detail::ActorCore* core = handle.lock().get();
    Hosted& entry = hosted[{rank_, id}];
    entry.type = &type;
    entry.exposed = std::move(handle);
    if (core) exposed_ids[core] = id;
  }

  std::uint64_t exposed_id(const std::shared_ptr<detail::ActorCore>& handle,
                           const detail::RemoteActorClass& type) override {
    detail::MutexLock lock(mutex);
    auto known = exposed_ids.find(handle.get());
    if (known != exposed_ids.end()) {
      auto entry = hosted.find({rank_, known->second});
      // Shown still (an actor that ended leaves its entry until the next sweep).
      if (entry != hosted.end() && !entry->second.exposed.expired()) return known->second;
    }
    if (exposed_ids.size() >= 2 * swept_at + 64) sweep_exposed_locked();
    const std::uint64_t id = next_actor_id();
    expose_locked(id, handle, type);
    return id;
  }

  std::shared_ptr<detail::ActorCore> exposed_actor(std::uint64_t id) override {
    detail::MutexLock lock(mutex);
    auto entry = hosted.find({rank_, id});
    return entry == hosted.end() ? nullptr : entry->second.exposed.lock();
  }

  // Forgets the local actors shown to other ranks that have ended.
  void sweep_exposed_locked() SPINDLE_REQUIRES(mutex) {
    std::erase_if(exposed_ids, [&](const auto& known) SPINDLE_REQUIRES(mutex) {
      auto entry = hosted.find({rank_, known.second});
      if (entry == hosted.end()) return true;
      if (!entry->second.exposed.expired()) return false;
      hosted.erase(entry);  // holds nothing: a weak pointer
      return true;
    });
    swept_at = exposed_ids.size();
  }

  void release_actor(int to, std::uint64_t actor) noexcept override {
    try {
      request(to, kReleaseActor, {}, ActorOnlyHeader{actor, true});
    } catch (const std::exception& error) {
      std::cerr << "spindle: rank " << to << " was not told that actor #" << actor
                << " may end: " << error.what() << '\n';
    }
  }

  void kill_actor(const detail::RemoteActor& actor, bool no_restart) override {
    request(actor.rank, kKillActor, {}, ActorOnlyHeader{actor.id, no_restart, actor.owner});
  }

  void attach(Runtime& runtime) override {
    detail::MutexLock lock(mutex);
    if (!serving) serving = &runtime;
    runtimes.push_back(&runtime);
  }

  void detach(Runtime& runtime) override {
    std::map<std::pair<int, std::uint64_t>, Hosted> ending;  // destroyed after the lock
    detail::MutexLock lock(mutex);
    std::erase(runtimes, &runtime);
    if (serving != &runtime) return;
    serving = nullptr;
    ending.swap(hosted);
    exposed_ids.clear();
    lock.unlock();
  }

  // Sends `bytes` with the blocks' trailer, then the blocks.
  void transmit(int to, int tag, std::string bytes,
                const std::vector<detail::Encoded::Block>& blocks = {}) {
    std::int32_t blocks_tag = 0;
    if (!blocks.empty()) {
      for (const auto& block : blocks) append(bytes, static_cast<std::uint64_t>(block.size));
      blocks_tag =
          static_cast<std::int32_t>(next_block_tag.fetch_add(1, std::memory_order_relaxed) %
                                    static_cast<std::uint64_t>(block_tags));
      append(bytes, blocks_tag);
    }
    append(bytes, static_cast<std::uint32_t>(blocks.size()));
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
      throw Error("a message of " + std::to_string(bytes.size()) + " bytes to rank " +
                  std::to_string(to) + ": a call's arguments or result may take at most " +
                  std::to_string(INT_MAX) +
                  " bytes besides their large arrays (a std::vector, std::string or Buffer of " +
                  "numbers, which travel apart)");
    }
    if (counted(tag)) sent.fetch_add(1);  // from before it leaves, unless it never does
    try {
      check_mpi(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, to, tag, comm),
                "MPI_Send");
    } catch (...) {
      if (counted(tag)) sent.fetch_sub(1);
      throw;
    }
    for (const auto& block : blocks) {
      const char* data = static_cast<const char*>(block.data);
      for (std::size_t done = 0; done < block.size;) {
        const std::size_t piece = std::min(kPieceBytes, block.size - done);
        check_mpi(
            MPI_Send(data + done, static_cast<int>(piece), MPI_BYTE, to, blocks_tag, blocks_comm),
            "MPI_Send");
        done += piece;
      }
    }
  }

  // Rank 0 goes on after its Cluster asked the others to stop, until each says it stopped: the
  // answers of the calls they were still running get here.
  [[nodiscard]] bool done_polling() const {
    if (!stopping.load(std::memory_order_acquire)) return false;
    return rank_ != 0 || stopped == size_ - 1;
  }

  // Receives and handles messages until told to stop. Polls, yielding, and sleeps a little
  // once nothing has come for a while, so an idle rank costs next to no CPU.
  void poll_until_stopped() {
    unsigned idle = 0;
    while (!done_polling()) {
      send_settled();
      int flag = 0;
      MPI_Message handle;
      MPI_Status status;
      check_mpi(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &handle, &status),
                "MPI_Improbe");
      if (!flag) {
        ++idle;
        if (rank_ == 0 && idle >= 200) probe_stillness();
        if (idle < 200) {
          std::this_thread::yield();
        } else {
          std::this_thread::sleep_for(std::chrono::microseconds(idle < 5000 ? 20 : 500));
        }
        continue;
      }
      if (counted(status.MPI_TAG)) idle = 0;  // the deadlock check's probes leave ranks idle
      int count = 0;
      MPI_Get_count(&status, MPI_BYTE, &count);
      Bytes bytes;
      try {
        bytes = {std::make_shared_for_overwrite<char[]>(static_cast<std::size_t>(count)),
                 static_cast<std::size_t>(count)};
      } catch (const std::bad_alloc&) {  // the message cannot be skipped: the job ends
        std::cerr << "spindle: rank " << rank_ << " cannot receive a message of " << count
                  << " bytes from rank " << status.MPI_SOURCE << ": out of memory\n";
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      check_mpi(MPI_Mrecv(bytes.data.get(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE),
                "MPI_Mrecv");
      MpiBlocks blocks(blocks_comm, status.MPI_SOURCE);
      try {
        blocks.read(bytes);
        handle_message(status.MPI_SOURCE, status.MPI_TAG, std::move(bytes), blocks);
      } catch (...) {
        std::cerr << "spindle: rank " << rank_ << " could not handle a message from rank "
                  << status.MPI_SOURCE << ": " << describe(std::current_exception()) << '\n';
      }
      try {
        blocks.drain();
      } catch (const std::exception& error) {  // the sender would wait for ever: the job ends
        std::cerr << "spindle: rank " << rank_ << " cannot take the blocks rank "
                  << status.MPI_SOURCE << " sent: " << error.what() << '\n';
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      if (counted(status.MPI_TAG)) handled.fetch_add(1);
    }
  }

  // This rank for the deadlock check: read between two reads of its traffic, so that a
  // message sent or handled meanwhile makes it not still.
  StillHeader stillness_here(std::uint64_t wave) {
    StillHeader here;
    here.wave = wave;
    here.sent = sent.load();
    here.handled = handled.load();
    {
      detail::MutexLock lock(mutex);
      for (Runtime* runtime : runtimes) {
        detail::Stillness its = detail::stillness(*runtime);
        here.still = here.still && its.still;
        here.waits = here.waits || its.waits;
        if (its.described.empty()) continue;
        here.described += (here.described.empty() ? "" : " Another runtime: ") + its.described;
      }
    }
    here.still = here.still && collectives_under_way.load() == 0 &&
                 sent.load() == here.sent && handled.load() == here.handled;
    return here;
  }

  // Rank 0's poller, idle: starts a wave of the deadlock check when one is due: at once after
  // a wave that found all still with a task blocked, 50 ms after one that found some rank
  // moving, and 500 ms after one that found the whole cluster idle. Alone, a rank has only
  // its own check.
  void probe_stillness() {
    const auto now = std::chrono::steady_clock::now();
    if (size_ == 1 || check.out || now < check.next) return;
    check.next = now + std::chrono::milliseconds(50);
    check.answers.assign(static_cast<std::size_t>(size_), std::nullopt);
    check.answers[0] = stillness_here(++check.wave);
    if (!check.answers[0]->still) {  // rank 0 moves: no need to ask the others
      check.last.clear();
      return;
    }
    StillHeader probe;
    probe.wave = check.wave;
    std::lock_guard lock(check_sends);
    if (stopping.load(std::memory_order_acquire)) return;
    for (int rank = 1; rank < size_; ++rank) request(rank, kProbe, {}, probe);
    check.out = true;
  }

  // Rank 0: an answer to this wave; once all have come, weighs them.
  void take_stillness(int source, const StillHeader& answer) {
    if (!check.out || answer.wave != check.wave) return;
    check.answers[static_cast<std::size_t>(source)] = answer;
    if (std::ranges::all_of(check.answers, [](const auto& a) { return a.has_value(); })) {
      weigh_stillness();
    }
  }

  void weigh_stillness() {
    check.out = false;
    std::vector<StillHeader> answers;
    for (auto& answer : check.answers) answers.push_back(std::move(*answer));
    std::uint64_t sent_sum = 0, handled_sum = 0;
    bool still = true, waits = false;
    for (const StillHeader& answer : answers) {
      still = still && answer.still;
      waits = waits || answer.waits;
      sent_sum += answer.sent;
      handled_sum += answer.handled;
    }
    if (!still || sent_sum != handled_sum || !waits) {
      check.last.clear();
      if (still && !waits) {  // an idle cluster: looked at less often
        check.next = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
      }
      return;
    }
    const bool same_as_last =
        check.last.size() == answers.size() &&
        std::ranges::equal(answers, check.last, [](const StillHeader& a, const StillHeader& b) {
          return a.sent == b.sent && a.handled == b.handled;
        });
    if (!same_as_last) {  // once more, at once, to see that nothing moved in between
      check.last = std::move(answers);
      check.next = std::chrono::steady_clock::now();
      return;
    }
    check.last.clear();
    std::string message =
        "deadlock across the cluster: no task on any rank can make progress and no message is "
        "on its way, so the blocked gets fail instead of hanging.";
    for (std::size_t rank = 0; rank < answers.size(); ++rank) {
      if (answers[rank].described.empty()) continue;
      message += " Rank " + std::to_string(rank) + ": " + answers[rank].described;
    }
    std::lock_guard lock(check_sends);
    if (stopping.load(std::memory_order_acquire)) return;
    // Rank 0 looks at itself once more, as each rank will when told: if it moved since its
    // answer (another thread of its sent something), nobody is told.
    const StillHeader now = stillness_here(check.wave);
    if (!now.still || now.sent != answers[0].sent || now.handled != answers[0].handled) return;
    for (int rank = 1; rank < size_; ++rank) {
      const StillHeader& answer = answers[static_cast<std::size_t>(rank)];
      if (!answer.waits) continue;
      request(rank, kDeadlock, {}, DeadlockHeader{message, answer.sent, answer.handled});
    }
    // Last: the tasks it fails here may answer other ranks, which must not move them first.
    if (answers[0].waits) report_deadlock({message, answers[0].sent, answers[0].handled});
  }

  // Fails this rank's blocked gets with the cluster's deadlock, if it has sent and handled
  // nothing since it answered (then it is still as it was).
  void report_deadlock(const DeadlockHeader& header) {
    if (sent.load() != header.sent || handled.load() != header.handled) return;
    detail::MutexLock lock(mutex);
    for (Runtime* runtime : runtimes) detail::fail_cluster_deadlock(*runtime, header.message);
  }

  void handle_message(int source, int tag, Bytes bytes, MpiBlocks& blocks) {
    switch (tag) {
      case kStop:
        stopping.store(true, std::memory_order_release);
        return;
      case kStopped:
        ++stopped;
        return;
      case kCall:
        serve(source, std::move(bytes), blocks);
        return;
      case kCreateActor:
        host_actor(source, std::move(bytes), blocks);
        return;
      case kActorCall:
        call_hosted(source, std::move(bytes), blocks);
        return;
      case kReleaseActor:
      case kKillActor:
        end_hosted(source, tag, std::move(bytes));
        return;
      case kName:
        answer_name(source, std::move(bytes));
        return;
      case kMakeGroup: {
        const auto header = read_header<GroupHeader>(bytes);
        join_group(header);
        return;
      }
      case kSettleName: {
        const auto header = read_header<SettleHeader>(bytes);
        directory.settle(header.name, header.address, header.live);
        return;
      }
      case kProbe:
        request(0, kProbeReply, {}, stillness_here(read_header<StillHeader>(bytes).wave));
        return;
      case kProbeReply:
        take_stillness(source, read_header<StillHeader>(bytes));
        return;
      case kDeadlock:
        report_deadlock(read_header<DeadlockHeader>(bytes));
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
          call.reply({bytes.view(), &blocks}, nullptr);
          return;
        }
        if (bytes.size == 0) throw Error("a failure without its kind");
        const auto kind = static_cast<Failed>(bytes.data[0]);
        const std::string message = "task '" + call.task + "' failed on rank " +
                                    std::to_string(source) + ": " +
                                    std::string(bytes.view().substr(1));
        std::exception_ptr error;
        if (kind == Failed::actor_died) {
          error = std::make_exception_ptr(ActorDiedError(message));
        } else if (kind == Failed::cancelled) {
          error = std::make_exception_ptr(CancelledError(message));
        } else {
          error = std::make_exception_ptr(TaskError(call.task, message));
        }
        call.reply({}, error);
        return;
      }
      default:
        throw Error("a message with tag " + std::to_string(tag) + ", which spindle never sends");
    }
  }

  // What answers request `id` of rank `source`: its result, or `what` failed with the error.
  detail::RemoteAnswer answer(int source, std::uint64_t id, std::string what) {
    return [this, source, id, what = std::move(what)](const detail::Encoded& result,
                                                      std::exception_ptr failure) {
      std::string reply;
      int tag = kResult;
      if (failure) {
        reply = static_cast<char>(kind_of(failure)) + what + " threw " + describe(failure);
        tag = kFailure;
      } else {
        reply.reserve(result.bytes.size() + 64);
        reply.assign(result.bytes);
      }
      append(reply, id);
      try {
        transmit(source, tag, std::move(reply),
                 failure ? std::vector<detail::Encoded::Block>{} : result.blocks);
      } catch (const std::exception& error) {  // too large: the caller is told, not left waiting
        refuse(source, id, what + "'s answer could not be sent: " + error.what());
      }
    };
  }

  // Rank 0: answers a claim or look-up of a name from `source`.
  void answer_name(int source, Bytes message) {
    const auto header = read_header<NameHeader>(message);
    send_settled();  // what this rank freed before the asker could know goes first
    // Never throws: a claim granted but not told is given up, so the name is not held for ever.
    auto answer = [this, source, header](std::optional<detail::NamedAddress> live) noexcept {
      try {
        std::string reply = encode_name_answer(live);
        append(reply, header.call);
        transmit(source, kResult, std::move(reply));
      } catch (const std::exception& error) {
        std::cerr << "spindle: rank 0 could not answer rank " << source << " about actor name '"
                  << header.name << "': " << error.what() << '\n';
        if (!header.find && !live) directory.settle(header.name, header.address, false);
      }
    };
    if (header.find) {
      directory.find(header.name, answer);
    } else {
      directory.claim(header.name, header.address, answer);
    }
  }

  // Fails request `id` of rank `source` with `why`, as an error of `kind`.
  void refuse(int source, std::uint64_t id, std::string why,
              Failed kind = Failed::task) noexcept {
    try {
      why.insert(why.begin(), static_cast<char>(kind));
      append(why, id);
      transmit(source, kFailure, why);
    } catch (const std::exception& error) {
      std::cerr << "spindle: rank " << rank_ << " could not answer rank " << source << ": "
                << error.what() << '\n';
    }
  }

  std::string no_runtime(const std::string& what) const {
    return "rank " + std::to_string(rank_) + " has no Runtime to run " + what +
           " on: make one after the Cluster, on every rank that should serve";
  }

  // Decodes a request's arguments with `decode`; on failure says why in `refused` and returns
  // null.
  template <typename Decode>
  std::shared_ptr<void> decode_or_refuse(const std::string& what, std::string& refused,
                                         Decode decode) const {
    try {
      return decode();
    } catch (...) {
      refused = "rank " + std::to_string(rank_) + " cannot decode the arguments of " + what + ": " +
                describe(std::current_exception());
      return nullptr;
    }
  }

  // Runs a call sent here as a task of this rank's runtime, which answers when it is done.
  struct Serve {
    const detail::RemoteFunction* function;
    std::shared_ptr<void> arguments;  // decoded where their blocks arrived, or
    Bytes encoded;                    // decoded here, in the task, when they came without any
    detail::RemoteAnswer done;

    void operator()() const {
      detail::Encoded result;
      try {
        std::shared_ptr<void> values =
            arguments ? arguments : function->decode_arguments({encoded.view(), nullptr});
        result = function->invoke(values.get());
      } catch (...) {
        done({}, std::current_exception());
        return;
      }
      done(result, nullptr);
    }
  };

  void serve(int source, Bytes message, MpiBlocks& blocks) {
    const auto header = read_header<CallHeader>(message);
    const detail::RemoteFunction* function = detail::find_remote_function(header.function);
    if (!function) {
      refuse(source, header.id,
             "rank " + std::to_string(rank_) + " has no function registered as '" +
                 header.function +
                 "': every rank must run the same program, with "
                 "SPINDLE_REMOTE(" +
                 header.function + ")");
      return;
    }
    TaskOptions options = header.options;  // retries are made by the caller
    options.max_retries = 0;
    options.retry_exceptions = false;
    if (options.name.empty()) options.name = function->name();
    // Arguments with blocks are decoded here, as the blocks arrive; others in the call's task,
    // so that this thread goes on receiving.
    std::shared_ptr<void> arguments;
    if (!blocks.empty()) {
      std::string refused;
      arguments = decode_or_refuse("'" + header.function + "'", refused, [&] {
        return function->decode_arguments({message.view(), &blocks});
      });
      if (!arguments) {
        refuse(source, header.id, std::move(refused));
        return;
      }
      message = {};
    }
    detail::MutexLock lock(mutex);  // the runtime is not destroyed meanwhile (detach waits)
    if (!serving) {
      lock.unlock();
      refuse(source, header.id, no_runtime("'" + header.function + "'"));
      return;
    }
    try {
      (void)serving
          ->task(Serve{function, std::move(arguments), std::move(message),
                       answer(source, header.id, function->name())})
          .options(options)
          .remote();
    } catch (...) {
      lock.unlock();
      refuse(source, header.id,
             "rank " + std::to_string(rank_) + " cannot run '" + header.function +
                 "': " + describe(std::current_exception()));
    }
  }

  // Creates an actor another rank asked for; its ready() answers the request. Its arguments
  // are decoded (their blocks received) before the lock is taken.
  void host_actor(int source, Bytes message, MpiBlocks& blocks) {
    const auto header = read_header<ActorHeader>(message);
    const std::string what =
        "actor '" + (header.options.name.empty() ? header.type : header.options.name) + "'";
    const detail::RemoteActorClass* type = detail::find_remote_actor(header.type);
    std::string refused;
    std::shared_ptr<void> arguments;
    if (!type) {
      refused = "rank " + std::to_string(rank_) + " has no actor class registered as '" +
                header.type +
                "': every rank must run the same program, with "
                "SPINDLE_REMOTE_ACTOR(" +
                header.type + ", ...)";
    } else {
      arguments = decode_or_refuse(what, refused, [&] {
        return type->decode_arguments({message.view(), &blocks});
      });
    }
    detail::MutexLock lock(mutex);
    Hosted& entry = hosted[{source, header.actor}];
    if (refused.empty() && !serving) refused = no_runtime(what);
    if (refused.empty()) {
      try {
        detail::HostingActor hosting;  // its creator claimed its name across the cluster
        entry.handle = type->create(*serving, header.options, arguments.get());
        entry.type = type;
        entry.name = header.options.name;
        (void)serving
            ->task(detail::ReplyWhenDone<void>{type->ready(entry.handle),
                                               answer(source, header.call, what)})
            .options({.num_cpus = 0, .name = what + " (replying)", .rank = rank_})
            .remote();
        return;
      } catch (...) {
        refused = "rank " + std::to_string(rank_) + " cannot create " + what + ": " +
                  describe(std::current_exception());
      }
    }
    entry.refused = refused;
    lock.unlock();
    refuse(source, header.call, std::move(refused));
  }

  // Calls a method of an actor this rank hosts for `source`. Its arguments are decoded (their
  // blocks received) before the lock is taken.
  void call_hosted(int source, Bytes message, MpiBlocks& blocks) {
    const auto header = read_header<ActorCallHeader>(message);
    const detail::RemoteMethod* method = detail::find_remote_method(header.method);
    std::string refused;
    std::shared_ptr<void> arguments;
    if (!method) {
      refused = "rank " + std::to_string(rank_) + " has no method registered as '" + header.method +
                "': every rank must run the same program, with "
                "SPINDLE_REMOTE_METHOD";
    } else {
      arguments = decode_or_refuse(header.method, refused, [&] {
        return method->decode_arguments({message.view(), &blocks});
      });
    }
    const auto key = hosted_key(source, header.owner, header.actor);
    Failed kind = Failed::task;
    detail::AnyActor actor;  // before the lock: a handle made here is dropped after it
    detail::MutexLock lock(mutex);
    auto found = hosted.find(key);
    if (found != hosted.end() && serving) actor = handle_of(found->second);
    if (refused.empty()) {
      if (!serving) {
        refused = no_runtime(header.method);
      } else if (found != hosted.end() && !actor && !found->second.refused.empty()) {
        refused = found->second.refused;
      } else if (!actor) {
        refused = "actor #" + std::to_string(key.second) + " of rank " +
                  std::to_string(key.first) + " is gone from rank " + std::to_string(rank_);
        kind = Failed::actor_died;
      } else {
        try {
          method->invoke(*serving, actor, arguments.get(),
                         answer(source, header.call, method->name()));
          return;
        } catch (...) {
          refused = "rank " + std::to_string(rank_) + " cannot call " + header.method + ": " +
                    describe(std::current_exception());
        }
      }
    }
    lock.unlock();
    refuse(source, header.call, std::move(refused), kind);
  }

  // Where a hosted actor is kept: under its owner's rank (the sender's, when -1) and id.
  static std::pair<int, std::uint64_t> hosted_key(int source, std::int32_t owner,
                                                  std::uint64_t actor) {
    return {owner >= 0 ? owner : source, actor};
  }

  // The handle of a hosted actor: its own, or one made now for a local actor shown to other
  // ranks while it lives; null when neither is.
  static detail::AnyActor handle_of(const Hosted& entry) {
    if (entry.handle) return entry.handle;
    if (std::shared_ptr<detail::ActorCore> local = entry.exposed.lock()) {
      return entry.type->wrap(std::move(local));
    }
    return nullptr;
  }

  // Drops an actor this rank hosts for `source`, or kills one it hosts or shows (for any rank
  // that found it by its name). A kill for good frees its name across the cluster.
  void end_hosted(int source, int tag, Bytes message) {
    const auto header = read_header<ActorOnlyHeader>(message);
    const auto key = hosted_key(source, header.owner, header.actor);
    Hosted ending;  // destroyed after the lock
    detail::AnyActor actor;
    detail::MutexLock lock(mutex);
    auto found = hosted.find(key);
    if (found == hosted.end()) return;
    if (tag == kReleaseActor) {
      ending = std::move(found->second);
      hosted.erase(found);
      lock.unlock();
      return;
    }
    actor = handle_of(found->second);
    if (!actor || !serving) return;
    found->second.type->kill(*serving, actor, header.no_restart);
    if (header.no_restart && !found->second.name.empty()) {
      settle_name(found->second.name,
                  {rank_, key.first, key.second, found->second.type->name()}, false);
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

namespace {

// The totals a rank's options describe, with its node's resource.
ResourceSet totals_of(const RuntimeOptions& options) {
  std::map<std::string, double> resources = options.resources;
  resources.try_emplace(detail::node_resource(), 1.0);
  return resource_totals(Topology::discover(),
                         {options.num_cpus, options.num_gpus, options.memory, resources});
}

}  // namespace

Cluster::Cluster(int& argc, char**& argv, const RuntimeOptions& serving)
    : Cluster(argc, argv, [&serving](int) { return serving; }) {}

Cluster::Cluster(int& argc, char**& argv,
                 const std::function<RuntimeOptions(int rank)>& options_for)
    : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  if (!launched_by_mpi()) {  // alone: rank 0 of 1, where every call stays
    impl.ranks = {info_of(0, totals_of(options_for(0)))};
    detail::set_cluster_link(&impl);
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
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &impl.comm), "MPI_Comm_dup");
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &impl.blocks_comm), "MPI_Comm_dup");
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &impl.groups_comm), "MPI_Comm_dup");
  {
    MPI_Comm machine = MPI_COMM_NULL;  // the ranks on this machine
    check_mpi(MPI_Comm_split_type(impl.groups_comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                                  &machine),
              "MPI_Comm_split_type");
    int here = 1;
    MPI_Comm_size(machine, &here);
    MPI_Comm_free(&machine);
    int over = static_cast<unsigned>(here) > std::thread::hardware_concurrency() ? 1 : 0;
    // Every rank must choose the same form for a collective: they agree on this.
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &over, 1, MPI_INT, MPI_LOR, impl.groups_comm),
              "MPI_Allreduce");
    impl.oversubscribed = over != 0;
  }
  int* tag_bound = nullptr;
  int has_bound = 0;
  MPI_Comm_get_attr(impl.blocks_comm, MPI_TAG_UB, &tag_bound, &has_bound);
  impl.block_tags = has_bound && tag_bound ? *tag_bound : 32767;  // MPI promises 32767
  MPI_Comm_rank(impl.comm, &impl.rank_);
  MPI_Comm_size(impl.comm, &impl.size_);
  detail::set_cluster_link(&impl);
  // A serving rank's runtime is made before the totals are shared: they are its totals.
  std::optional<Runtime> runtime;
  ResourceSet totals;
  try {
    const RuntimeOptions options = options_for(impl.rank_);
    if (impl.rank_ != 0) {
      runtime.emplace(options);
      totals = runtime->total_resources();
    } else {
      totals = totals_of(options);
    }
  } catch (const std::exception& error) {
    std::cerr << "spindle: rank " << impl.rank_ << " cannot start: " << error.what() << '\n';
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  impl.ranks = share(info_of(impl.rank_, totals), impl.comm, impl.size_);
  if (impl.rank_ == 0) {
    impl.poller = std::thread([&impl] { impl.poll_until_stopped(); });
    return;
  }
  // A serving rank: it runs what it is sent until rank 0 says stop. Its runtime then finishes
  // the calls that run (their answers still reach rank 0, which receives until every rank has
  // stopped) and cancels those that wait; then it says so and leaves.
  impl.poll_until_stopped();
  runtime.reset();
  detail::set_cluster_link(nullptr);
  impl.transmit(0, kStopped, "");
  MPI_Comm_free(&impl.comm);
  MPI_Comm_free(&impl.blocks_comm);
  MPI_Comm_free(&impl.groups_comm);
  MPI_Finalize();  // whoever started MPI: this process ends here
  std::exit(0);
}

Cluster::~Cluster() {
  Impl& impl = *impl_;
  detail::set_cluster_link(nullptr);  // no call leaves from here on; answers still come
  if (!impl.in_mpi) return;
  {
    std::lock_guard lock(impl.check_sends);  // the deadlock check sends nothing after this
    impl.stopping.store(true, std::memory_order_release);
  }
  for (int rank = 1; rank < impl.size_; ++rank) {
    try {
      impl.transmit(rank, kStop, "");
    } catch (const std::exception& error) {
      std::cerr << "spindle: rank " << rank << " was not told to stop: " << error.what() << '\n';
    }
  }
  if (impl.poller.joinable()) impl.poller.join();
  impl.fail_pending("the cluster ended before the call's rank answered");
  MPI_Comm_free(&impl.comm);
  MPI_Comm_free(&impl.blocks_comm);
  MPI_Comm_free(&impl.groups_comm);
  if (impl.started_mpi) MPI_Finalize();
}

namespace {

// What a rank answers Cluster::status() with: its serving runtime's status (empty without one).
RuntimeStatus serving_status() {
  auto* impl = static_cast<Cluster::Impl*>(detail::cluster_link());
  if (!impl) return {};
  detail::MutexLock lock(impl->mutex);
  return impl->serving ? impl->serving->status() : RuntimeStatus{};
}

// What a rank answers Cluster::timeline() with: its serving runtime's trace, as JSON.
std::string serving_timeline() {
  auto* impl = static_cast<Cluster::Impl*>(detail::cluster_link());
  if (!impl) throw Error("the cluster has ended");
  detail::MutexLock lock(impl->mutex);
  if (!impl->serving) {
    throw Error("rank " + std::to_string(impl->rank_) + " has no runtime serving calls");
  }
  std::ostringstream out;
  impl->serving->timeline(out);
  return std::move(out).str();
}

}  // namespace

}  // namespace spindle

SPINDLE_REMOTE(spindle::serving_status);
SPINDLE_REMOTE(spindle::serving_timeline);

namespace spindle {

namespace {

// Calls `ask` (a registered function taking nothing) on every rank, this one directly, and
// returns the answers by rank; the first failure is thrown once all have answered.
template <typename Value>
std::vector<Value> gather(Cluster::Impl& impl, Value (*ask)(), const char* name) {
  std::vector<std::shared_ptr<detail::ObjectState<Value>>> answers;
  const detail::RemoteFunction& function =
      *detail::find_remote_function(reinterpret_cast<const void*>(ask));
  std::tuple<> none;
  for (int rank = 0; rank < impl.size_; ++rank) {
    answers.push_back(std::make_shared<detail::ObjectState<Value>>());
    if (rank == impl.rank_) {
      try {
        answers.back()->set_value(ask());
      } catch (...) {
        answers.back()->fail(std::current_exception());
      }
    } else {
      impl.send(rank, function, &none, {.num_cpus = 0, .name = name},
                detail::reply_into(answers.back(), function));
    }
  }
  std::vector<ObjectRef<Value>> refs(answers.begin(), answers.end());
  return get(refs);
}

}  // namespace

std::vector<RuntimeStatus> Cluster::status() const {
  return gather(*impl_, &serving_status, "status");
}

void Cluster::timeline(const std::string& path) const {
  std::vector<std::string> traces;
  try {
    traces = gather(*impl_, &serving_timeline, "timeline");
  } catch (const std::exception& error) {
    throw Error(std::string("timeline: ") + error.what());
  }
  nlohmann::json merged = {{"displayTimeUnit", "ns"}, {"traceEvents", nlohmann::json::array()}};
  auto& events = merged["traceEvents"];
  std::vector<nlohmann::json> parsed;
  std::int64_t earliest = INT64_MAX;  // the first rank's start: time 0 of the merged trace
  for (const std::string& text : traces) {
    parsed.push_back(nlohmann::json::parse(text));
    earliest = std::min(earliest, parsed.back()["otherData"]["epoch_ns"].get<std::int64_t>());
  }
  for (std::size_t rank = 0; rank < parsed.size(); ++rank) {
    nlohmann::json& trace = parsed[rank];
    const double shift_us =
        static_cast<double>(trace["otherData"]["epoch_ns"].get<std::int64_t>() - earliest) / 1e3;
    for (auto& event : trace["traceEvents"]) {
      event["pid"] = rank;
      if (event.contains("ts")) event["ts"] = event["ts"].get<double>() + shift_us;
      events.push_back(std::move(event));
    }
    events.push_back(
        {{"name", "process_name"},
         {"ph", "M"},
         {"pid", rank},
         {"args",
          {{"name", "rank " + std::to_string(rank) + " (" + impl_->ranks[rank].host + ")"}}}});
    merged["otherData"]["rank " + std::to_string(rank)] = trace["otherData"];
  }
  std::ofstream out(path);
  if (out) out << merged.dump() << '\n';
  if (!out) throw Error("timeline: cannot write '" + path + "': " + std::strerror(errno));
}

void Cluster::make_group(const std::string& name, std::vector<int> ranks) {
  Impl& impl = *impl_;
  if (impl.rank_ != 0) {
    throw Error("make_group('" + name + "') on rank " + std::to_string(impl.rank_) +
                ": rank 0's driver makes collective groups");
  }
  detail::MutexLock lock(impl.making_groups);
  detail::check_group(name, ranks, impl.size_);
  if (!impl.in_mpi) {
    detail::add_group_of_one(name);
    return;
  }
  if (!impl.group_names.insert(name).second) throw detail::group_exists(name);
  GroupHeader header{name, std::move(ranks), impl.groups_made++ % 32768};
  bool sent = false;  // once a member is told, a failure would leave it waiting for ever
  try {
    for (int member : header.ranks) {
      if (member == 0) continue;
      impl.request(member, kMakeGroup, {}, header);
      sent = true;
    }
    if (header.ranks.front() == 0) impl.join_group(header);
  } catch (const std::exception& error) {
    if (!sent) {
      impl.group_names.erase(name);
      throw;
    }
    std::cerr << "spindle: collective group '" << name << "' could not be made, and its members "
              << "would wait for it for ever: " << error.what() << '\n';
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

int Cluster::rank() const { return impl_->rank_; }
bool Cluster::with_mpi() { return true; }
int Cluster::size() const { return impl_->size_; }
const std::vector<RankInfo>& Cluster::ranks() const { return impl_->ranks; }

int this_rank() {
  detail::ClusterLink* link = detail::cluster_link();
  return link ? link->rank() : 0;
}

}  // namespace spindle
