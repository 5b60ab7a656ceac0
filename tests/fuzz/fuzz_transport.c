/* fuzz_transport.c: the raft port's preamble (raft/transport.c), as a peer sends it. Each input
 * is the whole byte stream one TCP connection sends to a real listener on 127.0.0.1 with two
 * groups registered; the writer then half-closes. The listener either hands the stream to raft
 * (our accept callback stands in for raft_uv) or closes it. Beyond "no crash", it checks:
 *   - a stream is accepted only when its first WEFT_RAFT_PREAMBLE_BYTES are a sound preamble
 *     for a registered group of this cluster, and the callback gets the id and address in it;
 *   - raft receives exactly the bytes after the preamble, not one byte more or less. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "proto/base.h"
#include "proto/log.h"
#include "raft/transport.h"

/* Cluster id and groups the listener serves. */
#define FT_CLUSTER_ID "fuzz-cluster"
#define FT_GROUPS 2u
/* Longest a connection may take from connect to close on loopback before it is a hang. The
 * listener's own preamble timeout is longer, but the writer always half-closes. */
#define FT_DEADLINE_MS 5000u

typedef struct ft_state {
    uv_loop_t loop;                                 /* runs the listener and our peer */
    weft_raft_listener *listener;                   /* the raft port under test */
    struct raft_uv_transport transports[FT_GROUPS]; /* groups 1..FT_GROUPS, listening */
    struct sockaddr_in addr;                        /* where the listener listens */
    /* per input */
    const uint8_t *data;      /* the input: what our peer sends */
    size_t size;              /* its bytes */
    uv_tcp_t client;          /* our peer's end */
    uv_connect_t connect;     /* its connect request */
    uv_write_t write;         /* its one write */
    uv_shutdown_t shutdown;   /* its half-close after the write */
    bool client_eof;          /* the listener closed (or reset) the connection */
    bool client_closed;       /* our end's close callback ran */
    bool accepted;            /* the accept callback ran */
    uint32_t accepted_group;  /* the group whose transport accepted */
    uv_stream_t *raft_stream; /* what raft would have been handed */
    uint8_t *raft_bytes;      /* what it read until EOF (malloc'd) */
    size_t raft_len;          /* bytes in raft_bytes */
    bool raft_eof;            /* raft's stream reached the peer's EOF */
    bool raft_closed;         /* raft's stream's close callback ran */
    bool done;                /* every handle of this input closed */
} ft_state;

static ft_state ft;

static uint64_t ft_be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Our own reading of the layout in transport.h: is this preamble one the listener must take? */
static bool ft_preamble_sound(const uint8_t *p, size_t len) {
    if (len < WEFT_RAFT_PREAMBLE_BYTES) return false;
    if (ft_be(p, 8) != WEFT_RAFT_PREAMBLE_MAGIC || ft_be(p + 8, 4) != WEFT_RAFT_PREAMBLE_VERSION)
        return false;
    if (memchr(p + 24, 0, WEFT_RAFT_PREAMBLE_CLUSTER_BYTES) == NULL ||
        memchr(p + 88, 0, WEFT_RAFT_PREAMBLE_ADDRESS_BYTES) == NULL)
        return false;
    if (ft_be(p + 152, 8) != 0 || ft_be(p + 16, 8) == 0 || p[88] == 0) return false;
    if (strcmp((const char *)p + 24, FT_CLUSTER_ID) != 0) return false;
    uint64_t group = ft_be(p + 12, 4);
    return group >= 1 && group <= FT_GROUPS;
}

static void ft_check_done(void) {
    ft.done = ft.client_closed && (!ft.accepted || ft.raft_closed);
}

static void ft_raft_closed_cb(uv_handle_t *h) {
    raft_free(h); /* as raft_uv does with the streams it is handed */
    ft.raft_closed = true;
    ft_check_done();
}

static void ft_raft_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static char chunk[65536];
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void ft_raft_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    if (nread == 0) return;
    if (nread < 0) {
        ft.raft_eof = true;
        uv_close((uv_handle_t *)s, ft_raft_closed_cb);
        return;
    }
    uint8_t *grown = realloc(ft.raft_bytes, ft.raft_len + (size_t)nread);
    WEFT_ASSERT(grown != NULL);
    ft.raft_bytes = grown;
    memcpy(ft.raft_bytes + ft.raft_len, buf->base, (size_t)nread);
    ft.raft_len += (size_t)nread;
}

static void ft_accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                         uv_stream_t *stream) {
    WEFT_ASSERT(!ft.accepted);
    ft.accepted = true;
    ft.accepted_group = (uint32_t)(t - ft.transports) + 1;
    /* The callback must name what the preamble says. */
    WEFT_ASSERT(ft_preamble_sound(ft.data, ft.size));
    WEFT_ASSERT(id == ft_be(ft.data + 16, 8));
    WEFT_ASSERT(strcmp(address, (const char *)ft.data + 88) == 0);
    WEFT_ASSERT(ft.accepted_group == ft_be(ft.data + 12, 4));
    ft.raft_stream = stream;
    int rc = uv_read_start(stream, ft_raft_alloc_cb, ft_raft_read_cb);
    WEFT_ASSERT(rc == 0);
}

static void ft_client_closed_cb(uv_handle_t *h) {
    (void)h;
    ft.client_closed = true;
    ft_check_done();
}

static void ft_client_close(void) {
    if (!uv_is_closing((uv_handle_t *)&ft.client))
        uv_close((uv_handle_t *)&ft.client, ft_client_closed_cb);
}

static void ft_client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    static char sink[4096];
    *buf = uv_buf_init(sink, sizeof sink);
}

static void ft_client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)s;
    (void)buf;
    /* The listener never writes to a peer; anything but the end of the stream is a bug. */
    WEFT_ASSERT(nread <= 0);
    if (nread < 0) {
        ft.client_eof = true;
        ft_client_close();
    }
}

static void ft_shutdown_cb(uv_shutdown_t *req, int status) {
    (void)req;
    (void)status; /* the listener may already have closed: that is an answer too; our end
                   * closes when it reads the listener's (or raft's) end of the stream */
}

static void ft_write_cb(uv_write_t *req, int status) {
    (void)req;
    if (status < 0) {
        ft_client_close(); /* reset by the listener after a refused preamble */
        return;
    }
    int rc = uv_shutdown(&ft.shutdown, (uv_stream_t *)&ft.client, ft_shutdown_cb);
    if (rc != 0) ft_client_close();
}

static void ft_connect_cb(uv_connect_t *req, int status) {
    (void)req;
    WEFT_ASSERT(status == 0);
    int rc = uv_read_start((uv_stream_t *)&ft.client, ft_client_alloc_cb, ft_client_read_cb);
    WEFT_ASSERT(rc == 0);
    if (ft.size == 0) {
        ft_write_cb(&ft.write, 0); /* nothing to send: straight to the half-close */
        return;
    }
    uv_buf_t b = uv_buf_init((char *)ft.data, (unsigned)ft.size);
    rc = uv_write(&ft.write, (uv_stream_t *)&ft.client, &b, 1, ft_write_cb);
    if (rc != 0) ft_client_close();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    weft_log_set_level(WEFT_LOG_ERROR);
    int rc = uv_loop_init(&ft.loop);
    WEFT_ASSERT(rc == 0);
    weft_err err = {0};
    rc = weft_raft_listener_init(&ft.listener, &ft.loop, "127.0.0.1:0", FT_CLUSTER_ID, &err);
    if (rc != 0) {
        fprintf(stderr, "fuzz_transport: %s\n", err.message);
        abort();
    }
    for (uint32_t g = 0; g < FT_GROUPS; g++) {
        struct raft_uv_transport *t = &ft.transports[g];
        rc = weft_raft_transport_init(t, ft.listener, g + 1, &err);
        WEFT_ASSERT(rc == 0);
        rc = t->init(t, 1, weft_raft_listener_address(ft.listener));
        WEFT_ASSERT(rc == 0);
        rc = t->listen(t, ft_accept_cb);
        WEFT_ASSERT(rc == 0);
    }
    rc = weft_raft_address_parse(weft_raft_listener_address(ft.listener), &ft.addr, &err);
    WEFT_ASSERT(rc == 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ft.data = data;
    ft.size = size;
    ft.client_eof = ft.client_closed = ft.accepted = ft.raft_eof = ft.raft_closed = false;
    ft.raft_bytes = NULL;
    ft.raft_len = 0;
    ft.raft_stream = NULL;
    ft.done = false;
    int rc = uv_tcp_init(&ft.loop, &ft.client);
    WEFT_ASSERT(rc == 0);
    rc = uv_tcp_connect(&ft.connect, &ft.client, (const struct sockaddr *)&ft.addr, ft_connect_cb);
    WEFT_ASSERT(rc == 0);
    fuzz_loop_until(&ft.loop, &ft.done, FT_DEADLINE_MS, "a raft port connection");
    /* Accepted exactly when sound, and raft got the rest of the stream untouched. */
    WEFT_ASSERT(ft.accepted == ft_preamble_sound(data, size));
    if (ft.accepted) {
        WEFT_ASSERT(ft.raft_len == size - WEFT_RAFT_PREAMBLE_BYTES);
        WEFT_ASSERT(ft.raft_len == 0 ||
                    memcmp(ft.raft_bytes, data + WEFT_RAFT_PREAMBLE_BYTES, ft.raft_len) == 0);
    }
    free(ft.raft_bytes);
    ft.raft_bytes = NULL;
    return 0;
}
