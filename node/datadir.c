/* datadir.c: the data dir's lock, weft.meta (written atomically: tmp, fsync, rename, dir fsync)
 * and the per-shard directories. The identity in weft.meta is fixed at creation; a later start
 * with another shard count, node id, peer list or replication factor is refused with a message
 * that names the setting and says what to fix. Every shard gets its directories, also those
 * placement puts on other nodes (they stay empty), so the layout does not depend on placement. */
#include "datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../proto/base.h"
#include "ids.h"

#define DATADIR_META_NAME "weft.meta"
#define DATADIR_LOCK_NAME "LOCK"
/* Largest weft.meta we accept: it holds a handful of short lines. */
#define DATADIR_META_BYTES_MAX 4096u

static int datadir_io_err(weft_err *err, const char *what, const char *path) {
    return weft_err_set(err, WEFT_E_INTERNAL, "", "%s %s: %s; check the path and its permissions",
                        what, path, strerror(errno));
}

/* mkdir -p: creates each missing component of `path`. */
static int datadir_mkdirs(const char *path, weft_err *err) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    WEFT_ASSERT(n > 0 && n < sizeof buf);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return datadir_io_err(err, "cannot create", buf);
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0) return datadir_io_err(err, "cannot stat", path);
    if (!S_ISDIR(st.st_mode)) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "data",
                            "%s is not a directory; point --data at a directory", path);
    }
    return 0;
}

static int datadir_join(char *out, size_t cap, const char *a, const char *b) {
    int n = snprintf(out, cap, "%s/%s", a, b);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static int datadir_lock(weft_datadir *d, weft_err *err) {
    char path[PATH_MAX];
    if (datadir_join(path, sizeof path, d->path, DATADIR_LOCK_NAME) != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data", "--data path is too long");
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return datadir_io_err(err, "cannot open", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "data",
                                "data dir %s is in use by another weftd (%s is locked); stop that "
                                "process or point --data at another directory",
                                d->path, path);
        }
        errno = e;
        return datadir_io_err(err, "cannot lock", path);
    }
    d->lock_fd = fd;
    return 0;
}

static int datadir_fsync_dir(const char *dir, weft_err *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return datadir_io_err(err, "cannot open", dir);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) {
        errno = e;
        return datadir_io_err(err, "cannot fsync", dir);
    }
    return 0;
}

static int datadir_write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int weft_datadir_path(const weft_datadir *d, const char *name, char *out, size_t cap) {
    WEFT_ASSERT(d != NULL && name != NULL && out != NULL);
    WEFT_ASSERT(d->path[0] != '\0');
    return datadir_join(out, cap, d->path, name);
}

int weft_datadir_file_write(const weft_datadir *d, const char *name, const char *text, size_t len,
                            weft_err *err) {
    WEFT_ASSERT(d != NULL && name != NULL && text != NULL);
    WEFT_ASSERT(strchr(name, '/') == NULL); /* a file of the data dir itself */
    char tmp[PATH_MAX], final[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s/%s.tmp", d->path, name);
    if (n < 0 || (size_t)n >= sizeof tmp || weft_datadir_path(d, name, final, sizeof final) != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data", "--data path is too long");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return datadir_io_err(err, "cannot create", tmp);
    /* Never retry the fsync (STYLE rule 10): a failure leaves the old file in place. */
    if (datadir_write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return datadir_io_err(err, "cannot write", tmp);
    }
    close(fd);
    if (rename(tmp, final) != 0) return datadir_io_err(err, "cannot rename to", final);
    return datadir_fsync_dir(d->path, err);
}

/* Appends one "peer = id=raft address" line per node of the canonical list: one line each,
 * because inih reads lines of at most 200 bytes. Returns the bytes written, or -1. */
static int datadir_meta_peers(const char *peers, char *out, size_t cap) {
    size_t used = 0;
    for (const char *p = peers; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        int n = snprintf(out + used, cap - used, "peer = %.*s\n", (int)len, p);
        if (n < 0 || (size_t)n >= cap - used) return -1;
        used += (size_t)n;
        p += len + (end != NULL ? 1 : 0);
    }
    return (int)used;
}

/* Writes weft.meta atomically: a crash leaves either no file or the whole file. */
static int datadir_meta_write(const weft_datadir *d, weft_err *err) {
    char text[DATADIR_META_BYTES_MAX];
    int n = snprintf(text, sizeof text,
                     "# weft data dir identity; fixed when the dir was created. Do not edit.\n"
                     "format_version = %u\ncluster_id = %s\nshard_count = %u\n"
                     "replication_factor = %u\nnode_id = %" PRIu64 "\n",
                     d->format_version, d->cluster_id, d->shard_count, d->replication_factor,
                     d->node_id);
    WEFT_ASSERT(n > 0 && (size_t)n < sizeof text);
    int p = datadir_meta_peers(d->peers, text + n, sizeof text - (size_t)n);
    WEFT_ASSERT(p >= 0); /* WEFT_CLUSTER_NODES_MAX short lines fit */
    WEFT_ASSERT((d->peers[0] != '\0') == (d->format_version == WEFTD_META_FORMAT_VERSION));
    return weft_datadir_file_write(d, DATADIR_META_NAME, text, (size_t)n + (size_t)p, err);
}

/* Adds one stored "peer" line back to the canonical list. Returns false when it is empty or
 * the list would not fit. */
static bool datadir_meta_add_peer(weft_datadir *d, const char *value) {
    size_t used = strlen(d->peers);
    if (value[0] == '\0' || strchr(value, ',') != NULL) return false;
    int n = snprintf(d->peers + used, sizeof d->peers - used, "%s%s", used > 0 ? "," : "", value);
    return n > 0 && (size_t)n < sizeof d->peers - used;
}

typedef struct meta_parse {
    weft_datadir *d;  /* being filled */
    int bad;          /* set when a key is unknown or a value malformed */
    char bad_key[64]; /* the offending key */
} meta_parse;

static int datadir_meta_cb(void *user, const char *section, const char *name, const char *value) {
    (void)section;
    meta_parse *mp = user;
    char *end = NULL;
    unsigned long long v = strtoull(value, &end, 10);
    bool numeric = end != value && *end == '\0';
    if (strcmp(name, "cluster_id") == 0 && strlen(value) == WEFTD_CLUSTER_ID_HEX_BYTES) {
        memcpy(mp->d->cluster_id, value, WEFTD_CLUSTER_ID_HEX_BYTES + 1);
    } else if (strcmp(name, "format_version") == 0 && numeric && v <= UINT32_MAX) {
        mp->d->format_version = (uint32_t)v;
    } else if (strcmp(name, "shard_count") == 0 && numeric && v <= UINT32_MAX) {
        mp->d->shard_count = (uint32_t)v;
    } else if (strcmp(name, "replication_factor") == 0 && numeric && v <= UINT32_MAX) {
        mp->d->replication_factor = (uint32_t)v;
    } else if (strcmp(name, "node_id") == 0 && numeric) {
        mp->d->node_id = v;
    } else if (strcmp(name, "peer") == 0 && datadir_meta_add_peer(mp->d, value)) {
        /* appended to d->peers */
    } else if (!mp->bad) {
        mp->bad = 1;
        snprintf(mp->bad_key, sizeof mp->bad_key, "%s", name);
    }
    return 1;
}

static int datadir_meta_read(weft_datadir *d, const char *meta_path, weft_err *err) {
    meta_parse mp = {.d = d};
    int rc = ini_parse(meta_path, datadir_meta_cb, &mp);
    if (rc == -1) return datadir_io_err(err, "cannot read", meta_path);
    if (rc != 0 || mp.bad || d->cluster_id[0] == '\0' || d->shard_count == 0 || d->node_id == 0) {
        return weft_err_set(
            err, WEFT_E_FAILED_PRECONDITION, "data",
            "%s is damaged (line %d, key \"%s\"); restore it from a backup or point "
            "--data at a new directory",
            meta_path, rc, mp.bad_key);
    }
    if (d->format_version > WEFTD_META_FORMAT_VERSION) {
        return weft_err_set(
            err, WEFT_E_FAILED_PRECONDITION, "data",
            "%s has format version %u but this weftd reads up to %u; run a newer weftd", meta_path,
            d->format_version, WEFTD_META_FORMAT_VERSION);
    }
    return 0;
}

/* Compares the stored peer list with the configured one. */
static int datadir_peers_check(const weft_datadir *d, const char *peers, weft_err *err) {
    if (strcmp(d->peers, peers) == 0) return 0;
    if (d->peers[0] == '\0') {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "peers",
                            "data dir %s was created for a single node (no --peers) and cannot "
                            "join a cluster; start without --peers, or point --data at a new "
                            "directory",
                            d->path);
    }
    if (peers[0] == '\0') {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "peers",
                            "data dir %s belongs to a cluster of nodes %s (id=raft address); "
                            "start with the same --peers, or point --data at a new directory",
                            d->path, d->peers);
    }
    return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "peers",
                        "data dir %s was created with --peers nodes %s but this start lists %s "
                        "(id=raft address); node ids and raft addresses are fixed when a "
                        "cluster is created: start with the original --peers, or point --data "
                        "at a new directory",
                        d->path, d->peers, peers);
}

/* Compares the stored identity with the configured one: the setting that differs is named
 * first, the derived cluster id last (it differs whenever one of them does). */
static int datadir_meta_check(const weft_datadir *d, const weft_datadir_identity *want,
                              weft_err *err) {
    uint32_t shards = want->shard_count;
    uint64_t node_id = want->node_id;
    if (d->shard_count != shards) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "shards",
                            "data dir %s was created with %u shards; start with --shards %u (the "
                            "shard count is fixed when a data dir is created) or point --data at a "
                            "new directory",
                            d->path, d->shard_count, d->shard_count);
    }
    if (d->node_id != node_id) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "node-id",
                            "data dir %s belongs to node %" PRIu64 "; start with --node-id %" PRIu64
                            " or point --data at a new directory",
                            d->path, d->node_id, d->node_id);
    }
    int rc = datadir_peers_check(d, want->peers, err);
    if (rc != 0) return rc;
    if (d->replication_factor != want->replication_factor) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "replication-factor",
                            "data dir %s was created with replication factor %u; start with "
                            "--replication-factor %u (it is fixed when a cluster is created) or "
                            "point --data at a new directory",
                            d->path, d->replication_factor, d->replication_factor);
    }
    if (want->cluster_id != NULL && strcmp(want->cluster_id, d->cluster_id) != 0) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "peers",
                            "data dir %s belongs to cluster %s, but --shards, --peers and "
                            "--replication-factor derive cluster %s; start with the settings the "
                            "cluster was created with, or point --data at a new directory",
                            d->path, d->cluster_id, want->cluster_id);
    }
    return 0;
}

static int datadir_meta_create(weft_datadir *d, const weft_datadir_identity *want, weft_err *err) {
    char shards_dir[PATH_MAX];
    struct stat st;
    if (datadir_join(shards_dir, sizeof shards_dir, d->path, "shards") == 0 &&
        stat(shards_dir, &st) == 0) {
        return weft_err_set(err, WEFT_E_FAILED_PRECONDITION, "data",
                            "data dir %s has shard data but no %s; restore that file from a backup "
                            "or point --data at a new directory",
                            d->path, DATADIR_META_NAME);
    }
    if (want->cluster_id != NULL) {
        /* A --peers cluster: every node derives the same id (placement.h). */
        WEFT_ASSERT(strlen(want->cluster_id) == WEFTD_CLUSTER_ID_HEX_BYTES);
        snprintf(d->cluster_id, sizeof d->cluster_id, "%s", want->cluster_id);
    } else {
        int rc = weft_id_random_hex(d->cluster_id, sizeof d->cluster_id);
        if (rc != 0) {
            return weft_err_set(err, WEFT_E_INTERNAL, "", "getrandom failed: %s", strerror(-rc));
        }
    }
    WEFT_ASSERT(strlen(want->peers) < sizeof d->peers);
    snprintf(d->peers, sizeof d->peers, "%s", want->peers);
    d->format_version =
        d->peers[0] != '\0' ? WEFTD_META_FORMAT_VERSION : WEFTD_META_FORMAT_VERSION_SINGLE;
    d->shard_count = want->shard_count;
    d->replication_factor = want->replication_factor;
    d->node_id = want->node_id;
    d->created = 1;
    return datadir_meta_write(d, err);
}

int weft_datadir_shard_path(const weft_datadir *d, uint32_t shard, const char *leaf, char *out,
                            size_t cap) {
    int n = snprintf(out, cap, "%s/shards/%u/%s", d->path, shard, leaf);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static int datadir_make_shard_dirs(weft_datadir *d, weft_err *err) {
    for (uint32_t i = 0; i < d->shard_count; i++) {
        char path[PATH_MAX];
        static const char *const leaves[] = {"raft", "state"};
        for (unsigned k = 0; k < WEFT_ARRAY_LEN(leaves); k++) {
            if (weft_datadir_shard_path(d, i, leaves[k], path, sizeof path) != 0) {
                return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data",
                                    "--data path is too long");
            }
            int rc = datadir_mkdirs(path, err);
            if (rc != 0) return rc;
        }
    }
    return 0;
}

/* Removes every entry of the open directory `dir` (at `path`). A subdirectory is not ours:
 * the state dir only ever holds LMDB's files and a restore's temporary image. */
static int datadir_dir_empty(DIR *dir, const char *path, uint32_t *removed_count, weft_err *err) {
    WEFT_ASSERT(dir != NULL && path != NULL);
    *removed_count = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (unlinkat(dirfd(dir), e->d_name, 0) != 0) {
            return weft_err_set(err, WEFT_E_INTERNAL, "",
                                "cannot remove %s/%s while discarding the shard state: %s; "
                                "remove it by hand (the state is rebuilt from raft)",
                                path, e->d_name, strerror(errno));
        }
        (*removed_count)++;
        errno = 0;
    }
    if (errno != 0) return datadir_io_err(err, "cannot list", path);
    return 0;
}

int weft_datadir_state_discard(const weft_datadir *d, uint32_t shard, uint32_t *removed_count,
                               weft_err *err) {
    WEFT_ASSERT(d != NULL && removed_count != NULL);
    WEFT_ASSERT(shard < d->shard_count);
    char path[PATH_MAX];
    if (weft_datadir_shard_path(d, shard, "state", path, sizeof path) != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data", "--data path is too long");
    }
    DIR *dir = opendir(path);
    if (dir == NULL) return datadir_io_err(err, "cannot open", path);
    int rc = datadir_dir_empty(dir, path, removed_count, err);
    closedir(dir);
    /* The removals must be on disk before the caller records the new run: otherwise a crash
     * could bring the discarded env back under a run state that trusts it. */
    if (rc == 0) rc = datadir_fsync_dir(path, err);
    return rc;
}

int weft_datadir_state_sync(const weft_datadir *d, weft_err *err) {
    WEFT_ASSERT(d != NULL && d->shard_count > 0);
    for (uint32_t i = 0; i < d->shard_count; i++) {
        char path[PATH_MAX];
        if (weft_datadir_shard_path(d, i, "state", path, sizeof path) != 0) {
            return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data", "--data path is too long");
        }
        int rc = datadir_fsync_dir(path, err);
        if (rc != 0) return rc;
    }
    return 0;
}

int weft_datadir_open(weft_datadir *d, const char *path, const weft_datadir_identity *want,
                      weft_err *err) {
    WEFT_ASSERT(d != NULL && path != NULL && want != NULL && want->peers != NULL);
    WEFT_ASSERT(want->shard_count > 0 && want->node_id > 0 && want->replication_factor > 0);
    uint32_t shards = want->shard_count;
    uint64_t node_id = want->node_id;
    memset(d, 0, sizeof *d);
    d->lock_fd = -1;
    if (strlen(path) >= sizeof d->path - 64) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data", "--data path is too long");
    }
    snprintf(d->path, sizeof d->path, "%s", path);
    int rc = datadir_mkdirs(d->path, err);
    if (rc == 0) rc = datadir_lock(d, err);
    if (rc != 0) return rc;
    char meta_path[PATH_MAX];
    rc = datadir_join(meta_path, sizeof meta_path, d->path, DATADIR_META_NAME);
    WEFT_ASSERT(rc == 0);
    if (access(meta_path, F_OK) == 0) {
        rc = datadir_meta_read(d, meta_path, err);
        if (rc == 0) rc = datadir_meta_check(d, want, err);
    } else if (errno == ENOENT) {
        rc = datadir_meta_create(d, want, err);
    } else {
        rc = datadir_io_err(err, "cannot access", meta_path);
    }
    if (rc == 0) rc = datadir_make_shard_dirs(d, err);
    if (rc != 0) {
        weft_datadir_close(d);
        return rc;
    }
    WEFT_ASSERT(d->shard_count == shards && d->node_id == node_id);
    return 0;
}

void weft_datadir_close(weft_datadir *d) {
    if (d->lock_fd >= 0) {
        close(d->lock_fd); /* closing the last descriptor drops the flock */
        d->lock_fd = -1;
    }
}
