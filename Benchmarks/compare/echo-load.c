/*
 * A minimal C load client for Benchmarks/compare/echo.c: the loopback floor with a load generator as light
 * as redis-benchmark and pgbench (which drive Redis and PostgreSQL), next to the same server driven by
 * `callgate load`.
 *
 * One thread, epoll. C connections, each keeping D requests in flight (closed loop: a new request leaves
 * when an answer arrives). Requests are Callgate AuthorizeCall frames of the size `callgate load` sends
 * (Request{request_id, authorize_call{agent_id "load-agent-<n>", destination "+1212…"}}); the echo server
 * answers each with a fixed AuthorizeCallResponse frame, in order per connection, so latency is taken from
 * a per-connection ring of send times. Latency histogram: 100 ns buckets up to 100 ms.
 *
 * Build: gcc -O2 -o echo-load echo-load.c
 * Run:   ./echo-load PORT CONNECTIONS DEPTH SECONDS [WARMUP_SECONDS]
 * Prints: throughput=<req/s> p50_us=<µs> p99_us=<µs> requests=<n> seconds=<s>
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUCKET_NS 100
#define BUCKETS 1000000 /* 100 ms */

typedef struct {
    int fd;
    int depth;
    uint64_t *sent; /* ring of send times, depth entries */
    int head, count;
    uint64_t next_id;
    unsigned char in[65536];
    size_t in_len;
} conn;

static uint64_t hist[BUCKETS + 1];
static uint64_t measured;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (unsigned char)v;
    return i;
}

/* One AuthorizeCall request frame for agent `agent`. */
static size_t make_request(unsigned char *frame, uint64_t id, unsigned agent) {
    char agent_id[32], destination[16];
    int alen = snprintf(agent_id, sizeof agent_id, "load-agent-%u", agent);
    int dlen = snprintf(destination, sizeof destination, "+1212%03u%04u", 200 + agent % 300, (agent * 7919u) % 10000);
    unsigned char body[96];
    size_t b = 0;
    body[b++] = 0x0a;
    body[b++] = (unsigned char)alen;
    memcpy(body + b, agent_id, (size_t)alen);
    b += (size_t)alen;
    body[b++] = 0x12;
    body[b++] = (unsigned char)dlen;
    memcpy(body + b, destination, (size_t)dlen);
    b += (size_t)dlen;
    size_t n = 4;
    frame[n++] = 0x08;
    n += put_varint(frame + n, id);
    frame[n++] = 0x5a; /* field 11, length-delimited */
    n += put_varint(frame + n, b);
    memcpy(frame + n, body, b);
    n += b;
    uint32_t len = (uint32_t)(n - 4);
    frame[0] = (unsigned char)(len >> 24);
    frame[1] = (unsigned char)(len >> 16);
    frame[2] = (unsigned char)(len >> 8);
    frame[3] = (unsigned char)len;
    return n;
}

static uint32_t rng = 2463534242u;
static unsigned next_agent(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng % 10000;
}

/* Sends `k` requests on `c` in one write. */
static void send_requests(conn *c, int k) {
    unsigned char buf[128 * 64];
    size_t n = 0;
    uint64_t t = now_ns();
    while (k > 0) {
        int batch = k > 64 ? 64 : k;
        n = 0;
        for (int i = 0; i < batch; i++) {
            n += make_request(buf + n, ++c->next_id, next_agent());
            c->sent[(c->head + c->count) % c->depth] = t;
            c->count++;
        }
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(c->fd, buf + off, n - off);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno == EINTR) {
                continue;
            } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                /* Tiny frames and a window of at most `depth`: the socket buffer never fills in practice. */
                struct timespec ts = {0, 10000};
                nanosleep(&ts, NULL);
            } else {
                die("write");
            }
        }
        k -= batch;
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: echo-load PORT CONNECTIONS DEPTH SECONDS [WARMUP_SECONDS]\n");
        return 2;
    }
    int port = atoi(argv[1]), nconn = atoi(argv[2]), depth = atoi(argv[3]);
    double seconds = atof(argv[4]), warmup = argc > 5 ? atof(argv[5]) : 1;
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (!conns) die("calloc");
    int one = 1;
    for (int i = 0; i < nconn; i++) {
        conn *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0) die("socket");
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->depth = depth;
        c->sent = calloc((size_t)depth, sizeof *c->sent);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t start = now_ns();
    uint64_t measure_from = start + (uint64_t)(warmup * 1e9);
    uint64_t measure_to = measure_from + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < nconn; i++) send_requests(&conns[i], depth);

    struct epoll_event events[256];
    uint64_t now = start;
    while (now < measure_to) {
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < n; e++) {
            conn *c = events[e].data.ptr;
            ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
            if (r == 0) {
                fprintf(stderr, "echo-load: the server closed a connection\n");
                return 1;
            }
            if (r < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                die("read");
            }
            c->in_len += (size_t)r;
            now = now_ns();
            int answered = 0;
            size_t off = 0;
            while (c->in_len - off >= 4) {
                const unsigned char *p = c->in + off;
                uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
                if (c->in_len - off - 4 < len) break;
                off += 4 + (size_t)len;
                uint64_t sent = c->sent[c->head];
                c->head = (c->head + 1) % c->depth;
                c->count--;
                answered++;
                if (sent >= measure_from && now <= measure_to) {
                    uint64_t b = (now - sent) / BUCKET_NS;
                    hist[b > BUCKETS ? BUCKETS : b]++;
                    measured++;
                }
            }
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
            if (answered > 0 && now < measure_to) send_requests(c, answered);
        }
        if (n == 0) now = now_ns();
    }
    uint64_t p50 = 0, p99 = 0, seen = 0;
    int have50 = 0;
    for (uint64_t b = 0; b <= BUCKETS; b++) {
        seen += hist[b];
        if (!have50 && seen * 100 >= measured * 50) {
            p50 = b;
            have50 = 1;
        }
        if (seen * 100 >= measured * 99) {
            p99 = b;
            break;
        }
    }
    /* Counted: requests sent and answered inside the measured window (those in flight at its edges, at
       most connections × depth, are left out). */
    printf("throughput=%.1f p50_us=%.1f p99_us=%.1f requests=%llu seconds=%.2f\n", (double)measured / seconds,
           (double)(p50 * BUCKET_NS + BUCKET_NS / 2) / 1000.0, (double)(p99 * BUCKET_NS + BUCKET_NS / 2) / 1000.0,
           (unsigned long long)measured, seconds);
    return 0;
}
