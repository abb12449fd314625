// malloc_trim, declared in <malloc.h>, which Swift's Glibc module does not include.
#include "CSlipwayMemory.h"
#include <malloc.h>

int slipway_release_free_memory(void) {
    return malloc_trim(0);
}
