// Must not compile: a task returns a value whose destructor may throw. The store destroys
// results wherever their last ref goes, where no caller could catch what it throws.
#include "spindle/spindle.hpp"

struct Loud {
  int value = 0;
  ~Loud() noexcept(false) {}
};

int main() {
  spindle::Runtime rt;
  auto ref = rt.task([] { return Loud{1}; }).remote();
  return ref.get().value;
}
