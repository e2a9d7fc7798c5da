#pragma once
// FUZZ_CHECK: abort with a message on a broken invariant, in libFuzzer and in
// the replay driver alike (libFuzzer then saves the input as a crash).

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)
