// The `spindle` command line tool: see cli.hpp.
#include "cli/cli.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "internal/json.hpp"
#include "spindle/spindle.hpp"

namespace {

constexpr std::string_view kUsage = R"(usage: spindle <command> [options]

commands:
  info      the machine as spindle sees it: topology, GPUs, resource totals
  model     the performance model kept for this machine (measured task and transfer times)
  version   spindle's version and whether it was built with CUDA (also --version)
  help      this text (also --help; every command takes --help too)

options of info:
  --json                   print JSON instead of text
  --num-cpus N             override the cpu total
  --num-gpus N             override the gpu total: logical GPUs, which run on the host
                           unless a real GPU backs them
  --memory BYTES           override the memory total
  --resource NAME=AMOUNT   add a custom resource (repeatable)

options of model:
  --json                   print the model as JSON, as its file holds it

The model fills as codelets run (tasks with a CPU and a GPU implementation, placed by
measured durations): a Runtime records each run by task, input size and device, and saves
the model to the file shown when it ends (RuntimeOptions::perf_model_file picks another
file; an empty name keeps it in memory).
)";
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

double parse_number(std::string_view text, std::string_view flag) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw UsageError(std::string(flag) + " '" + std::string(text) + "': expected a number");
  }
  return value;
}

struct InfoOptions {
  bool json = false;
  spindle::ResourceOverrides overrides;
};

// --help anywhere: the usage on stdout, and nothing else runs.
struct HelpAsked {};

[[noreturn]] void print_usage() { throw HelpAsked{}; }

InfoOptions parse_info(const std::vector<std::string_view>& args) {
  InfoOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    if (flag == "--help" || flag == "-h") print_usage();
    if (flag == "--json") {
      options.json = true;
      continue;
    }
    if (flag != "--num-cpus" && flag != "--num-gpus" && flag != "--memory" &&
        flag != "--resource") {
      throw UsageError("unknown option '" + std::string(flag) +
                       "' for info: allowed are --json, --num-cpus, --num-gpus, --memory, "
                       "--resource, --help");
    }
    if (i + 1 == args.size()) throw UsageError(std::string(flag) + " needs a value");
    std::string_view value = args[++i];
    if (flag == "--num-cpus") options.overrides.num_cpus = parse_number(value, flag);
    if (flag == "--num-gpus") options.overrides.num_gpus = parse_number(value, flag);
    if (flag == "--memory") options.overrides.memory = parse_number(value, flag);
    if (flag == "--resource") {
      std::size_t equals = value.find('=');
      if (equals == std::string_view::npos) {
        throw UsageError("--resource '" + std::string(value) + "': expected NAME=AMOUNT");
      }
      options.overrides.resources[std::string(value.substr(0, equals))] =
          parse_number(value.substr(equals + 1), flag);
    }
  }
  return options;
}

void print_resources(std::ostream& out, const spindle::ResourceSet& totals) {
  out << "Resources (total):\n";
  out << "  cpu: " << totals.cpu().to_string() << '\n';
  out << "  gpu: " << totals.gpu().to_string() << '\n';
  out << "  memory: "
      << spindle::format_bytes(static_cast<std::uint64_t>(totals.memory().whole_part())) << '\n';
  for (const auto& [name, amount] : totals.amounts()) {
    if (!spindle::ResourceSet::is_builtin(name)) {
      out << "  " << name << ": " << amount.to_string() << '\n';
    }
  }
}

int run_info(const std::vector<std::string_view>& args, std::ostream& out) {
  InfoOptions options = parse_info(args);
  spindle::Topology topology = spindle::Topology::discover();
  spindle::ResourceSet totals = spindle::resource_totals(topology, options.overrides);
  if (options.json) {
    spindle::detail::Json json = {
        {"topology", spindle::detail::to_json_value(topology)},
        {"resources", {{"total", spindle::detail::to_json_value(totals)}}}};
    out << json.dump(2) << '\n';
  } else {
    out << spindle::to_text(topology);
    print_resources(out, totals);
    double logical = totals.gpu().to_double() - static_cast<double>(topology.gpus.size());
    if (logical > 0) {
      out << "  (" << logical << " of the gpu total "
          << (logical == 1 ? "is a logical GPU" : "are logical GPUs")
          << " with no device behind: tasks granted one run on the host, and "
             "Location::here() is the host for them)\n";
    }
  }
  return 0;
}

int run_model(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
  bool json = false;
  for (std::string_view flag : args) {
    if (flag == "--help" || flag == "-h") print_usage();
    if (flag != "--json") {
      throw UsageError("unknown option '" + std::string(flag) +
                       "' for model: allowed are --json, --help");
    }
    json = true;
  }
  spindle::Topology topology = spindle::Topology::discover();
  std::string path = spindle::PerfModel::default_path(topology);
  spindle::PerfModel model(spindle::PerfModel::machine_key(topology));
  std::string warning = model.load(path);
  if (!warning.empty()) err << "spindle: " << warning << '\n';
  if (json) {
    spindle::detail::Json json = {{"file", path},
                                  {"model", spindle::detail::Json::parse(model.to_json())}};
    out << json.dump(2) << '\n';
  } else {
    out << "file: " << path << '\n' << model.to_string();
    if (spindle::detail::Json::parse(model.to_json())["runs"].empty()) {
      out << "Codelets fill it as they run (see `spindle help`).\n";
    }
  }
  return 0;
}

int run_version(const std::vector<std::string_view>& args, std::ostream& out) {
  if (!args.empty() && args[0] != "--help" && args[0] != "-h") {
    throw UsageError("version takes no options; got '" + std::string(args[0]) + "'");
  }
  if (!args.empty()) print_usage();
  spindle::Topology topology = spindle::Topology::discover();
  out << "spindle " << SPINDLE_VERSION << ", built "
      << (topology.built_with_cuda ? "with" : "without")
      << " CUDA; GPUs visible: " << topology.gpus.size() << '\n';
  return 0;
}

}  // namespace

namespace spindle::cli {

int run(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
  try {
    if (args.empty()) {
      out << kUsage;
      return 2;
    }
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") print_usage();
    std::vector<std::string_view> rest(args.begin() + 1, args.end());
    if (args[0] == "info") return run_info(rest, out);
    if (args[0] == "model") return run_model(rest, out, err);
    if (args[0] == "version" || args[0] == "--version") return run_version(rest, out);
    throw UsageError("unknown command '" + std::string(args[0]) +
                     "': allowed are info, model, version, help");
  } catch (const HelpAsked&) {
    out << kUsage;
    return 0;
  } catch (const UsageError& error) {
    err << "spindle: " << error.what() << "\n\n" << kUsage;
    return 2;
  } catch (const spindle::InvalidArgumentError& error) {
    err << "spindle: " << error.what() << '\n';
    return 2;
  } catch (const std::exception& error) {
    err << "spindle: " << error.what() << '\n';
    return 1;
  } catch (...) {
    err << "spindle: failed with an exception that is not a std::exception\n";
    return 1;
  }
}

}  // namespace spindle::cli
