// Must not compile: a task declares an ObjectRef<int> parameter and is called with a ref.
// The test suite builds it and expects spindle's one-line explanation among the errors.
#include "spindle/spindle.hpp"

int main() {
  spindle::Runtime rt;
  auto ref = rt.put(1);
  auto task = rt.task([](spindle::ObjectRef<int> r) { return r.get(); });
  return task.remote(ref).get();
}
