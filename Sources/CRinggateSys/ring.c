// The only file that includes <liburing.h>: its feature macros must not reach Swift.
#include <liburing.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "CRinggateSys.h"

const uint32_t RG_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
const uint32_t RG_CQE_F_MORE = IORING_CQE_F_MORE;
const uint32_t RG_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;

struct rg_ring {
    struct io_uring ring;
    unsigned int setup_flags;
    unsigned int inject_sq_full;   // tests: this many SQE requests fail as if the queue stayed full
};

struct rg_buf_ring {
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    uint8_t *buffers;
    size_t buffers_bytes;
    unsigned int count;
    unsigned int size;
    unsigned int mask;
    uint16_t group;
};

rg_ring *rg_ring_create(unsigned int entries, int *err_out) {
    rg_ring *r = calloc(1, sizeof *r);
    if (!r) { *err_out = -ENOMEM; return NULL; }
    const unsigned int attempts[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = attempts[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &r->ring, &p);
        if (rc == 0) { r->setup_flags = attempts[i]; return r; }
        if (rc != -EINVAL) break;   // EPERM, ENOSYS, ENOMEM: no plainer setup will help
    }
    free(r);
    *err_out = rc;
    return NULL;
}

void rg_ring_destroy(rg_ring *r) {
    if (!r) return;
    io_uring_queue_exit(&r->ring);
    free(r);
}

unsigned int rg_ring_features(const rg_ring *r) { return r->ring.features; }
unsigned int rg_ring_setup_flags(const rg_ring *r) { return r->setup_flags; }

static struct io_uring_sqe *get_sqe(rg_ring *r) {
    if (r->inject_sq_full > 0) { r->inject_sq_full--; return NULL; }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) {
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    return sqe;
}

#define PREP_OR_BUSY(r) struct io_uring_sqe *sqe = get_sqe(r); if (!sqe) return -EBUSY

int rg_prep_multishot_accept(rg_ring *r, int fd, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_prep_recv_multishot(rg_ring *r, int fd, uint16_t buf_group, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buf_group;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_prep_recv(rg_ring *r, int fd, void *buf, unsigned int len, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_recv(sqe, fd, buf, len, 0);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_prep_send(rg_ring *r, int fd, const void *buf, unsigned int len, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_prep_read(rg_ring *r, int fd, void *buf, unsigned int len, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_read(sqe, fd, buf, len, 0);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_prep_timeout(rg_ring *r, uint64_t ns, uint64_t user_data) {
    PREP_OR_BUSY(r);
    // The kernel reads the timespec when the SQE is submitted; with SQPOLL off that is during
    // our own submit call, so a per-ring scratch copy that outlives this call is enough.
    static __thread struct __kernel_timespec ts;
    ts.tv_sec = (long long)(ns / 1000000000ull);
    ts.tv_nsec = (long long)(ns % 1000000000ull);
    io_uring_prep_timeout(sqe, &ts, 0, 0);
    io_uring_sqe_set_data64(sqe, user_data);
    io_uring_submit(&r->ring);
    return 0;
}

int rg_prep_cancel_fd(rg_ring *r, int fd, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_prep_close(rg_ring *r, int fd, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_prep_poll_add(rg_ring *r, int fd, unsigned int events, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_poll_add(sqe, fd, events);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int rg_submit_and_wait(rg_ring *r, unsigned int wait_nr, uint64_t timeout_ns) {
    if (timeout_ns == 0) return io_uring_submit_and_wait(&r->ring, wait_nr);
    struct __kernel_timespec ts = {
        .tv_sec = (long long)(timeout_ns / 1000000000ull),
        .tv_nsec = (long long)(timeout_ns % 1000000000ull),
    };
    struct io_uring_cqe *cqe = NULL;
    return io_uring_submit_and_wait_timeout(&r->ring, &cqe, wait_nr, &ts, NULL);
}

int rg_submit(rg_ring *r) { return io_uring_submit(&r->ring); }

unsigned int rg_drain_cqes(rg_ring *r, rg_cqe *out, unsigned int max) {
    struct io_uring_cqe *cqe;
    unsigned int head, n = 0;
    io_uring_for_each_cqe(&r->ring, head, cqe) {
        if (n == max) break;
        out[n].user_data = cqe->user_data;
        out[n].res = cqe->res;
        out[n].flags = cqe->flags;
        n++;
    }
    io_uring_cq_advance(&r->ring, n);
    return n;
}

rg_buf_ring *rg_buf_ring_create(rg_ring *r, uint16_t group, unsigned int count,
                                unsigned int size, int *err_out) {
    if (count == 0 || (count & (count - 1)) != 0 || count > 32768) { *err_out = -EINVAL; return NULL; }
    rg_buf_ring *b = calloc(1, sizeof *b);
    if (!b) { *err_out = -ENOMEM; return NULL; }
    b->br_bytes = (size_t)count * sizeof(struct io_uring_buf);
    // liburing 2.3 has no io_uring_setup_buf_ring: map the ring memory and register it.
    b->br = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (b->br == MAP_FAILED) { *err_out = -errno; free(b); return NULL; }
    b->buffers_bytes = (size_t)count * size;
    b->buffers = mmap(NULL, b->buffers_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (b->buffers == MAP_FAILED) {
        *err_out = -errno;
        munmap(b->br, b->br_bytes);
        free(b);
        return NULL;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)b->br;
    reg.ring_entries = count;
    reg.bgid = group;
    int rc = io_uring_register_buf_ring(&r->ring, &reg, 0);
    if (rc < 0) {
        *err_out = rc;
        munmap(b->buffers, b->buffers_bytes);
        munmap(b->br, b->br_bytes);
        free(b);
        return NULL;
    }
    b->count = count;
    b->size = size;
    b->mask = (unsigned int)io_uring_buf_ring_mask(count);
    b->group = group;
    io_uring_buf_ring_init(b->br);
    for (unsigned int i = 0; i < count; i++) {
        io_uring_buf_ring_add(b->br, b->buffers + (size_t)i * size, size, (unsigned short)i, b->mask, (int)i);
    }
    io_uring_buf_ring_advance(b->br, (int)count);
    return b;
}

void rg_buf_ring_destroy(rg_ring *r, rg_buf_ring *b) {
    if (!b) return;
    io_uring_unregister_buf_ring(&r->ring, b->group);
    munmap(b->buffers, b->buffers_bytes);
    munmap(b->br, b->br_bytes);
    free(b);
}

uint8_t *rg_buf_ring_buffer(rg_buf_ring *b, uint16_t bid) {
    return b->buffers + (size_t)bid * b->size;
}

void rg_buf_ring_recycle(rg_buf_ring *b, uint16_t bid) {
    io_uring_buf_ring_add(b->br, b->buffers + (size_t)bid * b->size, b->size, bid, b->mask, 0);
    io_uring_buf_ring_advance(b->br, 1);
}

// ---------------------------------------------------------------------------------------------
// Added for the HTTP limits work (issue 10).

int rg_prep_cancel_user_data(rg_ring *r, uint64_t target, uint64_t user_data) {
    PREP_OR_BUSY(r);
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

void rg_ring_inject_sq_full(rg_ring *r, unsigned int count) { r->inject_sq_full = count; }

