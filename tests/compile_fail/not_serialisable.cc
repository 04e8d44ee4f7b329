// Must not compile: a function registered for other ranks takes a type cereal cannot
// serialise. The test suite builds it and expects spindle's explanation, naming the type.
#include "spindle/cluster.hpp"

struct Opaque {
  int secret = 0;
};

int peek(const Opaque& opaque) { return opaque.secret; }
SPINDLE_REMOTE(peek);

int main() { return 0; }
