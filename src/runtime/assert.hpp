// Invariants of the scheduler's state, checked in debug builds and compiled out with NDEBUG
// (as oneTBB's __TBB_ASSERT and marl's MARL_ASSERT).
#pragma once

#include <cstdio>
#include <cstdlib>

#ifndef NDEBUG
#define SPINDLE_ASSERT(condition)                                                         \
  ((condition) ? void(0)                                                                  \
               : (std::fprintf(stderr, "spindle: %s:%d: invariant broken: %s\n", __FILE__, \
                               __LINE__, #condition),                                     \
                  std::abort()))
#else
#define SPINDLE_ASSERT(condition) void(0)
#endif
