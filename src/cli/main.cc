// The `spindle` command line tool; what it does is in cli.cc.
#include <iostream>
#include <string_view>
#include <vector>

#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return spindle::cli::run(std::vector<std::string_view>(argv + 1, argv + argc), std::cout,
                           std::cerr);
}
