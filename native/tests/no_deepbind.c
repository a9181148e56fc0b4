/* LD_PRELOAD shim for the sanitizer run only: oneTBB (inside the openvino wheel) dlopens its
 * tbbbind helper with RTLD_DEEPBIND, which the AddressSanitizer runtime refuses
 * (google/sanitizers#611). Dropping that one flag lets the unit tests run under ASan. */
#define _GNU_SOURCE
#include <dlfcn.h>

void *dlopen(const char *file, int flags) {
    static void *(*next)(const char *, int);
    if (!next) next = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    return next(file, flags & ~RTLD_DEEPBIND);
}
