// Plain-C interface over liburing, atomics on raw shared memory and the Linux syscalls that
// Glibc's Swift overlay does not expose. Never define feature macros here: only the .c files
// include <liburing.h> and <linux/tcp.h>, so Swift code can import this module together with
// Glibc/Foundation.
#ifndef CRINGGATESYS_H
#define CRINGGATESYS_H

#include <stdint.h>
#include <stddef.h>

// ---------------------------------------------------------------------------------------------
// Atomics on raw (possibly shared, mmap'd) memory. The name says the ordering.
uint64_t rg_load_acquire_u64(const void *p);
uint64_t rg_load_relaxed_u64(const void *p);
void rg_store_release_u64(void *p, uint64_t v);
void rg_store_relaxed_u64(void *p, uint64_t v);
uint32_t rg_load_acquire_u32(const void *p);
void rg_store_release_u32(void *p, uint32_t v);
uint64_t rg_fetch_add_relaxed_u64(void *p, uint64_t v);
// Compare-and-swap (acq_rel on success, acquire on failure); returns 1 when it swapped.
int rg_cas_u32(void *p, uint32_t expected, uint32_t desired);
uint32_t rg_load_relaxed_u32(const void *p);
void rg_store_relaxed_u32(void *p, uint32_t v);
void rg_fence_acquire(void);
void rg_fence_release(void);
void rg_fence_seq_cst(void);

// ---------------------------------------------------------------------------------------------
// Process, memory and descriptors. Each returns -1 with errno set on failure.
int rg_memfd_create(const char *name);
int rg_eventfd(unsigned int initval, int nonblock);
int rg_eventfd_signal(int fd);
int rg_clear_cloexec(int fd);
int rg_set_pdeathsig(int sig);
int rg_set_process_name(const char *name);
// posix_spawn `path` with argv (NULL-terminated); descriptors without FD_CLOEXEC are inherited.
int rg_spawn(const char *path, char *const argv[], int *pid_out);
int rg_waitpid_nohang(int *status_out);          // returns pid, 0 when none exited, -1 on error
int rg_wifexited(int status);
int rg_wexitstatus(int status);
int rg_wifsignaled(int status);
int rg_wtermsig(int status);
uint64_t rg_monotonic_ns(void);
uint64_t rg_realtime_ns(void);
int rg_getrandom(void *buf, size_t len);

// ---------------------------------------------------------------------------------------------
// Sockets.
// Creates a TCP listening socket bound to host:port (IPv4 dotted or IPv6 literal), non-blocking,
// with SO_REUSEADDR and, when reuseport != 0, SO_REUSEPORT. Returns fd or -1 (errno).
int rg_listen_tcp(const char *host, int port, int backlog, int reuseport);
int rg_local_port(int fd);                       // bound port of a socket, -1 on error
int rg_set_nonblocking(int fd, int on);
int rg_tune_accepted(int fd, int nodelay, unsigned int user_timeout_ms,
                     int keepalive_idle_s, int keepalive_intvl_s, int keepalive_cnt);
int rg_outq_bytes(int fd);                       // SIOCOUTQ: unacked + unsent bytes, -1 on error
typedef struct rg_tcp_progress {
    uint64_t bytes_acked;   // tcpi_bytes_acked
    uint32_t state;         // tcpi_state (1 = ESTABLISHED)
    uint32_t unacked;       // segments
    uint32_t rto_us;
    uint32_t retransmits;
    uint32_t notsent;       // tcpi_notsent_bytes: written, not yet sent
} rg_tcp_progress;
int rg_tcp_progress_read(int fd, rg_tcp_progress *out);
int rg_connect_tcp(const char *host, int port);  // blocking connect, for the CLI; fd or -1
// The same, giving up after timeout_ms (errno ETIMEDOUT; <= 0 waits as long as the kernel
// does); the socket it returns is blocking.
int rg_connect_tcp_timeout(const char *host, int port, int timeout_ms);
int rg_set_recv_timeout_ms(int fd, int ms);

// ---------------------------------------------------------------------------------------------
// io_uring. One ring per thread, opaque to Swift.
typedef struct rg_ring rg_ring;

typedef struct rg_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} rg_cqe;

// Completion flag bits, re-exported so Swift need not import liburing.
extern const uint32_t RG_CQE_F_BUFFER;
extern const uint32_t RG_CQE_F_MORE;
extern const uint32_t RG_CQE_BUFFER_SHIFT;

// Creates a ring with `entries` SQEs. Tries SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN first and
// falls back to plainer setups. Returns NULL with *err_out = -errno on failure.
rg_ring *rg_ring_create(unsigned int entries, int *err_out);
void rg_ring_destroy(rg_ring *ring);
unsigned int rg_ring_features(const rg_ring *ring);
unsigned int rg_ring_setup_flags(const rg_ring *ring);

// Each prep returns 0, or -EBUSY when the submission queue is full even after a submit.
int rg_prep_multishot_accept(rg_ring *ring, int fd, uint64_t user_data);
int rg_prep_recv_multishot(rg_ring *ring, int fd, uint16_t buf_group, uint64_t user_data);
int rg_prep_recv(rg_ring *ring, int fd, void *buf, unsigned int len, uint64_t user_data);
int rg_prep_send(rg_ring *ring, int fd, const void *buf, unsigned int len, uint64_t user_data);
int rg_prep_read(rg_ring *ring, int fd, void *buf, unsigned int len, uint64_t user_data);
int rg_prep_timeout(rg_ring *ring, uint64_t ns, uint64_t user_data);
int rg_prep_cancel_fd(rg_ring *ring, int fd, uint64_t user_data);
int rg_prep_close(rg_ring *ring, int fd, uint64_t user_data);
int rg_prep_poll_add(rg_ring *ring, int fd, unsigned int events, uint64_t user_data);

// Submits pending SQEs and waits for at least `wait_nr` completions or `timeout_ns` (0 = none).
// Returns >= 0 or -errno (-ETIME and -EINTR are ordinary).
int rg_submit_and_wait(rg_ring *ring, unsigned int wait_nr, uint64_t timeout_ns);
int rg_submit(rg_ring *ring);
// Copies up to `max` ready completions into `out` and advances the completion queue past them.
unsigned int rg_drain_cqes(rg_ring *ring, rg_cqe *out, unsigned int max);

// Provided-buffer ring: `count` (power of two) buffers of `size` bytes in group `group`.
typedef struct rg_buf_ring rg_buf_ring;
rg_buf_ring *rg_buf_ring_create(rg_ring *ring, uint16_t group, unsigned int count,
                                unsigned int size, int *err_out);
void rg_buf_ring_destroy(rg_ring *ring, rg_buf_ring *br);
uint8_t *rg_buf_ring_buffer(rg_buf_ring *br, uint16_t bid);
// Gives buffer `bid` back to the kernel.
void rg_buf_ring_recycle(rg_buf_ring *br, uint16_t bid);

// Added for the HTTP limits work (issue 10).
// Cancels the one request whose user_data is `target` (e.g. a multishot receive).
int rg_prep_cancel_user_data(rg_ring *ring, uint64_t target, uint64_t user_data);
// Tests: the next `count` preps fail with -EBUSY, as when the queue stays full after a submit.
void rg_ring_inject_sq_full(rg_ring *ring, unsigned int count);
// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) on a listener, without the peer address; fd or -1 (errno).
int rg_accept_nonblock(int listen_fd);
// A descriptor held in reserve (/dev/null), closed to make room for one accept at EMFILE.
int rg_open_reserve_fd(void);

#endif

// ---------------------------------------------------------------------------------------------
// Signals. The handlers only set flags, read with rg_signal_take (which clears the flag).
#ifndef CRINGGATESYS_SIGNALS
#define CRINGGATESYS_SIGNALS
enum { RG_SIG_TERM = 1, RG_SIG_CHLD = 2, RG_SIG_INT = 4 };
int rg_install_signal_flags(int want_chld);   // SIGTERM → RG_SIG_TERM; SIGINT → RG_SIG_TERM|RG_SIG_INT; SIGCHLD → RG_SIG_CHLD; SIGPIPE ignored
int rg_signal_take(void);                      // bitmask of flags seen since the last call
int rg_shutdown(int fd, int how);              // 0 = RD, 1 = WR, 2 = RDWR
int rg_close(int fd);
#endif

// ---------------------------------------------------------------------------------------------
// The log file (logfile.c): record checksums, space, exclusivity, durability.
#ifndef CRINGGATESYS_LOGFILE
#define CRINGGATESYS_LOGFILE
#include <stdint.h>
#include <stddef.h>
// CRC32C (Castagnoli) of `length` bytes, continuing `crc` (start with 0). SSE4.2 when present.
uint32_t rg_crc32c_update(uint32_t crc, const void *data, size_t length);
int rg_crc32c_hardware(void);                   // 1 when the SSE4.2 instruction is used
int rg_fallocate(int fd, uint64_t length);      // posix_fallocate from 0; -1 with errno (ENOSPC)
int rg_flock_exclusive_nonblocking(int fd);     // flock(LOCK_EX|LOCK_NB); -1 with errno (EWOULDBLOCK)
int rg_fdatasync(int fd);
// Starts a detached thread that calls fdatasync(fd) every interval_ns while the u64 at `tail`
// (acquire) moved since the last flush; adds 1 to `*count` and the flush time to `*nanoseconds`;
// a failed flush adds 1 to `*errors` and stores its errno in `*last_errno` (all u64, relaxed).
int rg_flusher_start(int fd, uint64_t interval_ns, const void *tail, void *count, void *nanoseconds,
                     void *errors, void *last_errno);
// One turn of that thread: flushes when `tail` != `synced`; returns the new `synced` (unchanged
// after a failure, which is counted in `*errors` with its errno in `*last_errno`).
uint64_t rg_flush_step(int fd, uint64_t tail, uint64_t synced, void *count, void *nanoseconds,
                       void *errors, void *last_errno);
#endif

// MARK: EPOLL
// ---------------------------------------------------------------------------------------------
// The epoll backend (epoll.c). Each call returns its result or -errno.
#ifndef CRINGGATESYS_EPOLL
#define CRINGGATESYS_EPOLL
#include <stdint.h>
#include <stddef.h>
enum { RG_READY_READ = 1, RG_READY_WRITE = 2, RG_READY_HANGUP = 4, RG_READY_URGENT = 8 };   // URGENT: EPOLLPRI
typedef struct rg_epoll_ready {
    int32_t fd;
    uint32_t ready;     // RG_READY_* bits
} rg_epoll_ready;
int rg_epoll_create(void);
// Registers `fd` edge-triggered for reading, urgent data, writing and the peer's FIN, once per descriptor.
int rg_epoll_add_edge(int epfd, int fd);
// Waits up to timeout_ns (-1 = no limit, 0 = poll) for at most `max` (≤ 256) ready descriptors.
int rg_epoll_wait(int epfd, rg_epoll_ready *out, int max, int64_t timeout_ns);
int rg_accept_nb(int listen_fd);                 // accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)
long rg_recv_nb(int fd, void *buf, size_t len);  // MSG_DONTWAIT
long rg_send_nb(int fd, const void *buf, size_t len);   // MSG_DONTWAIT | MSG_NOSIGNAL
long rg_read_nb(int fd, void *buf, size_t len);
int rg_timerfd_create(void);                     // CLOCK_MONOTONIC, non-blocking
int rg_timerfd_arm_at(int fd, uint64_t deadline_ns);   // absolute monotonic; 0 disarms
long rg_nofile_limit(void);                      // RLIMIT_NOFILE's soft limit
#endif
