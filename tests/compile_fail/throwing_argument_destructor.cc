// Must not compile: a task takes an argument whose destructor may throw. Arguments are
// destroyed on a worker once the task has run, where no caller could catch what it throws.
#include "spindle/spindle.hpp"

struct Loud {
  int value = 0;
  ~Loud() noexcept(false) {}
};

int main() {
  spindle::Runtime rt;
  auto ref = rt.task([](const Loud& loud) { return loud.value; }).remote(Loud{1});
  return ref.get();
}
