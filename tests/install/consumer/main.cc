#include <iostream>
#include <spindle/spindle.hpp>

int main() {
  spindle::Topology topology = spindle::Topology::discover();
  spindle::ResourcePool pool(spindle::resource_totals(topology));
  std::cout << "consumer: cpu total " << pool.totals().cpu().to_string() << '\n';
  return pool.try_acquire(spindle::ResourceSet::demand(1)) ? 0 : 1;
}
