// The log's durability and exclusivity helpers: CRC32C of records, space reservation, flock,
// and the background flusher of `--fsync interval`.
#define _GNU_SOURCE
#include "CRinggateSys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

// ---------------------------------------------------------------------------------------------
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78). SSE4.2 `crc32` where the CPU has it,
// a slicing-by-1 table otherwise; both give the same value.

static uint32_t crc_table[256];
static int crc_hw = -1;   // -1 unknown, 0 table, 1 SSE4.2

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc_table[i] = c;
    }
    int hw = 0;
#if defined(__x86_64__)
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2)) hw = 1;
#endif
    __atomic_store_n(&crc_hw, hw, __ATOMIC_RELEASE);
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t n) {
    while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_sse42(uint32_t crc, const uint8_t *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        __builtin_memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t rg_crc32c_update(uint32_t crc, const void *data, size_t length) {
    int hw = __atomic_load_n(&crc_hw, __ATOMIC_ACQUIRE);
    if (hw < 0) {
        crc_init();
        hw = crc_hw;
    }
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (hw == 1) return ~crc_sse42(c, p, length);
#endif
    if (crc_table[1] == 0) crc_init();
    return ~crc_soft(c, p, length);
}

int rg_crc32c_hardware(void) {
    if (__atomic_load_n(&crc_hw, __ATOMIC_ACQUIRE) < 0) crc_init();
    return crc_hw;
}

// ---------------------------------------------------------------------------------------------
// Files.

int rg_fallocate(int fd, uint64_t length) {
    int rc = posix_fallocate(fd, 0, (off_t)length);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

int rg_flock_exclusive_nonblocking(int fd) { return flock(fd, LOCK_EX | LOCK_NB); }

int rg_fdatasync(int fd) { return fdatasync(fd); }

// ---------------------------------------------------------------------------------------------
// `--fsync interval`: a thread that flushes the file whenever the published tail moved. It
// never touches the log's bytes, so the single writer stays single.

typedef struct rg_flusher_args {
    int fd;
    uint64_t interval_ns;
    const void *tail;
    void *count;
    void *nanoseconds;
    void *errors;
    void *last_errno;
} rg_flusher_args;

uint64_t rg_flush_step(int fd, uint64_t tail, uint64_t synced, void *count, void *nanoseconds,
                       void *errors, void *last_errno) {
    if (tail == synced) return synced;
    uint64_t start = rg_monotonic_ns();
    int rc = fdatasync(fd);
    int code = errno;
    rg_fetch_add_relaxed_u64(count, 1);
    rg_fetch_add_relaxed_u64(nanoseconds, rg_monotonic_ns() - start);
    if (rc == 0) return tail;
    // The kernel reports a write-back error once and marks the pages clean: the next call
    // succeeds although those writes are lost. So every failure is counted (the ingest logs
    // it), and `synced` stays, so the next interval flushes again.
    rg_store_relaxed_u64(last_errno, (uint64_t)code);
    rg_fetch_add_relaxed_u64(errors, 1);
    return synced;
}

static void *flusher_main(void *arg) {
    rg_flusher_args a = *(rg_flusher_args *)arg;
    free(arg);
    uint64_t synced = rg_load_acquire_u64(a.tail);
    for (;;) {
        struct timespec ts = {(time_t)(a.interval_ns / 1000000000u), (long)(a.interval_ns % 1000000000u)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        synced = rg_flush_step(a.fd, rg_load_acquire_u64(a.tail), synced, a.count, a.nanoseconds, a.errors,
                               a.last_errno);
    }
    return NULL;
}

int rg_flusher_start(int fd, uint64_t interval_ns, const void *tail, void *count, void *nanoseconds,
                     void *errors, void *last_errno) {
    rg_flusher_args *a = malloc(sizeof *a);
    if (a == NULL) return -1;
    *a = (rg_flusher_args){fd, interval_ns, tail, count, nanoseconds, errors, last_errno};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, flusher_main, a);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(a);
        errno = rc;
        return -1;
    }
    return 0;
}
