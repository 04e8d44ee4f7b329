// libFuzzer: the `spindle` command line with arguments of any content (the input split at
// NUL bytes) prints or refuses, returns 0, 1 or 2, and never ends the process.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string_view>
#include <vector>

#include "cli/cli.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> args;
  while (!text.empty() && args.size() < 16) {
    std::size_t end = text.find('\0');
    args.push_back(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  std::ostringstream out, err;
  int status = spindle::cli::run(args, out, err);
  if (status < 0 || status > 2) __builtin_trap();
  return 0;
}
