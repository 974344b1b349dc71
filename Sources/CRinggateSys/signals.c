#include "CRinggateSys.h"
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_int flags_seen;

static void on_term(int sig) { atomic_fetch_or(&flags_seen, sig == SIGINT ? (RG_SIG_TERM | RG_SIG_INT) : RG_SIG_TERM); }
static void on_chld(int sig) { (void)sig; atomic_fetch_or(&flags_seen, RG_SIG_CHLD); }

int rg_install_signal_flags(int want_chld) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_term;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) return -1;
    if (want_chld) {
        sa.sa_handler = on_chld;
        sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
        if (sigaction(SIGCHLD, &sa, NULL) < 0) return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int rg_signal_take(void) { return atomic_exchange(&flags_seen, 0); }

int rg_shutdown(int fd, int how) {
    return shutdown(fd, how == 0 ? SHUT_RD : how == 1 ? SHUT_WR : SHUT_RDWR);
}

int rg_close(int fd) { return close(fd); }
