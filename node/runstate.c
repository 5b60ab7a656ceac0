/* runstate.c: the MDB_NOSYNC rule of DESIGN section 5. Shard envs may skip LMDB's fsync because
 * the raft log is fsynced and holds every applied entry (the applied index lives in the same
 * LMDB transaction as the state). What a skipped fsync can lose is lost only when the machine
 * goes down with the page cache: a process crash keeps it. So each start compares this boot's
 * id with the one the last run recorded, and that run's clean-stop marker, and rebuilds the
 * envs from raft when a machine restart may have cost them commits.
 *
 * run.state is rewritten atomically (tmp, fsync, rename, dir fsync) at two moments:
 *   - start, before any env opens: {this boot id, clean = false, no_sync};
 *   - clean stop, after every env is closed and flushed: {this boot id, clean = true, no_sync}.
 * Both writes run on the loop thread once per process lifetime, not per entry. */
#include "runstate.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../proto/base.h"
#include "../proto/log.h"

#define RUNSTATE_FILE_NAME "run.state"
/* Largest run.state written: a comment and four short lines. */
#define RUNSTATE_FILE_BYTES_MAX 1024u
/* Room for a boot id file's trailing newline, plus one byte to notice an overlong id. */
#define RUNSTATE_BOOT_ID_READ_BYTES (WEFTD_BOOT_ID_BYTES_MAX + 2u)
/* Longest description of what was wrong with a file, inside a reason. */
#define RUNSTATE_WHY_BYTES_MAX 192u

_Static_assert(RUNSTATE_WHY_BYTES_MAX + 2u * WEFTD_BOOT_ID_BYTES_MAX + 128u <
                   WEFTD_RUN_STATE_REASON_BYTES_MAX,
               "a reason quotes two boot ids and one failure description");

/* The last run, as run.state describes it. */
typedef struct runstate_prev {
    bool present;                              /* run.state exists */
    bool damaged;                              /* it exists but cannot be used; see why */
    char why[RUNSTATE_WHY_BYTES_MAX];          /* what was wrong with it */
    uint32_t format_version;                   /* as written; 0 when absent */
    char boot_id[WEFTD_BOOT_ID_BYTES_MAX + 1]; /* "" when that run had none */
    bool clean;                                /* that run stopped cleanly */
    bool no_sync;                              /* that run wrote its envs without fsync */
    unsigned keys_seen;                        /* bit per required key (RUNSTATE_KEY_*) */
} runstate_prev;

enum {
    RUNSTATE_KEY_FORMAT = 1u << 0,
    RUNSTATE_KEY_BOOT_ID = 1u << 1,
    RUNSTATE_KEY_CLEAN = 1u << 2,
    RUNSTATE_KEY_NO_SYNC = 1u << 3,
    RUNSTATE_KEYS_ALL = (1u << 4) - 1u,
};

/* ---- This boot's id ---- */

/* A boot id is compared and written into run.state as is, so only a plain token passes. */
static bool runstate_boot_id_char_ok(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_' || c == '.' || c == ':';
}

/* Checks and trims the bytes read from a boot id file into `out`. Returns 0, or -1 with `why`. */
static int runstate_boot_id_parse(const char *buf, size_t len, char *out, char *why,
                                  size_t why_cap) {
    WEFT_ASSERT(buf != NULL && out != NULL);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    if (len == 0 || len > WEFTD_BOOT_ID_BYTES_MAX) {
        snprintf(why, why_cap, "it holds %zu bytes; a boot id is 1 to %u bytes", len,
                 WEFTD_BOOT_ID_BYTES_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!runstate_boot_id_char_ok(buf[i])) {
            snprintf(why, why_cap, "byte %zu (0x%02x) is not one of [A-Za-z0-9._:-]", i,
                     (unsigned)(unsigned char)buf[i]);
            return -1;
        }
    }
    memcpy(out, buf, len);
    out[len] = '\0';
    WEFT_ASSERT(strlen(out) == len);
    return 0;
}

/* Reads this boot's id. Returns 0, or -1 with `why` (the file is missing, unreadable or holds
 * something else). Never guesses: the caller then keeps LMDB durable. */
static int runstate_boot_id_read(const char *path, char *out, char *why, size_t why_cap) {
    WEFT_ASSERT(path != NULL && out != NULL);
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_cap, "cannot open it: %s", strerror(errno));
        return -1;
    }
    char buf[RUNSTATE_BOOT_ID_READ_BYTES];
    size_t got = 0;
    ssize_t n = 0;
    /* Until end of file, or a full buffer (an id too long: the parse says so). */
    while (got < sizeof buf && (n = read(fd, buf + got, sizeof buf - got)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        got += (size_t)n;
    }
    int read_errno = n < 0 ? errno : 0;
    close(fd);
    if (read_errno != 0) {
        snprintf(why, why_cap, "cannot read it: %s", strerror(read_errno));
        return -1;
    }
    return runstate_boot_id_parse(buf, got, out, why, why_cap);
}

/* ---- The last run's state ---- */

static int runstate_parse_bool(const char *value, bool *out) {
    if (strcmp(value, "true") == 0) return *out = true, 0;
    if (strcmp(value, "false") == 0) return *out = false, 0;
    return -1;
}

/* inih callback: every key must be known and well formed, or the file is damaged. */
static int runstate_ini_cb(void *user, const char *section, const char *name, const char *value) {
    (void)section;
    runstate_prev *p = user;
    int rc = -1;
    if (strcmp(name, "format_version") == 0) {
        char *end = NULL;
        unsigned long v = strtoul(value, &end, 10);
        rc = (end != value && *end == '\0' && v <= UINT32_MAX) ? 0 : -1;
        p->format_version = (uint32_t)v;
        p->keys_seen |= RUNSTATE_KEY_FORMAT;
    } else if (strcmp(name, "boot_id") == 0) {
        /* Empty when that run had no boot id (it then kept LMDB durable). */
        size_t len = strlen(value);
        rc = len <= WEFTD_BOOT_ID_BYTES_MAX ? 0 : -1;
        if (rc == 0) memcpy(p->boot_id, value, len + 1);
        p->keys_seen |= RUNSTATE_KEY_BOOT_ID;
    } else if (strcmp(name, "clean") == 0) {
        rc = runstate_parse_bool(value, &p->clean);
        p->keys_seen |= RUNSTATE_KEY_CLEAN;
    } else if (strcmp(name, "no_sync") == 0) {
        rc = runstate_parse_bool(value, &p->no_sync);
        p->keys_seen |= RUNSTATE_KEY_NO_SYNC;
    }
    if (rc != 0 && !p->damaged) {
        p->damaged = true;
        snprintf(p->why, sizeof p->why, "key \"%s\" = \"%s\" is unknown or malformed", name, value);
    }
    return 1;
}

/* Fills `p` from run.state. A missing file is not damage; anything else unusable is. */
static void runstate_prev_read(const char *path, runstate_prev *p) {
    memset(p, 0, sizeof *p);
    if (access(path, F_OK) != 0 && errno == ENOENT) return;
    p->present = true;
    int rc = ini_parse(path, runstate_ini_cb, p);
    if (p->damaged) return;
    p->damaged = true;
    if (rc == -1) {
        snprintf(p->why, sizeof p->why, "cannot read it: %s", strerror(errno));
    } else if (rc != 0) {
        snprintf(p->why, sizeof p->why, "syntax error on line %d", rc);
    } else if (p->keys_seen != RUNSTATE_KEYS_ALL) {
        snprintf(p->why, sizeof p->why, "it lacks a key (format_version, boot_id, clean, no_sync)");
    } else if (p->format_version > WEFTD_RUN_STATE_FORMAT_VERSION) {
        snprintf(p->why, sizeof p->why, "format version %u is newer than this weftd's %u",
                 p->format_version, WEFTD_RUN_STATE_FORMAT_VERSION);
    } else {
        p->damaged = false;
    }
}

/* ---- The decision ---- */

/* DESIGN section 5: trust the envs unless the last run wrote them without fsync, did not stop
 * cleanly, and the machine may have restarted since. Straight-line over the cases; fills
 * `reason` for the log. */
static weft_runstate_verdict runstate_decide(const runstate_prev *p, bool dir_created,
                                             const char *boot_id, char *reason, size_t cap) {
    if (!p->present) {
        snprintf(reason, cap, "%s",
                 dir_created ? "the data dir is new"
                             : "no run.state: the last weftd predates it and fsynced every LMDB "
                               "commit");
        return WEFT_RUNSTATE_TRUST_NEW;
    }
    if (p->damaged) {
        snprintf(reason, cap,
                 "run.state is unusable (%s), so whether the last run's LMDB commits reached the "
                 "disk is unknown",
                 p->why);
        return WEFT_RUNSTATE_REBUILD_DAMAGED;
    }
    if (p->clean) {
        snprintf(reason, cap, "the last run stopped cleanly and flushed every env");
        return WEFT_RUNSTATE_TRUST_CLEAN;
    }
    if (!p->no_sync) {
        snprintf(reason, cap, "the last run did not stop cleanly but fsynced every LMDB commit");
        return WEFT_RUNSTATE_TRUST_DURABLE;
    }
    if (boot_id[0] == '\0') {
        snprintf(reason, cap,
                 "the last run (boot id %s) did not stop cleanly and wrote LMDB without fsync, "
                 "and this boot's id cannot be read, so a machine restart cannot be ruled out",
                 p->boot_id);
        return WEFT_RUNSTATE_REBUILD_UNKNOWN_BOOT;
    }
    if (strcmp(p->boot_id, boot_id) == 0) {
        snprintf(reason, cap,
                 "the last run did not stop cleanly, but the machine has not restarted since "
                 "(boot id %s): the page cache kept its LMDB commits",
                 boot_id);
        return WEFT_RUNSTATE_TRUST_SAME_BOOT;
    }
    snprintf(reason, cap,
             "the machine restarted (boot id %s, now %s) after a run that did not stop cleanly "
             "and wrote LMDB without fsync, so its last commits may be lost or torn",
             p->boot_id, boot_id);
    return WEFT_RUNSTATE_REBUILD_NEW_BOOT;
}

static bool runstate_verdict_rebuilds(weft_runstate_verdict v) {
    return v == WEFT_RUNSTATE_REBUILD_NEW_BOOT || v == WEFT_RUNSTATE_REBUILD_UNKNOWN_BOOT ||
           v == WEFT_RUNSTATE_REBUILD_DAMAGED;
}

/* Empties every shard's state dir; raft restores its snapshot into the empty env and replays
 * its log (weft_shard_restore restores whenever the env is behind the snapshot). */
static int runstate_discard_all(const weft_runstate *rs, const weft_datadir *d, weft_err *err) {
    WEFT_ASSERT(runstate_verdict_rebuilds(rs->verdict));
    for (uint32_t i = 0; i < d->shard_count; i++) {
        uint32_t removed = 0;
        int rc = weft_datadir_state_discard(d, i, &removed, err);
        if (rc != 0) {
            weft_err_prefix(err, "shard %u", i);
            return rc;
        }
        weft_log(WEFT_LOG_WARN, i,
                 "state env discarded (%u files removed): %s; raft rebuilds it from its snapshot "
                 "and log",
                 removed, rs->reason);
    }
    return 0;
}

/* ---- Writing ---- */

static int runstate_write(const weft_runstate *rs, const weft_datadir *d, bool clean,
                          weft_err *err) {
    WEFT_ASSERT(rs->no_sync == (rs->boot_id[0] != '\0'));
    char text[RUNSTATE_FILE_BYTES_MAX];
    int n = snprintf(text, sizeof text,
                     "# weft run state (docs/operations.md, \"Durability\"): the boot this data "
                     "dir last ran in\n# and whether that run stopped cleanly. weftd rewrites it "
                     "at every start and clean stop. Do not edit or delete it.\n"
                     "format_version = %u\nboot_id = %s\nclean = %s\nno_sync = %s\n",
                     WEFTD_RUN_STATE_FORMAT_VERSION, rs->boot_id, clean ? "true" : "false",
                     rs->no_sync ? "true" : "false");
    WEFT_ASSERT(n > 0 && (size_t)n < sizeof text);
    int rc = weft_datadir_file_write(d, RUNSTATE_FILE_NAME, text, (size_t)n, err);
    if (rc != 0)
        weft_err_prefix(err, "recording the run state (clean = %s)", clean ? "true" : "false");
    return rc;
}

/* Says how this run's envs are written, and why when it is the slow way. */
static void runstate_log_mode(const weft_runstate *rs, const char *boot_id_file,
                              const char *boot_why) {
    if (rs->no_sync) {
        weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD,
                 "shard state: LMDB commits without fsync (the raft log is fsynced); boot id %s "
                 "from %s",
                 rs->boot_id, boot_id_file);
        return;
    }
    weft_log(WEFT_LOG_WARN, WEFT_LOG_NO_SHARD,
             "cannot read the boot id from %s (%s); shard state falls back to an fsync per LMDB "
             "commit, which slows every write: point --boot-id-file at a readable boot id",
             boot_id_file, boot_why);
}

int weft_runstate_begin(weft_runstate *rs, const weft_datadir *d, const char *boot_id_file,
                        weft_err *err) {
    WEFT_ASSERT(rs != NULL && d != NULL && boot_id_file != NULL);
    WEFT_ASSERT(d->lock_fd >= 0); /* no other weftd can be writing these envs */
    memset(rs, 0, sizeof *rs);
    if (weft_datadir_path(d, RUNSTATE_FILE_NAME, rs->path, sizeof rs->path) != 0) {
        return weft_err_set(err, WEFT_E_INVALID_ARGUMENT, "data", "--data path is too long");
    }
    char boot_why[RUNSTATE_WHY_BYTES_MAX] = "";
    rs->no_sync = runstate_boot_id_read(boot_id_file, rs->boot_id, boot_why, sizeof boot_why) == 0;
    runstate_prev prev;
    runstate_prev_read(rs->path, &prev);
    rs->verdict =
        runstate_decide(&prev, d->created != 0, rs->boot_id, rs->reason, sizeof rs->reason);
    runstate_log_mode(rs, boot_id_file, boot_why);
    int rc = 0;
    if (runstate_verdict_rebuilds(rs->verdict)) {
        rc = runstate_discard_all(rs, d, err);
    } else {
        weft_log(WEFT_LOG_INFO, WEFT_LOG_NO_SHARD, "shard state envs trusted: %s", rs->reason);
    }
    /* Only now: a crash before this write leaves the last run's record, whose verdict is the
     * same again (and the discard, if any, is already durable). */
    if (rc == 0) rc = runstate_write(rs, d, false, err);
    if (rc != 0) return rc;
    rs->begun = true;
    return 0;
}

int weft_runstate_end_clean(weft_runstate *rs, const weft_datadir *d, weft_err *err) {
    WEFT_ASSERT(rs != NULL && d != NULL);
    WEFT_ASSERT(rs->begun);
    int rc = weft_datadir_state_sync(d, err);
    if (rc != 0) {
        weft_err_prefix(err, "flushing the shard state dirs before recording a clean stop");
        return rc;
    }
    return runstate_write(rs, d, true, err);
}
