/*
 * The loopback floor for Benchmarks/compare: a server that speaks just enough of the Callgate framing
 * (proto/README.md) for `callgate load` to drive it, and does no work at all.
 *
 * Single thread, epoll, non-blocking sockets, TCP_NODELAY. For every 4-byte big-endian length-prefixed
 * frame it reads, it answers one frame: a Response carrying the request's request_id (field 1) and
 *   - for `hello` (field 10): HelloResponse{protocol_version: 1, role: ADMIN, max_frame_bytes: 1 MiB};
 *   - for anything else: a fixed AuthorizeCallResponse of the size of a real ALLOW
 *     (verdict ALLOW, caller_id +14155550100, destination_country US, count, limit 1,000,000, remaining,
 *     resets_at_ms), i.e. 46–48 bytes on the wire like callgated's.
 * Replies to one read are written with one write(), as callgated does with one read burst.
 *
 * Build: gcc -O2 -o echo echo.c        Run: ./echo PORT   (binds 127.0.0.1; PORT 0 picks one and prints it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (1u << 20)

typedef struct {
    int fd;
    unsigned char *in;
    size_t in_len, in_cap;
    unsigned char *out;
    size_t out_off, out_len, out_cap;
    int want_out;
} conn;

/* AuthorizeCallResponse (field 11 of Response) of an ALLOW: 38 bytes. */
static const unsigned char authorize_body[] = {
    0x08, 0x01,                                                             /* verdict ALLOW */
    0x1a, 0x0c, '+', '1', '4', '1', '5', '5', '5', '5', '0', '1', '0', '0', /* caller_id */
    0x22, 0x02, 'U', 'S',                                                   /* destination_country */
    0x28, 0x96, 0x01,                                                       /* count 150 */
    0x30, 0xc0, 0x84, 0x3d,                                                 /* limit 1,000,000 */
    0x38, 0xaa, 0x83, 0x3d,                                                 /* remaining 999,850 */
    0x40, 0x80, 0xf8, 0xe6, 0xa5, 0x8f, 0x34,                               /* resets_at_ms ~1.8e12 */
};
/* HelloResponse (field 10): protocol_version 1, organization_id 1, role ADMIN (1), max_frame_bytes 1 MiB. */
static const unsigned char hello_body[] = {0x08, 0x01, 0x10, 0x01, 0x20, 0x01, 0x30, 0x80, 0x80, 0x40};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void reserve(unsigned char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    unsigned char *p = realloc(*buf, n);
    if (!p) die("realloc");
    *buf = p;
    *cap = n;
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

/* Reads request_id and the method's field number from a Request body (protobuf). */
static void parse_request(const unsigned char *p, size_t n, uint64_t *id, unsigned *method) {
    size_t i = 0;
    *id = 0;
    *method = 0;
    while (i < n) {
        uint64_t key = 0;
        int shift = 0;
        while (i < n && shift < 64) {
            unsigned char b = p[i++];
            key |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            if (b < 0x80) break;
        }
        unsigned field = (unsigned)(key >> 3), type = (unsigned)(key & 7);
        if (type == 0) {
            uint64_t v = 0;
            shift = 0;
            while (i < n && shift < 64) {
                unsigned char b = p[i++];
                v |= (uint64_t)(b & 0x7f) << shift;
                shift += 7;
                if (b < 0x80) break;
            }
            if (field == 1) *id = v;
        } else if (type == 2) {
            uint64_t len = 0;
            shift = 0;
            while (i < n && shift < 64) {
                unsigned char b = p[i++];
                len |= (uint64_t)(b & 0x7f) << shift;
                shift += 7;
                if (b < 0x80) break;
            }
            if (*method == 0) *method = field;
            if (len > n - i) return;
            i += len;
        } else if (type == 1) {
            i += 8;
        } else if (type == 5) {
            i += 4;
        } else {
            return;
        }
    }
}

static void append_reply(conn *c, uint64_t id, unsigned method) {
    const unsigned char *body = method == 10 ? hello_body : authorize_body;
    size_t body_len = method == 10 ? sizeof hello_body : sizeof authorize_body;
    unsigned char frame[128];
    size_t n = 4;
    if (id != 0) {
        frame[n++] = 0x08;
        n += put_varint(frame + n, id);
    }
    frame[n++] = (unsigned char)((method == 10 ? 10 : 11) << 3 | 2);
    n += put_varint(frame + n, body_len);
    memcpy(frame + n, body, body_len);
    n += body_len;
    uint32_t len = (uint32_t)(n - 4);
    frame[0] = (unsigned char)(len >> 24);
    frame[1] = (unsigned char)(len >> 16);
    frame[2] = (unsigned char)(len >> 8);
    frame[3] = (unsigned char)len;
    reserve(&c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, frame, n);
    c->out_len += n;
}

static void close_conn(int ep, conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Writes what is pending; returns -1 when the connection is dead. */
static int flush_out(int ep, conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0) {
            c->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
    int want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return 0;
}

static int handle_read(conn *c) {
    for (;;) {
        reserve(&c->in, &c->in_cap, c->in_len + 65536);
        size_t avail = c->in_cap - c->in_len;
        ssize_t r = read(c->fd, c->in + c->in_len, avail);
        if (r > 0) {
            c->in_len += (size_t)r;
            if ((size_t)r < avail) break; /* drained the socket */
            continue;
        }
        if (r == 0) return -1;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return -1;
    }
    size_t off = 0;
    while (c->in_len - off >= 4) {
        const unsigned char *p = c->in + off;
        uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (len > MAX_FRAME) return -1;
        if (c->in_len - off - 4 < len) break;
        uint64_t id;
        unsigned method;
        parse_request(p + 4, len, &id, &method);
        append_reply(c, id, method);
        off += 4 + (size_t)len;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(ls, 1024) < 0) die("listen");
    socklen_t alen = sizeof addr;
    getsockname(ls, (struct sockaddr *)&addr, &alen);
    fprintf(stderr, "echo: listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *nc = calloc(1, sizeof *nc);
                    if (!nc) die("calloc");
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                close_conn(ep, c);
                continue;
            }
            if ((events[i].events & EPOLLIN) && handle_read(c) < 0) {
                close_conn(ep, c);
                continue;
            }
            if (flush_out(ep, c) < 0) close_conn(ep, c);
        }
    }
}
