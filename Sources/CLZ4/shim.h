#ifndef CLZ4_SHIM_H
#define CLZ4_SHIM_H
#include <lz4.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32C with the processor's crc32 instruction (SSE4.2), for TrackLog's CRC32C: about eight
   bytes per instruction instead of a table lookup per byte. `crc` is the running value without
   the final inversion (the caller inverts before and after, as the table code does). Callers
   check track_crc32c_hardware() first; elsewhere it is 0 and the table code runs. */
#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static inline uint32_t track_crc32c_update(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        __builtin_memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p);
        p++;
        n--;
    }
    return c32;
}
static inline int track_crc32c_hardware(void) { return __builtin_cpu_supports("sse4.2"); }
#else
static inline uint32_t track_crc32c_update(uint32_t crc, const unsigned char *p, size_t n) { (void)p; (void)n; return crc; }
static inline int track_crc32c_hardware(void) { return 0; }
#endif

/* Names the calling thread (at most 15 bytes are kept): the writer's flusher shows in ps and gdb. */
#if defined(__linux__)
#include <sys/prctl.h>
static inline void track_name_this_thread(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }
#else
static inline void track_name_this_thread(const char *name) { (void)name; }
#endif

/* Starts writeback of a file range without waiting for it (Linux's sync_file_range with
   SYNC_FILE_RANGE_WRITE, declared here because glibc declares it only under _GNU_SOURCE);
   elsewhere a no-op. Durability still comes from fsync. */
#if defined(__linux__)
#include <sys/types.h>
extern int sync_file_range(int fd, int64_t offset, int64_t count, unsigned int flags);
static inline int track_start_writeback(int fd, int64_t offset, int64_t count) {
    return sync_file_range(fd, offset, count, 2 /* SYNC_FILE_RANGE_WRITE */);
}
#else
static inline int track_start_writeback(int fd, int64_t offset, int64_t count) { (void)fd; (void)offset; (void)count; return 0; }
#endif
#endif
