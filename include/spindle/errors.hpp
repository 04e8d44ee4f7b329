// spindle's error types.
//
// Every error spindle throws derives from spindle::Error. Messages name the
// value that was wrong and what was allowed, e.g.
//   "num_gpus = 1.5: a demand above 1 must be a whole number".
#pragma once

#include <stdexcept>

namespace spindle {

/// @brief Base of every error spindle throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief An argument broke a documented rule; the message names the value and the rule.
class InvalidArgumentError : public Error {
 public:
  using Error::Error;
};

/// @brief A resource demand that this runtime can never satisfy; the message names the
/// demand and the totals.
class InfeasibleError : public Error {
 public:
  using Error::Error;
};

}  // namespace spindle
