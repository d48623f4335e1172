/* udpflood: a bounded UDP sender for bench/forwarding.py.
 *
 * Sends LEN-byte UDP payloads to DST:PORT with sendmmsg(2) in batches of 64
 * for SECONDS seconds, then prints one JSON line:
 *   {"sent": N, "errors": E, "seconds": S, "cpu_s": C}
 * (C: its own user + system CPU seconds, from getrusage).
 * With LEN = 18 every frame is 60 bytes on the wire plus the 4-byte FCS a
 * real NIC would add: the classic 64-byte frame.  It stops by itself; the
 * caller also bounds it with a timeout.
 *
 * Build: cc -O2 -o udpflood udpflood.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double elapsed(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: udpflood DST PORT SECONDS LEN\n");
        return 2;
    }
    int len = atoi(argv[4]);
    double seconds = atof(argv[3]);
    if (len < 0 || len > 1472 || seconds <= 0 || seconds > 3600) {
        fprintf(stderr, "udpflood: LEN must be 0..1472 and SECONDS 0..3600\n");
        return 2;
    }
    struct sockaddr_storage to;
    socklen_t tolen;
    memset(&to, 0, sizeof to);
    unsigned short port = htons((unsigned short)atoi(argv[2]));
    struct sockaddr_in *to4 = (struct sockaddr_in *)&to;
    struct sockaddr_in6 *to6 = (struct sockaddr_in6 *)&to;
    if (inet_pton(AF_INET, argv[1], &to4->sin_addr) == 1) {
        to4->sin_family = AF_INET;
        to4->sin_port = port;
        tolen = sizeof *to4;
    } else if (inet_pton(AF_INET6, argv[1], &to6->sin6_addr) == 1) {
        to6->sin6_family = AF_INET6;
        to6->sin6_port = port;
        tolen = sizeof *to6;
    } else {
        fprintf(stderr, "udpflood: bad address %s\n", argv[1]);
        return 2;
    }
    int s = socket(to.ss_family, SOCK_DGRAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&to, tolen) < 0) {
        perror("udpflood: socket/connect");
        return 1;
    }
    static char buf[1472];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = buf;
        iov[i].iov_len = (size_t)len;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long long sent = 0, errors = 0;
    double took;
    while ((took = elapsed(&t0)) < seconds) {
        int n = sendmmsg(s, msgs, BATCH, 0);
        if (n < 0)
            errors++; /* ENOBUFS/ECONNREFUSED: counted, the flood goes on */
        else
            sent += (unsigned long long)n;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("{\"sent\": %llu, \"errors\": %llu, \"seconds\": %.6f, \"cpu_s\": %.6f}\n",
           sent, errors, took, cpu);
    return 0;
}
