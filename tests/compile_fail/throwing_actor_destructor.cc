// Must not compile: an actor class whose destructor may throw. The instance is destroyed on
// a worker, at the actor's end or before a rebuild, where no caller could catch what it throws.
#include "spindle/spindle.hpp"

struct Loud {
  int value = 0;
  ~Loud() noexcept(false) {}
  [[nodiscard]] int read() const { return value; }
};

int main() {
  spindle::Runtime rt;
  auto actor = rt.actor<Loud>().remote();
  return actor.call(&Loud::read).get();
}
