// The `spindle` command line tool as a function, so that the fuzzer drives the same code as
// the program (src/cli/main.cc).
#pragma once

#include <ostream>
#include <string_view>
#include <vector>

namespace spindle::cli {

/// Runs the tool on `args` (without the program's name): results on `out`, warnings and
/// errors on `err`. Returns the exit status: 0, 1 for a failure, 2 for a usage error.
/// Arguments of any content are handled: none ends the process or escapes as an exception.
int run(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err);

}  // namespace spindle::cli
