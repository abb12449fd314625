#ifndef CSLIPWAY_MEMORY_H
#define CSLIPWAY_MEMORY_H

/// Hands the allocator's free memory back to the system (glibc's malloc_trim, which Swift's Glibc module does not
/// export). Returns whether any was released.
int slipway_release_free_memory(void);

#endif
