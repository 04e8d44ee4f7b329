// The parameter server's untyped parts: option checks, GPU shares, checkpoint files.
#include "spindle/param.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <span>
#include <string>

#include "io/file.hpp"
#include "checks.hpp"

namespace spindle::detail {
namespace {

constexpr char kMagic[8] = {'S', 'P', 'I', 'N', 'D', 'L', 'P', 'S'};
constexpr std::uint32_t kVersion = 1;
// magic, version, element bytes, count, steps
constexpr std::size_t kHeaderBytes = sizeof kMagic + 4 + 4 + 8 + 8;

// FNV-1a, 64 bits: enough to tell a damaged file, not meant against tampering.
std::uint64_t checksum(const char* data, std::size_t bytes) {
  std::uint64_t hash = 1469598103934665603ull;
  for (std::size_t i = 0; i < bytes; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

template <typename N>
void put(std::string& out, N value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}
template <typename N>
N take(std::span<const char> in, std::size_t& at) {
  N value;
  std::memcpy(&value, in.data() + at, sizeof value);
  at += sizeof value;
  return value;
}

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw CheckpointError("checkpoint '" + path + "' refused: " + why);
}

}  // namespace

void check(const ParameterServerOptions& options, std::size_t size) {
  if (options.num_shards == 0 || options.num_shards > std::max<std::size_t>(size, 1)) {
    throw InvalidArgumentError("num_shards = " + std::to_string(options.num_shards) +
                               ": between 1 and the number of parameters (" + std::to_string(size) +
                               ") is allowed");
  }
  if (options.max_restarts < -1) {
    throw InvalidArgumentError("max_restarts = " + std::to_string(options.max_restarts) +
                               ": a number of restarts, 0 or more, or -1 for no limit");
  }
  if (options.workers == 0) {
    throw InvalidArgumentError("workers = 0: at least 1 push makes a synchronous update");
  }
  // The kernels' own checks name the first bad optimiser option.
  if (options.optimizer == Optimizer::adam || options.optimizer == Optimizer::adamw) {
    kernels::detail::check(kernels::Adam{.lr = options.lr,
                                         .beta1 = options.beta1,
                                         .beta2 = options.beta2,
                                         .eps = options.eps,
                                         .weight_decay = options.weight_decay});
  } else {
    bool momentum = options.optimizer == Optimizer::momentum;
    kernels::detail::check(kernels::Sgd{.lr = options.lr,
                                        .momentum = momentum ? options.momentum : 0,
                                        .weight_decay = options.weight_decay,
                                        .nesterov = momentum && options.nesterov},
                           nullptr, 0);
  }
}

std::uint64_t next_push_id() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

double shard_gpu_share(const ParameterServerOptions& options) {
  int gpus = device_count();
  if (!options.use_gpus || gpus == 0) return 0;
  std::size_t per_gpu = (options.num_shards + gpus - 1) / gpus;
  return per_gpu == 1 ? 1.0 : 1.0 / static_cast<double>(per_gpu);
}

void write_checkpoint(const std::string& path, const CheckpointHeader& header, const void* values) {
  std::string bytes(kMagic, sizeof kMagic);
  put(bytes, kVersion);
  put(bytes, header.element_bytes);
  put(bytes, header.count);
  put(bytes, header.steps);
  bytes.append(static_cast<const char*>(values), header.count * header.element_bytes);
  put(bytes, checksum(bytes.data(), bytes.size()));
  if (std::string why = replace_file(path, bytes); !why.empty()) {
    throw CheckpointError("checkpoint '" + path +
                          "' not written (the old file, if any, is kept): " + why);
  }
}

std::pair<CheckpointHeader, std::vector<char>> read_checkpoint(const std::string& path,
                                                               const CheckpointHeader& expected) {
  std::ifstream in(path, std::ios::binary);
  if (!in) refuse(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_checkpoint(bytes, path, expected);
}

std::pair<CheckpointHeader, std::vector<char>> parse_checkpoint(std::span<const char> bytes,
                                                                const std::string& path,
                                                                const CheckpointHeader& expected) {
  if (bytes.size() < kHeaderBytes + 8 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    refuse(path, "not a spindle parameter checkpoint (" + std::to_string(bytes.size()) + " bytes)");
  }
  std::size_t at = sizeof kMagic;
  auto version = take<std::uint32_t>(bytes, at);
  if (version != kVersion) {
    refuse(path, "version " + std::to_string(version) + "; this spindle reads version " +
                     std::to_string(kVersion));
  }
  CheckpointHeader header;
  header.element_bytes = take<std::uint32_t>(bytes, at);
  header.count = take<std::uint64_t>(bytes, at);
  header.steps = take<std::uint64_t>(bytes, at);
  if (header.element_bytes != expected.element_bytes || header.count != expected.count) {
    refuse(path, "it holds " + std::to_string(header.count) + " elements of " +
                     std::to_string(header.element_bytes) + " bytes; this server has " +
                     std::to_string(expected.count) + " of " +
                     std::to_string(expected.element_bytes));
  }
  std::size_t payload = header.count * header.element_bytes;
  if (bytes.size() != kHeaderBytes + payload + 8) {
    refuse(path, "truncated or padded: " + std::to_string(bytes.size()) + " bytes where " +
                     std::to_string(kHeaderBytes + payload + 8) + " were expected");
  }
  std::size_t end = kHeaderBytes + payload;
  std::uint64_t stored = take<std::uint64_t>(bytes, end);
  if (stored != checksum(bytes.data(), kHeaderBytes + payload)) {
    refuse(path, "checksum mismatch: the file is damaged");
  }
  return {header,
          std::vector<char>(bytes.begin() + kHeaderBytes, bytes.begin() + kHeaderBytes + payload)};
}

}  // namespace spindle::detail
