// What every sample and benchmark program shares: flags with defaults (and --quick), a
// stopwatch, a median, peak memory, and the report line.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace samples {

/// Flags of the form `--name value`, each with a default, a quick value and the range it
/// allows; `--quick` picks the quick values (for CTest) before any flag given explicitly.
/// Programs may also take switches (`--name`, off unless given) and texts (`--name WORD`,
/// one of a list of choices, or any word when the list is empty).
/// `--help` lists them on stdout; an unknown flag, or a value out of its range, stops the
/// program before any work with a usage error on stderr naming the flag (exit status 2).
/// The samples and the benchmark programs share it.
class Flags {
 public:
  struct Flag {
    double value;
    double quick;
    const char* help;
    double min;
    double max;
    bool whole = true;  // a count: a whole number
  };
  struct Text {
    std::string value;
    const char* help;
    std::vector<std::string> choices;  // empty: any word
  };

  Flags(int argc, char** argv, std::map<std::string, Flag> flags,
        std::map<std::string, const char*> switches = {}, std::map<std::string, Text> texts = {})
      : flags_(std::move(flags)), switches_(std::move(switches)), texts_(std::move(texts)) {
    for (int i = 1; i < argc; ++i) {
      if (std::string(argv[i]) == "--quick") quick_ = true;
      if (std::string(argv[i]) == "--help") usage("", 0);
    }
    if (quick_) {
      for (auto& [name, flag] : flags_) flag.value = flag.quick;
    }
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--quick") continue;
      std::string name = arg.rfind("--", 0) == 0 ? arg.substr(2) : "";
      if (switches_.count(name)) {
        on_.insert(name);
        continue;
      }
      if (i + 1 >= argc) usage(arg);
      const char* text = argv[++i];
      if (auto found = texts_.find(name); found != texts_.end()) {
        check(found->first, found->second, text);
        found->second.value = text;
        continue;
      }
      auto found = flags_.find(name);
      if (found == flags_.end()) usage(arg);
      char* end = nullptr;
      double value = std::strtod(text, &end);
      if (end == text || *end != '\0') usage(arg + " " + text);
      check(found->first, found->second, value, text);
      found->second.value = value;
    }
  }

  [[nodiscard]] double operator[](const std::string& name) const { return flags_.at(name).value; }
  [[nodiscard]] long count(const std::string& name) const {
    return static_cast<long>(flags_.at(name).value);
  }
  /// Whether the switch was given.
  [[nodiscard]] bool on(const std::string& name) const {
    (void)switches_.at(name);  // a name the program never declared is a bug: it throws
    return on_.count(name) > 0;
  }
  [[nodiscard]] const std::string& text(const std::string& name) const {
    return texts_.at(name).value;
  }
  [[nodiscard]] bool quick() const { return quick_; }

  /// Stops the program with a usage error: for a combination of flags it does not allow.
  [[noreturn]] void refuse(const std::string& why) const {
    std::fprintf(stderr, "%s\n", why.c_str());
    usage("");
  }

 private:
  void check(const std::string& name, const Flag& flag, double value, const char* text) const {
    bool whole = value == static_cast<double>(static_cast<long long>(value));
    if (value >= flag.min && value <= flag.max && (whole || !flag.whole)) return;
    refuse("--" + name + " " + text + ": must be " + (flag.whole ? "a whole number" : "a number") +
           " from " + number(flag.min) + " to " + number(flag.max));
  }

  void check(const std::string& name, const Text& option, const char* text) const {
    if (option.choices.empty() && text[0] != '\0' && text[0] != '-') return;
    for (const std::string& choice : option.choices) {
      if (choice == text) return;
    }
    refuse("--" + name + " " + text + ": must be " +
           (option.choices.empty() ? "a word not starting with '-'" : "one of " + listed(option)));
  }

  static std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return text;
  }

  static std::string listed(const Text& option) {
    std::string text;
    for (const std::string& choice : option.choices) text += (text.empty() ? "" : "|") + choice;
    return text;
  }

  [[noreturn]] void usage(const std::string& bad, int status = 2) const {
    std::FILE* out = status == 0 ? stdout : stderr;
    if (!bad.empty()) std::fprintf(out, "'%s' is not understood; ", bad.c_str());
    std::fprintf(out, "the flags are:\n  --quick  small sizes\n");
    for (const auto& [name, flag] : flags_) {
      std::fprintf(out, "  --%s N  %s (default %g, quick %g; %g to %g)\n", name.c_str(), flag.help,
                   flag.value, flag.quick, flag.min, flag.max);
    }
    for (const auto& [name, help] : switches_)
      std::fprintf(out, "  --%s  %s\n", name.c_str(), help);
    for (const auto& [name, option] : texts_) {
      std::fprintf(out, "  --%s %s  %s (default %s)\n", name.c_str(),
                   option.choices.empty() ? "WORD" : listed(option).c_str(), option.help,
                   option.value.empty() ? "none" : option.value.c_str());
    }
    std::exit(status);
  }

  std::map<std::string, Flag> flags_;
  std::map<std::string, const char*> switches_;
  std::map<std::string, Text> texts_;
  std::set<std::string> on_;
  bool quick_ = false;
};

/// Seconds since construction.
class Stopwatch {
 public:
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// The update a worker of the sharded parameter server samples computes from the parameters:
/// a gradient that pulls them toward 0.
inline void compute_gradient(const std::vector<double>& params, std::vector<double>& gradient) {
  for (std::size_t i = 0; i < params.size(); ++i) gradient[i] = 1e-3 * params[i] + 1e-6;
}

/// The middle value (the upper one of an even count); `values` must not be empty.
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

/// The process's resident memory now, in MiB (0 where /proc is not there).
inline double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1 << 20);
}

/// The process's peak resident memory in MiB since start or the last reset_peak_memory()
/// (Linux's VmHWM; 0 where /proc is not there).
inline double peak_memory_mib() {
  double kib = 0;
  if (std::FILE* status = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, status)) {
      if (std::sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
    }
    std::fclose(status);
  }
  return kib / 1024;
}

/// Starts peak_memory_mib() again from what the process holds now (Linux 4.0 and later).
inline void reset_peak_memory() {
  if (std::FILE* refs = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", refs);
    std::fclose(refs);
  }
}

/// "name: 1.234 s" and, against a baseline's seconds, "(3.90x faster)" or "(1.50x slower)".
/// With SPINDLE_SAMPLE_RESULTS naming a file, also appends "name<TAB>seconds" to it (the
/// peers' benchmark reads it).
inline void report(const char* name, double seconds, double baseline = 0) {
  if (const char* path = std::getenv("SPINDLE_SAMPLE_RESULTS"); path && *path) {
    if (std::FILE* out = std::fopen(path, "a")) {
      std::fprintf(out, "%s\t%.9g\n", name, seconds);
      std::fclose(out);
    }
  }
  if (baseline > 0) {
    bool faster = seconds <= baseline;
    std::printf("  %-44s %8.3f s  (%.2fx %s)\n", name, seconds,
                faster ? baseline / seconds : seconds / baseline, faster ? "faster" : "slower");
  } else {
    std::printf("  %-44s %8.3f s\n", name, seconds);
  }
  std::fflush(stdout);
}

}  // namespace samples
