#include <iostream>
#include <cstddef>
#include <memory>
#include <spindle/large_blocks.hpp>
#include <spindle/spindle.hpp>

int main() {
  spindle::Topology topology = spindle::Topology::discover();
  spindle::ResourcePool pool(spindle::resource_totals(topology));
  std::cout << "consumer: cpu total " << pool.totals().cpu().to_string() << '\n';
  // A large block freed and asked for again comes back from spindle::large_blocks.
  static void* volatile seen = nullptr;  // the blocks escape: no allocation is elided
  for (int i = 0; i < 2; ++i) {
    auto block = std::make_unique<char[]>(std::size_t{8} << 20);
    seen = block.get();
  }
  if (spindle::large_blocks::stats().reused == 0) {
    std::cout << "consumer: large_blocks reused nothing\n";
    return 1;
  }
  return pool.try_acquire(spindle::ResourceSet::demand(1)) ? 0 : 1;
}
