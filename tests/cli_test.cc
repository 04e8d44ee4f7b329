// The `spindle` command line tool, run as a user runs it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "spindle/spindle.hpp"
#include "support/command.hpp"

namespace spindle {
namespace {

using testing::run_command;

// The tool is built beside the tests (build/bin), so the suite also runs where the binaries
// were carried to another machine.
std::string spindle_command(const std::string& args) {
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path() / "spindle").string() + " " + args;
}

TEST(Cli, InfoPrintsTopologyAndTotals) {
  Topology topology = Topology::discover();
  auto result = run_command(spindle_command("info"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("Machine: "), std::string::npos) << result.output;
  EXPECT_NE(
      result.output.find("Resources (total):\n  cpu: " + std::to_string(topology.num_cores())),
      std::string::npos)
      << result.output;
  if (topology.gpus.empty()) {
    EXPECT_NE(result.output.find("GPUs: none ("), std::string::npos) << result.output;
    EXPECT_NE(result.output.find("  gpu: 0\n"), std::string::npos) << result.output;
  }
}

TEST(Cli, InfoJsonDescribesThisMachine) {
  Topology topology = Topology::discover();
  auto result = run_command(spindle_command("info --json"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  nlohmann::json json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["topology"]["cores"].size(), topology.num_cores());
  EXPECT_EQ(json["topology"]["allowed_pus"].size(), topology.num_pus());
  EXPECT_EQ(json["topology"]["gpus"].size(), topology.gpus.size());
  EXPECT_EQ(json["resources"]["total"]["cpu"], topology.num_cores());
}

// `taskset` narrows the process's affinity; spindle must see one PU and one core.
TEST(Cli, TasksetRestrictionIsHonoured) {
  Topology topology = Topology::discover();
  unsigned pu = topology.allowed_pus.back();
  auto result =
      run_command("taskset -c " + std::to_string(pu) + " " + spindle_command("info --json"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  nlohmann::json json = nlohmann::json::parse(result.output);
  EXPECT_EQ(json["topology"]["allowed_pus"], nlohmann::json::array({pu}));
  EXPECT_EQ(json["topology"]["cores"].size(), 1u);
  EXPECT_EQ(json["topology"]["machine_pus"], topology.machine_pus);
  EXPECT_EQ(json["resources"]["total"]["cpu"], 1);
}

TEST(Cli, OverridesShowInTheTotals) {
  auto result =
      run_command(spindle_command("info --json --num-cpus 16 --num-gpus 4 --resource disk=2.5"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  nlohmann::json total = nlohmann::json::parse(result.output)["resources"]["total"];
  EXPECT_EQ(total["cpu"], 16);
  EXPECT_EQ(total["gpu"], 4);
  EXPECT_EQ(total["disk"], 2.5);
}

TEST(Cli, BadInputIsNamed) {
  auto fractional = run_command(spindle_command("info --num-gpus 1.5 2>&1"));
  EXPECT_EQ(fractional.exit_code, 2);
  EXPECT_NE(fractional.output.find(
                "num_gpus = 1.5: the total is a number of devices, so it must be whole"),
            std::string::npos)
      << fractional.output;

  auto option = run_command(spindle_command("info --bogus 2>&1"));
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_NE(option.output.find("unknown option '--bogus' for info"), std::string::npos)
      << option.output;

  auto number = run_command(spindle_command("info --num-cpus many 2>&1"));
  EXPECT_EQ(number.exit_code, 2);
  EXPECT_NE(number.output.find("--num-cpus 'many': expected a number"), std::string::npos);

  auto command = run_command(spindle_command("frobnicate 2>&1"));
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_NE(
      command.output.find("unknown command 'frobnicate': allowed are info, model, version, help"),
      std::string::npos);
}

TEST(Cli, VersionAndHelpOfEachCommandGoToStdout) {
  for (const char* args : {"--version", "version"}) {
    auto version = run_command(spindle_command(std::string(args) + " 2>/dev/null"));
    EXPECT_EQ(version.exit_code, 0) << args;
    EXPECT_EQ(version.output.rfind("spindle 0.", 0), 0u) << version.output;
    EXPECT_NE(version.output.find(" CUDA; GPUs visible: "), std::string::npos) << version.output;
  }
  for (const char* args : {"--help", "help", "info --help", "model --help", "version --help"}) {
    auto help = run_command(spindle_command(std::string(args) + " 2>/dev/null"));
    EXPECT_EQ(help.exit_code, 0) << args;
    EXPECT_NE(help.output.find("options of model:"), std::string::npos) << args;
  }
}

TEST(Cli, LogicalGpusAreSaidToRunOnTheHost) {
  Topology topology = Topology::discover();
  std::string gpus = std::to_string(topology.gpus.size() + 2);
  auto result = run_command(spindle_command("info --num-gpus " + gpus));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("  gpu: " + gpus + "\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("  (2 of the gpu total are logical GPUs with no device behind: "
                               "tasks granted one run on the host"),
            std::string::npos)
      << result.output;
  auto real = run_command(spindle_command("info"));
  EXPECT_EQ(real.output.find("logical GPU"), std::string::npos) << real.output;
}

TEST(Cli, ModelShowsTheCachedModelAndWarnsAboutADamagedFile) {
  auto folder = std::filesystem::temp_directory_path() / "spindle_cli_model_test";
  std::filesystem::remove_all(folder);
  std::string env = "XDG_CACHE_HOME=" + folder.string() + " ";
  auto empty = run_command(env + spindle_command("model 2>&1"));
  EXPECT_EQ(empty.exit_code, 0);
  EXPECT_NE(empty.output.find("no runs recorded"), std::string::npos) << empty.output;
  EXPECT_NE(empty.output.find("Codelets fill it as they run"), std::string::npos) << empty.output;
  std::filesystem::create_directories(folder / "spindle");
  // The file the tool reads is named in its first line.
  std::string path = empty.output.substr(6, empty.output.find('\n') - 6);
  {
    PerfModel model(PerfModel::machine_key(Topology::discover()));
    for (int i = 0; i < 3; ++i) model.record("scale", 4096, DeviceKind::cpu, 1e-3);
    model.save(path);
  }
  auto json = run_command(env + spindle_command("model --json"));
  ASSERT_EQ(json.exit_code, 0) << json.output;
  nlohmann::json parsed = nlohmann::json::parse(json.output);
  EXPECT_EQ(parsed["file"], path);
  ASSERT_EQ(parsed["model"]["runs"].size(), 1u) << json.output;
  EXPECT_EQ(parsed["model"]["runs"][0]["task"], "scale");
  EXPECT_EQ(parsed["model"]["runs"][0]["device"], "cpu");
  std::ofstream(path) << "{ not json";
  auto damaged = run_command(env + spindle_command("model 2>&1"));
  EXPECT_EQ(damaged.exit_code, 0);
  EXPECT_NE(damaged.output.find("ignored: damaged"), std::string::npos) << damaged.output;
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace spindle
