/* conn.c: the client's sockets: dialing with a timeout, and writing and reading whole frames
 * with poll(2) deadlines (DESIGN section 10, "Framing"). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_internal.h"

/* Splits "host:port" (the last colon separates; "[v6]:port" is accepted) into its parts. */
static int conn_split_address(const char *address, char *host, size_t host_cap, char *port,
                              size_t port_cap, weft_err *err) {
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || colon[1] == '\0') {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "addresses",
                            "address '%s' is not host:port; write it like 127.0.0.1:7400", address);
    }
    const char *h = address;
    size_t hlen = (size_t)(colon - address);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    size_t plen = strlen(colon + 1);
    if (hlen == 0 || hlen >= host_cap || plen >= port_cap) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "addresses",
                            "address '%s' has an empty or too long host or port", address);
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return 0;
}

/* Waits until fd is ready for `events` or the deadline passes. Returns 0, or -ETIMEDOUT, or
 * -errno. */
static int conn_wait(int fd, short events, uint64_t deadline_ms) {
    for (;;) {
        uint64_t now = weft_mono_ms();
        if (now >= deadline_ms) return -ETIMEDOUT;
        uint64_t left = deadline_ms - now;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0) return 0;
        if (n == 0) continue; /* re-check the deadline against the clock */
        if (errno != EINTR) return -errno;
    }
}

/* Connects one resolved address, non-blocking with a deadline, then switches it to blocking. */
static int conn_try_addr(const struct addrinfo *ai, uint64_t deadline_ms, int *fd_out) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) return -errno;
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) goto fail_errno;
    if (rc != 0) {
        rc = conn_wait(fd, POLLOUT, deadline_ms);
        if (rc != 0) goto fail_rc;
        int so_err = 0;
        socklen_t len = sizeof so_err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &len) != 0) goto fail_errno;
        if (so_err != 0) {
            rc = -so_err;
            goto fail_rc;
        }
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd_out = fd;
    return 0;
fail_errno:
    rc = -errno;
fail_rc:
    close(fd);
    return rc;
}

int client_conn_dial(const char *address, uint32_t timeout_ms, int *fd_out, weft_err *err) {
    WEFT_ASSERT(address != NULL && fd_out != NULL);
    char host[WEFT_CLIENT_ADDRESS_BYTES_MAX], port[16];
    int rc = conn_split_address(address, host, sizeof host, port, sizeof port, err);
    if (rc != 0) return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "cannot resolve '%s': %s", address,
                            gai_strerror(gai));
    }
    uint64_t deadline_ms = weft_mono_ms() + timeout_ms;
    rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = conn_try_addr(ai, deadline_ms, fd_out);
        if (rc == 0) break;
    }
    freeaddrinfo(res);
    if (rc == 0) return 0;
    if (rc == -ETIMEDOUT) {
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                            "connecting to %s took longer than %u ms; check that weftd runs "
                            "there and the network passes",
                            address, timeout_ms);
    }
    return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                        "cannot connect to %s: %s; check that weftd runs there with this "
                        "--listen address",
                        address, strerror(-rc));
}

int client_conn_write_all(int fd, const char *buf, size_t len, uint64_t deadline_ms,
                          weft_err *err) {
    WEFT_ASSERT(fd >= 0);
    WEFT_ASSERT(buf != NULL || len == 0);
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = conn_wait(fd, POLLOUT, deadline_ms);
            if (rc == -ETIMEDOUT) {
                return weft_err_set(err, WEFT_E_DEADLINE_EXCEEDED, "",
                                    "sending the request timed out; the outcome is unknown");
            }
            if (rc != 0) errno = -rc;
            if (rc == 0) continue;
        }
        return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "connection lost while sending: %s",
                            strerror(errno));
    }
    return 0;
}

/* Reads exactly `len` bytes before the deadline. */
static int conn_read_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline_ms, weft_err *err) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = recv(fd, buf + done, len - done, MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0) {
            return weft_err_set(err, WEFT_E_UNAVAILABLE, "",
                                "the server closed the connection before replying");
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "connection lost: %s",
                                strerror(errno));
        }
        int rc = conn_wait(fd, POLLIN, deadline_ms);
        if (rc == -ETIMEDOUT) {
            return weft_err_set(err, WEFT_E_DEADLINE_EXCEEDED, "",
                                "no reply before the call timeout; the outcome is unknown, "
                                "retry with the same request id");
        }
        if (rc != 0) {
            return weft_err_set(err, WEFT_E_UNAVAILABLE, "", "waiting for the reply: %s",
                                strerror(-rc));
        }
    }
    return 0;
}

int client_conn_read_frame(int fd, uint32_t frame_bytes_max, uint64_t deadline_ms,
                           uint8_t **frame_out, size_t *len_out, weft_err *err) {
    WEFT_ASSERT(fd >= 0 && frame_out != NULL && len_out != NULL);
    uint8_t prefix[WEFT_FRAME_HEADER_BYTES];
    int rc = conn_read_exact(fd, prefix, sizeof prefix, deadline_ms, err);
    if (rc != 0) return rc;
    uint32_t len = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 |
                   (uint32_t)prefix[2] << 8 | (uint32_t)prefix[3];
    if (len < CLIENT_FRAME_BYTES_MIN || len > frame_bytes_max) {
        return weft_err_set(err, WEFT_E_INTERNAL, "",
                            "the server sent a %u-byte frame, outside [%u, %u]; raise "
                            "frame_bytes_max if the server allows bigger frames",
                            len, CLIENT_FRAME_BYTES_MIN, frame_bytes_max);
    }
    uint8_t *frame = malloc(len);
    if (frame == NULL) {
        return weft_err_set(err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory for a %u-byte reply",
                            len);
    }
    rc = conn_read_exact(fd, frame, len, deadline_ms, err);
    if (rc != 0) {
        free(frame);
        return rc;
    }
    *frame_out = frame;
    *len_out = len;
    return 0;
}
