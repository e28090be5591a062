//go:build linux && cgo

package malloctune

/*
#include <malloc.h>

#ifdef __GLIBC__
#define DAGUQ_GLIBC 1
#else
#define DAGUQ_GLIBC 0
#endif

// daguq_tune_malloc raises the trim threshold; it returns 1 when the C
// library took the setting (glibc), 0 when it has no such knob.
static int daguq_tune_malloc(int trim_threshold) {
#ifdef M_TRIM_THRESHOLD
	return mallopt(M_TRIM_THRESHOLD, trim_threshold);
#else
	return 0;
#endif
}
*/
import "C"

// glibc tells whether this build links glibc, whose mallopt knows
// M_TRIM_THRESHOLD.
const glibc = C.DAGUQ_GLIBC == 1

// TrimThreshold is how much free memory glibc keeps at the top of a heap
// before returning it to the kernel: 64 MiB, against a default of 128 KiB.
// It does not make a process allocate more; it only caps how much of a
// past peak stays mapped.
const TrimThreshold = 64 << 20

// Apply sets glibc's M_TRIM_THRESHOLD to TrimThreshold for this process. It
// reports whether the C library took the setting; on a C library without the
// knob (musl) it does nothing and returns false. Call it once, early in main.
func Apply() bool {
	return C.daguq_tune_malloc(C.int(TrimThreshold)) == 1
}
