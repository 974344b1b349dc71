#define _GNU_SOURCE
#include "CRinggateSys.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/sockios.h>

extern char **environ;

int rg_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int rg_eventfd(unsigned int initval, int nonblock) {
    return eventfd(initval, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0));
}

int rg_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    return n == (ssize_t)sizeof one ? 0 : -1;
}

int rg_clear_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

int rg_set_pdeathsig(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

int rg_set_process_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }

int rg_spawn(const char *path, char *const argv[], int *pid_out) {
    pid_t pid;
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Children start with default signal dispositions and an empty mask, whatever the
    // supervisor blocked for its own signal handling.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn(&pid, path, NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) { errno = rc; return -1; }
    *pid_out = pid;
    return 0;
}

int rg_waitpid_nohang(int *status_out) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) *status_out = status;
    return pid;
}
int rg_wifexited(int status) { return WIFEXITED(status); }
int rg_wexitstatus(int status) { return WEXITSTATUS(status); }
int rg_wifsignaled(int status) { return WIFSIGNALED(status); }
int rg_wtermsig(int status) { return WTERMSIG(status); }

uint64_t rg_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
uint64_t rg_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
int rg_getrandom(void *buf, size_t len) {
    ssize_t n = getrandom(buf, len, 0);
    return n == (ssize_t)len ? 0 : -1;
}

static int fill_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof *in4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return AF_INET6;
    }
    errno = EINVAL;
    return -1;
}

int rg_listen_tcp(const char *host, int port, int backlog, int reuseport) {
    struct sockaddr_storage ss;
    socklen_t len;
    int family = fill_addr(host, port, &ss, &len);
    if (family < 0) return -1;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) goto fail;
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) goto fail;
    if (listen(fd, backlog) < 0) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int rg_local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    errno = EAFNOSUPPORT;
    return -1;
}

int rg_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags);
}

int rg_tune_accepted(int fd, int nodelay, unsigned int user_timeout_ms,
                     int keepalive_idle_s, int keepalive_intvl_s, int keepalive_cnt) {
    int rc = 0;
    if (nodelay) {
        int one = 1;
        rc |= setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (user_timeout_ms > 0) {
        rc |= setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
    }
    if (keepalive_idle_s > 0) {
        int one = 1;
        rc |= setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        rc |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keepalive_idle_s, sizeof keepalive_idle_s);
        rc |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keepalive_intvl_s, sizeof keepalive_intvl_s);
        rc |= setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keepalive_cnt, sizeof keepalive_cnt);
    }
    return rc ? -1 : 0;
}

int rg_outq_bytes(int fd) {
    int n = 0;
    if (ioctl(fd, SIOCOUTQ, &n) < 0) return -1;
    return n;
}

int rg_connect_tcp(const char *host, int port) {
    return rg_connect_tcp_timeout(host, port, 0);
}

int rg_connect_tcp_timeout(const char *host, int port, int timeout_ms) {
    struct sockaddr_storage ss;
    socklen_t len;
    int family = fill_addr(host, port, &ss, &len);
    if (family < 0) return -1;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (timeout_ms > 0 ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    if (rc < 0 && timeout_ms > 0 && errno == EINPROGRESS) {
        // Wait for the handshake up to the deadline; SO_ERROR then says how it ended.
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n;
        do { n = poll(&p, 1, timeout_ms); } while (n < 0 && errno == EINTR);
        if (n == 0) {
            errno = ETIMEDOUT;
        } else if (n > 0) {
            int err = 0;
            socklen_t el = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) rc = 0;
            else errno = err ? err : EIO;
        }
    }
    if (rc < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (timeout_ms > 0) {
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    return fd;
}

int rg_set_recv_timeout_ms(int fd, int ms) {
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// ---------------------------------------------------------------------------------------------
// Added for the HTTP limits work (issue 10).

int rg_accept_nonblock(int listen_fd) {
    return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int rg_open_reserve_fd(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }
