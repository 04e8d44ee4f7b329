// Helpers shared by the tests of the GPU layer, the parameter server and their kin.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "spindle/errors.hpp"

namespace spindle::testing {

/// `n` values drawn uniformly from [-1, 1), the same for the same seed.
template <typename T>
std::vector<T> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<T> values(n);
  for (T& v : values) v = static_cast<T>(dist(rng));
  return values;
}

/// The message of the `Expected` error that `call` throws, or "no error". Any other exception
/// escapes and fails the test.
template <typename Expected = spindle::Error, typename Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const Expected& error) {
    return error.what();
  }
  return "no error";
}

}  // namespace spindle::testing
