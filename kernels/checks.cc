// Checks shared by the CPU twins and the CUDA kernels.
#include "checks.hpp"

#include <cmath>
#include <string>

#include "spindle/errors.hpp"

namespace spindle::kernels::detail {
namespace {

std::string number(double value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

void require(bool ok, std::string_view name, double value, std::string_view allowed) {
  if (!ok) {
    throw InvalidArgumentError(std::string(name) + " = " + number(value) + ": " +
                               std::string(allowed));
  }
}

}  // namespace

void check(const Sgd& options, const void* velocity, std::size_t n) {
  require(std::isfinite(options.lr) && options.lr >= 0, "lr", options.lr,
          "must be finite and at least 0");
  require(std::isfinite(options.momentum) && options.momentum >= 0, "momentum", options.momentum,
          "must be finite and at least 0");
  require(std::isfinite(options.weight_decay) && options.weight_decay >= 0, "weight_decay",
          options.weight_decay, "must be finite and at least 0");
  require(!options.nesterov || options.momentum > 0, "momentum", options.momentum,
          "nesterov needs a momentum above 0");
  if (options.momentum != 0 && !velocity && n > 0) {
    throw InvalidArgumentError("velocity is null: momentum = " + number(options.momentum) +
                               " needs a velocity array");
  }
}

void check(const Adam& options) {
  require(std::isfinite(options.lr) && options.lr >= 0, "lr", options.lr,
          "must be finite and at least 0");
  require(options.beta1 >= 0 && options.beta1 < 1, "beta1", options.beta1, "must be in [0, 1)");
  require(options.beta2 >= 0 && options.beta2 < 1, "beta2", options.beta2, "must be in [0, 1)");
  require(std::isfinite(options.eps) && options.eps > 0, "eps", options.eps,
          "must be finite and above 0");
  require(std::isfinite(options.weight_decay) && options.weight_decay >= 0, "weight_decay",
          options.weight_decay, "must be finite and at least 0");
  if (options.step < 1) {
    throw InvalidArgumentError("step = " + std::to_string(options.step) +
                               ": counts from 1 (the first update)");
  }
}

void check_inputs(std::span<const void* const> inputs, std::size_t n) {
  if (inputs.empty() || inputs.size() > kMaxInputs) {
    throw InvalidArgumentError("inputs: " + std::to_string(inputs.size()) +
                               " given; between 1 and " + std::to_string(kMaxInputs) +
                               " are allowed");
  }
  if (n == 0) return;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k]) {
      throw InvalidArgumentError("inputs[" + std::to_string(k) +
                                 "] is null: n = " + std::to_string(n) + " elements need memory");
    }
  }
}

void check_stream(Stream stream, bool gpu, std::string_view function) {
  if (stream.on_gpu() == gpu) return;
  throw InvalidArgumentError(std::string(function) + ": the stream is " +
                             stream.location().to_string() + "'s; " +
                             (gpu ? "a GPU stream is needed" : "the host stream is needed"));
}

double bias_correction(double beta, std::int64_t step) {
  return 1 - std::pow(beta, static_cast<double>(step));
}

}  // namespace spindle::kernels::detail
