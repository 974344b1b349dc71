// The epoll backend's syscalls (EpollBackend.swift). Each returns the result or -errno, so the
// Swift side never reads errno after another call could have changed it.
#define _GNU_SOURCE
#include "CRinggateSys.h"
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

int rg_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rg_epoll_add_edge(int epfd, int fd) {
    struct epoll_event ev = {
        // EPOLLPRI: TCP ends a read at the urgent mark with more bytes queued (EpollBackend).
        .events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)(uint32_t)fd,
    };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
    // The same open file registered before its state was forgotten (a close elsewhere).
    if (errno == EEXIST && epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    return -errno;
}

int rg_epoll_wait(int epfd, rg_epoll_ready *out, int max, int64_t timeout_ns) {
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int timeout_ms = -1;
    if (timeout_ns == 0) {
        timeout_ms = 0;
    } else if (timeout_ns > 0) {
        int64_t ms = (timeout_ns + 999999) / 1000000;   // round up: never return before the timeout
        timeout_ms = ms > 0x7fffffff ? 0x7fffffff : (int)ms;
    }
    int n = epoll_wait(epfd, events, max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = events[i].events;
        out[i].fd = (int32_t)events[i].data.u64;
        out[i].ready = ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ? RG_READY_READ : 0)
                     | ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ? RG_READY_WRITE : 0)
                     | ((e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ? RG_READY_HANGUP : 0)
                     | ((e & EPOLLPRI) ? (RG_READY_READ | RG_READY_URGENT) : 0);
    }
    return n;
}

int rg_accept_nb(int listen_fd) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

long rg_recv_nb(int fd, void *buf, size_t len) {
    ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
    return n < 0 ? -errno : (long)n;
}

long rg_send_nb(int fd, const void *buf, size_t len) {
    ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 ? -errno : (long)n;
}

long rg_read_nb(int fd, void *buf, size_t len) {
    ssize_t n = read(fd, buf, len);
    return n < 0 ? -errno : (long)n;
}

int rg_timerfd_create(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rg_timerfd_arm_at(int fd, uint64_t deadline_ns) {
    struct itimerspec spec = {0};
    if (deadline_ns == 0) {
        // it_value zero disarms.
    } else {
        spec.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ull);
        spec.it_value.tv_nsec = (long)(deadline_ns % 1000000000ull);
    }
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL) == 0 ? 0 : -errno;
}

long rg_nofile_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    return rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : (long)rl.rlim_cur;
}
