#pragma once

#include <cstddef>
#include <functional>

namespace flotilla::manifest {

// The number of threads to use when a caller asks for 0: the machine's cores, 2 when unknown.
size_t DefaultThreads();

// Runs `fn(i)` for every i in [0, n) on up to `threads` threads (the calling thread is one of
// them; 0 means DefaultThreads()) and returns when every call has returned. Calls may run in
// any order and at the same time, so `fn` must only touch what index i owns. If calls throw,
// the remaining indices are skipped and the first exception is rethrown here.
void ParallelFor(size_t n, size_t threads, const std::function<void(size_t)>& fn);

}  // namespace flotilla::manifest
