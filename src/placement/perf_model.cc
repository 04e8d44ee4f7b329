// The performance model: see spindle/perf_model.hpp.
#include "spindle/perf_model.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/file.hpp"
#include "spindle/errors.hpp"

namespace spindle {
namespace {

constexpr int kFormatVersion = 1;

double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// Mean of the samples within 3 scaled MADs of the median; all of them when the MAD is 0.
double robust_mean(const std::vector<double>& values) {
  double median = median_of(values);
  std::vector<double> deviations;
  for (double v : values) deviations.push_back(std::abs(v - median));
  double limit = 3 * 1.4826 * median_of(deviations);
  double sum = 0;
  std::size_t kept = 0;
  for (double v : values) {
    if (limit == 0 ? v == median : std::abs(v - median) <= limit) {
      sum += v;
      ++kept;
    }
  }
  return sum / static_cast<double>(kept);  // the median itself is always kept
}

DeviceKind kind_from(const std::string& text) {
  if (text == "cpu") return DeviceKind::cpu;
  if (text == "gpu") return DeviceKind::gpu;
  throw std::runtime_error("device '" + text + "': cpu or gpu");
}

std::string sanitized(std::string text) {
  for (char& c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  return text;
}

}  // namespace

const char* to_string(DeviceKind kind) { return kind == DeviceKind::gpu ? "gpu" : "cpu"; }

PerfModel::PerfModel(std::string machine) : machine_(std::move(machine)) {}

unsigned PerfModel::bucket(std::size_t bytes) {
  return bytes == 0 ? 0 : static_cast<unsigned>(std::bit_width(bytes) - 1);
}

std::string PerfModel::machine_key(const Topology& topology) {
  std::string key = topology.hostname.empty() ? "machine" : topology.hostname;
  for (const Gpu& gpu : topology.gpus) key += "+" + gpu.name;
  return key;
}

std::string PerfModel::default_path(const Topology& topology) {
  std::filesystem::path base;
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache) {
    base = cache;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    base = std::filesystem::path(home) / ".cache";
  } else {
    base = std::filesystem::temp_directory_path();
  }
  return (base / "spindle" / ("perfmodel-" + sanitized(machine_key(topology)) + ".json")).string();
}

void PerfModel::record(const std::string& task, std::size_t bytes, DeviceKind device,
                       double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) {
    throw InvalidArgumentError("seconds = " + std::to_string(seconds) +
                               ": a duration must be finite and at least 0");
  }
  detail::MutexLock lock(mutex_);
  Samples& samples = runs_[{task, bucket(bytes), device}];
  if (!samples.first_dropped) {
    samples.first_dropped = true;  // the first run pays for warm-up
    return;
  }
  if (samples.values.size() == kMaxSamples) samples.values.erase(samples.values.begin());
  samples.values.push_back(seconds);
}

std::optional<double> PerfModel::estimate(const std::string& task, std::size_t bytes,
                                          DeviceKind device) const {
  detail::MutexLock lock(mutex_);
  auto found = runs_.find({task, bucket(bytes), device});
  if (found == runs_.end() || found->second.values.size() < kCalibrationSamples) return {};
  return robust_mean(found->second.values);
}

std::size_t PerfModel::samples(const std::string& task, std::size_t bytes,
                               DeviceKind device) const {
  detail::MutexLock lock(mutex_);
  auto found = runs_.find({task, bucket(bytes), device});
  return found == runs_.end() ? 0 : found->second.values.size();
}

void PerfModel::record_transfer(DeviceKind from, DeviceKind to, std::size_t bytes, double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) {
    throw InvalidArgumentError("seconds = " + std::to_string(seconds) +
                               ": a duration must be finite and at least 0");
  }
  detail::MutexLock lock(mutex_);
  auto& samples = transfers_[{from, to}];
  if (samples.size() == kMaxSamples) samples.erase(samples.begin());
  samples.emplace_back(static_cast<double>(bytes), seconds);
}

std::optional<double> PerfModel::transfer_seconds(DeviceKind from, DeviceKind to,
                                                  std::size_t bytes) const {
  if (from == to) return 0.0;
  detail::MutexLock lock(mutex_);
  auto found = transfers_.find({from, to});
  if (found == transfers_.end() || found->second.empty()) return {};
  const auto& samples = found->second;
  // Least squares of seconds = latency + bytes * per_byte.
  double n = static_cast<double>(samples.size()), sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (auto [x, y] : samples) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double spread = n * sxx - sx * sx;
  double size = static_cast<double>(bytes);
  if (spread > 0) {
    double per_byte = (n * sxy - sx * sy) / spread;
    double latency = (sy - per_byte * sx) / n;
    if (per_byte > 0) return std::max(0.0, latency) + per_byte * size;
  }
  // One size only: its mean rate.
  return sx > 0 ? size * sy / sx : sy / n;
}

void PerfModel::save(const std::string& path) const {
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  if (std::string why = detail::replace_file(path, to_json() + '\n'); !why.empty()) {
    throw Error("performance model '" + path +
                "' not saved (the old file, if any, is kept): " + why);
  }
}

std::string PerfModel::to_json() const {
  nlohmann::json json;
  {
    detail::MutexLock lock(mutex_);
    json["version"] = kFormatVersion;
    json["machine"] = machine_;
    json["runs"] = nlohmann::json::array();
    for (const auto& [key, samples] : runs_) {
      const auto& [task, bucket, device] = key;
      json["runs"].push_back({{"task", task},
                              {"bucket", bucket},
                              {"device", spindle::to_string(device)},
                              {"first_dropped", samples.first_dropped},
                              {"seconds", samples.values}});
    }
    json["transfers"] = nlohmann::json::array();
    for (const auto& [kinds, samples] : transfers_) {
      nlohmann::json points = nlohmann::json::array();
      for (auto [bytes, seconds] : samples) points.push_back({bytes, seconds});
      json["transfers"].push_back({{"from", spindle::to_string(kinds.first)},
                                   {"to", spindle::to_string(kinds.second)},
                                   {"bytes_seconds", points}});
    }
  }
  return json.dump(1);
}

std::string PerfModel::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    clear();
    return "";
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return load_json(text, path);
}

void PerfModel::clear() {
  detail::MutexLock lock(mutex_);
  runs_.clear();
  transfers_.clear();
}

namespace {

// A duration or a size read from a file: finite and not negative, or the file is damaged.
double checked(double value, const char* what) {
  if (!std::isfinite(value) || value < 0) {
    throw std::runtime_error(std::string("a ") + what + " that is negative or not finite");
  }
  return value;
}

// A whole number read from a file. nlohmann converts a float such as 5e40 to an integer type by a
// plain cast, which is undefined behaviour out of range, so anything but an integer is refused.
std::int64_t whole_number(const nlohmann::json& value, const char* what) {
  if (!value.is_number_integer()) {
    throw std::runtime_error(std::string("a ") + what + " that is not a whole number: " +
                             value.dump());
  }
  return value.get<std::int64_t>();
}

}  // namespace

std::string PerfModel::load_json(std::string_view text, const std::string& path) {
  clear();
  std::map<Key, Samples> runs;
  std::map<std::pair<DeviceKind, DeviceKind>, std::vector<std::pair<double, double>>> transfers;
  try {
    nlohmann::json json = nlohmann::json::parse(text);
    const auto& version = json.at("version");
    if (!version.is_number_integer() || version.get<std::int64_t>() != kFormatVersion) {
      return "performance model '" + path + "' ignored: version " + json.at("version").dump() +
             ", this spindle writes version " + std::to_string(kFormatVersion) +
             "; it will be rebuilt";
    }
    if (json.at("machine").get<std::string>() != machine_) {
      return "performance model '" + path + "' ignored: it describes machine '" +
             json.at("machine").get<std::string>() + "', not '" + machine_ +
             "'; it will be rebuilt";
    }
    for (const auto& run : json.at("runs")) {
      Samples samples;
      samples.first_dropped = run.at("first_dropped").get<bool>();
      samples.values = run.at("seconds").get<std::vector<double>>();
      for (double v : samples.values) checked(v, "duration");
      if (samples.values.size() > kMaxSamples) {
        samples.values.erase(samples.values.begin(), samples.values.end() - kMaxSamples);
      }
      auto bucket = whole_number(run.at("bucket"), "size bucket");
      if (bucket < 0 || bucket > 64) throw std::runtime_error("a size bucket outside 0 to 64");
      runs[{run.at("task").get<std::string>(), static_cast<unsigned>(bucket),
            kind_from(run.at("device").get<std::string>())}] = std::move(samples);
    }
    for (const auto& transfer : json.at("transfers")) {
      auto& points = transfers[{kind_from(transfer.at("from").get<std::string>()),
                                kind_from(transfer.at("to").get<std::string>())}];
      for (const auto& point : transfer.at("bytes_seconds")) {
        points.emplace_back(checked(point.at(0).get<double>(), "transfer size"),
                            checked(point.at(1).get<double>(), "transfer duration"));
      }
    }
  } catch (const std::exception& error) {
    return "performance model '" + path + "' ignored: damaged (" + error.what() +
           "); it will be rebuilt";
  }
  detail::MutexLock lock(mutex_);
  runs_ = std::move(runs);
  transfers_ = std::move(transfers);
  return "";
}

std::string PerfModel::to_string() const {
  std::ostringstream out;
  detail::MutexLock lock(mutex_);
  out << "Performance model of '" << machine_ << "'\n";
  if (runs_.empty()) out << "  no runs recorded\n";
  char line[256];
  for (const auto& [key, samples] : runs_) {
    const auto& [task, bucket, device] = key;
    std::string estimate = samples.values.size() >= kCalibrationSamples
                               ? std::to_string(robust_mean(samples.values) * 1e6) + " us"
                               : "calibrating";
    std::snprintf(line, sizeof line, "  %-24s 2^%-2u bytes  %s  %3zu samples  %s\n", task.c_str(),
                  bucket, spindle::to_string(device), samples.values.size(), estimate.c_str());
    out << line;
  }
  for (const auto& [kinds, samples] : transfers_) {
    out << "  transfer " << spindle::to_string(kinds.first) << " -> "
        << spindle::to_string(kinds.second) << ": " << samples.size() << " samples\n";
  }
  return out.str();
}

}  // namespace spindle
