// A fault the fault tests inject into a real engine process, so that a worker dies mid-shard at a
// line they choose rather than at a moment a timer guesses. Set by the environment only:
//
//   ENGINE_FAILPOINT=kill_at_line=N              the process SIGKILLs itself on reading line N
//   ENGINE_FAILPOINT=kill_at_line=N,once=FILE    the same, once: FILE is created first, and a
//                                                process that finds it goes on
//   ENGINE_FAILPOINT=garble_done=N[,once=FILE]   a launch's worker sends a cut-off "done" message
//                                                for block N (worker_protocol.h)
//
// Unset (the normal case) it costs one branch per line.
#pragma once

#include <cstdint>

namespace engine {

// Called as each input line is read; kills the process when ENGINE_FAILPOINT says so. A malformed
// ENGINE_FAILPOINT is refused with ConfigError at the first call.
void failpoint_at_line(int64_t line);
// Whether the worker should garble its "done" message for block `block`.
bool failpoint_garble_done(int64_t block);

}  // namespace engine
