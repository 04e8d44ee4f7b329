// The `spindle` command line tool.
#include <charconv>
#include <cstring>
#include <iostream>
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
  help      this text

options of info:
  --json                   print JSON instead of text
  --num-cpus N             override the cpu total
  --num-gpus N             override the gpu total (logical GPUs)
  --memory BYTES           override the memory total
  --resource NAME=AMOUNT   add a custom resource (repeatable)
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

InfoOptions parse_info(const std::vector<std::string_view>& args) {
  InfoOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    if (flag == "--json") {
      options.json = true;
      continue;
    }
    if (flag != "--num-cpus" && flag != "--num-gpus" && flag != "--memory" &&
        flag != "--resource") {
      throw UsageError("unknown option '" + std::string(flag) +
                       "' for info: allowed are --json, --num-cpus, --num-gpus, --memory, "
                       "--resource");
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

int run_info(const std::vector<std::string_view>& args) {
  InfoOptions options = parse_info(args);
  spindle::Topology topology = spindle::Topology::discover();
  spindle::ResourceSet totals = spindle::resource_totals(topology, options.overrides);
  if (options.json) {
    spindle::detail::Json json = {
        {"topology", spindle::detail::to_json_value(topology)},
        {"resources", {{"total", spindle::detail::to_json_value(totals)}}}};
    std::cout << json.dump(2) << '\n';
  } else {
    std::cout << spindle::to_text(topology);
    print_resources(std::cout, totals);
  }
  return 0;
}

int run_model(const std::vector<std::string_view>& args) {
  if (!args.empty()) throw UsageError("model takes no options; got '" + std::string(args[0]) + "'");
  spindle::Topology topology = spindle::Topology::discover();
  std::string path = spindle::PerfModel::default_path(topology);
  spindle::PerfModel model(spindle::PerfModel::machine_key(topology));
  std::string warning = model.load(path);
  if (!warning.empty()) std::cerr << "spindle: " << warning << '\n';
  std::cout << "file: " << path << '\n' << model.to_string();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
      std::cout << kUsage;
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "info") return run_info({args.begin() + 1, args.end()});
    if (args[0] == "model") return run_model({args.begin() + 1, args.end()});
    throw UsageError("unknown command '" + std::string(args[0]) +
                     "': allowed are info, model, help");
  } catch (const UsageError& error) {
    std::cerr << "spindle: " << error.what() << "\n\n" << kUsage;
    return 2;
  } catch (const spindle::InvalidArgumentError& error) {
    std::cerr << "spindle: " << error.what() << '\n';
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "spindle: " << error.what() << '\n';
    return 1;
  }
}
