#ifndef CSLIPWAY_SPAWN_H
#define CSLIPWAY_SPAWN_H
#include <sys/types.h>

/// Starts `file` (searched on PATH) in a new session with a clean signal mask and default
/// signal actions, stdin/stdout/stderr set to the given descriptors (stdin -1: /dev/null),
/// `cwd` as working directory (NULL: the parent's), and every other descriptor closed. Returns 0 or
/// an errno value.
int slipway_spawn(const char *file, char *const argv[], char *const envp[], const char *cwd,
                  int stdin_fd, int stdout_fd, int stderr_fd, pid_t *pid);

/// A pidfd for `pid` (readable once the process has ended, whoever its parent is), or -1 with errno set.
int slipway_pidfd_open(pid_t pid);

#endif
