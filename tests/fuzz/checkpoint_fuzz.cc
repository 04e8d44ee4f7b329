// libFuzzer: a parameter checkpoint of any content is read or refused with CheckpointError,
// never undefined behaviour (the sanitizers watch).
#include <cstddef>
#include <cstdint>
#include <span>

#include "spindle/param.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const char> bytes(reinterpret_cast<const char*>(data), size);
  // The shapes of the seed checkpoints: 3 floats, and 2 doubles.
  for (spindle::detail::CheckpointHeader expected :
       {spindle::detail::CheckpointHeader{4, 3, 0}, spindle::detail::CheckpointHeader{8, 2, 0}}) {
    try {
      auto [header, values] = spindle::detail::parse_checkpoint(bytes, "fuzz input", expected);
      if (values.size() != header.count * header.element_bytes) __builtin_trap();
    } catch (const spindle::CheckpointError&) {
    }
  }
  return 0;
}
