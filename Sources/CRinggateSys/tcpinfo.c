// <linux/tcp.h> has the full struct tcp_info (with tcpi_bytes_acked) but clashes with
// <netinet/tcp.h>, so it lives alone in this file.
#include "CRinggateSys.h"
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <string.h>

int rg_tcp_progress_read(int fd, rg_tcp_progress *out) {
    struct tcp_info info;
    memset(&info, 0, sizeof info);
    socklen_t len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return -1;
    out->bytes_acked = info.tcpi_bytes_acked;
    out->state = info.tcpi_state;
    out->unacked = info.tcpi_unacked;
    out->rto_us = info.tcpi_rto;
    out->retransmits = info.tcpi_retransmits;
    out->notsent = info.tcpi_notsent_bytes;
    return 0;
}
