// libFuzzer: a performance model file of any content is loaded or ignored with a warning,
// never undefined behaviour; what loads gives finite, non-negative estimates.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "spindle/perf_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spindle::PerfModel model("fuzz machine");  // the seeds' machine
  (void)model.load_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input");
  for (std::size_t bytes : {std::size_t{0}, std::size_t{1} << 20}) {
    for (auto kind : {spindle::DeviceKind::cpu, spindle::DeviceKind::gpu}) {
      if (auto seconds = model.estimate("scale", bytes, kind)) {
        if (!std::isfinite(*seconds) || *seconds < 0) __builtin_trap();
      }
    }
    if (auto seconds =
            model.transfer_seconds(spindle::DeviceKind::cpu, spindle::DeviceKind::gpu, bytes)) {
      if (std::isnan(*seconds)) __builtin_trap();
    }
  }
  (void)model.to_string();
  (void)model.to_json();
  return 0;
}
