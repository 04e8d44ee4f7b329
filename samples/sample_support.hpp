// What every sample shares: flags with defaults (and --quick), and a stopwatch.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace samples {

/// Flags of the form `--name value`, each with a default, a quick value and the range it
/// allows; `--quick` picks the quick values (for CTest) before any flag given explicitly.
/// `--help` lists them on stdout; an unknown flag, or a value out of its range, stops the
/// program before any work with a usage error on stderr naming the flag (exit status 2).
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

  Flags(int argc, char** argv, std::map<std::string, Flag> flags) : flags_(std::move(flags)) {
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
      auto found = arg.rfind("--", 0) == 0 ? flags_.find(arg.substr(2)) : flags_.end();
      if (found == flags_.end() || i + 1 >= argc) usage(arg);
      char* end = nullptr;
      const char* text = argv[++i];
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
  [[nodiscard]] bool quick() const { return quick_; }

 private:
  void check(const std::string& name, const Flag& flag, double value, const char* text) const {
    bool whole = value == static_cast<double>(static_cast<long long>(value));
    if (value >= flag.min && value <= flag.max && (whole || !flag.whole)) return;
    std::fprintf(stderr, "--%s %s: must be %s from %g to %g\n", name.c_str(), text,
                 flag.whole ? "a whole number" : "a number", flag.min, flag.max);
    usage("");
  }

  [[noreturn]] void usage(const std::string& bad, int status = 2) const {
    std::FILE* out = status == 0 ? stdout : stderr;
    if (!bad.empty()) std::fprintf(out, "'%s' is not understood; ", bad.c_str());
    std::fprintf(out, "the flags are:\n  --quick  small sizes\n");
    for (const auto& [name, flag] : flags_) {
      std::fprintf(out, "  --%s N  %s (default %g, quick %g; %g to %g)\n", name.c_str(),
                   flag.help, flag.value, flag.quick, flag.min, flag.max);
    }
    std::exit(status);
  }

  std::map<std::string, Flag> flags_;
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
