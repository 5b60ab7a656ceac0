/* run.c: `weft-jepsen run`, the workload clients (jepsen/FORMAT.md). Each process is a thread
 * that issues one operation at a time at its share of --rate for --time seconds, then waits
 * for the driver to heal the cluster (--healed-file appears), finishes what it began (signal
 * sequences, unknown starts) and waits for the outcome of every workflow it started. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"

/* Workflows one process remembers for the result phase. */
#define RUN_KNOWN_MAX 100000u
/* A start whose outcome is unknown is sent again (same request id) up to this many times. */
#define RUN_START_RESENDS_MAX 3u
/* Signal workflows fed at once (shared by every process of the run), and the length of the
 * ordered sequence each process sends to one of them. */
#define RUN_SIGNAL_SLOTS_MAX 8u
#define RUN_SIGNAL_SEQ_MIN 2u
#define RUN_SIGNAL_SEQ_MAX 5u
/* A signal that failed for certain is sent again with a new request id up to this often. */
#define RUN_SIGNAL_FAILS_MAX 5u
/* Starts workload: start requests in one round (one workflow id, a few request ids). */
#define RUN_STARTS_ROUND_OPS 6u
#define RUN_STARTS_ROUND_REQUESTS 3u
/* Timers workload: sleeps per workflow and their range. */
#define RUN_TIMERS_PER_WF_MAX 3u
#define RUN_TIMER_MS_MIN 200u
#define RUN_TIMER_MS_MAX 4000u
/* How often the healed file is looked for. */
#define RUN_HEALED_POLL_MS 100u

typedef enum run_workload { WL_LEDGER, WL_TIMERS, WL_SIGNALS, WL_STARTS } run_workload;

/* A workflow whose outcome the result phase asks for. */
typedef struct run_known {
    char workflow_id[JEPSEN_ID_BYTES_MAX];
    char run_id[JEPSEN_RUN_ID_BYTES]; /* "" when the start's outcome stayed unknown */
} run_known;

/* One process's ordered sequence of signals to one workflow. */
typedef struct run_sigseq {
    uint64_t len;                           /* signals in the sequence */
    uint64_t next_seq;                      /* the next seq to send, from 1 */
    char rid[WEFT_CLIENT_REQUEST_ID_BYTES]; /* request id of next_seq's signal */
    bool rid_live;                          /* rid was sent and its outcome unknown */
    uint32_t fails;                         /* definite failures of next_seq */
} run_sigseq;

/* A jepsen-signals workflow that every process feeds with its own sequence; it expects the
 * sum of their lengths. Any process may send its start, always with the same request id, so
 * concurrent starts of one workflow are deduplicated (G4). */
typedef struct run_sigslot {
    bool live;                            /* in use */
    bool started;                         /* a start was acknowledged */
    bool dead;                            /* a start failed for certain: nothing to feed */
    jepsen_start_spec start;              /* the one start request of this workflow */
    run_sigseq seq[JEPSEN_PROCESSES_MAX]; /* per process index */
} run_sigslot;

/* The signal workflows of the run, shared by its processes. */
typedef struct run_sigpool {
    pthread_mutex_t mu;
    run_sigslot slots[RUN_SIGNAL_SLOTS_MAX];
    uint64_t made; /* workflows made so far (names new ids) */
    jepsen_rng rng;
} run_sigpool;

/* The starts workload's shared round: every process sends one of its requests. */
typedef struct run_round {
    pthread_mutex_t mu;
    char workflow_id[JEPSEN_ID_BYTES_MAX];
    jepsen_start_spec requests[RUN_STARTS_ROUND_REQUESTS];
    uint32_t ops_left; /* requests before the next round */
    uint64_t rounds;   /* rounds so far (names new ids) */
    jepsen_rng rng;    /* draws the rounds */
} run_round;

typedef struct run_cfg {
    weft_client *client;
    const char *ns;
    run_workload workload;
    uint64_t seed;
    uint64_t interval_ms;    /* between two operations of one process */
    uint64_t end_ms;         /* CLOCK_REALTIME: no new operation after this */
    const char *healed_file; /* the driver creates it once the cluster is healed */
    uint64_t heal_wait_ms;   /* longest wait for it */
    uint64_t drain_ms;       /* the result phase's length once healed */
    const char *tag;         /* in workflow ids, so that two runs never share one */
    uint32_t procs;          /* processes of this run */
    run_round round;
    run_sigpool sig;
} run_cfg;

typedef struct run_proc {
    run_cfg *cfg;
    jepsen_history h;
    jepsen_rng rng;
    uint64_t ops;     /* workflows named so far */
    run_known *known; /* [RUN_KNOWN_MAX] */
    uint32_t known_count;
    jepsen_start_spec retry; /* ledger/timers: a start to send again */
    uint32_t retry_sends;    /* 0: nothing to send again */
    uint32_t index;          /* among the run's processes: its sequence in every signal workflow */
    pthread_t thread;
} run_proc;

static void known_add(run_proc *p, const char *workflow_id, const char *run_id) {
    for (uint32_t i = 0; i < p->known_count; i++) {
        run_known *k = &p->known[i];
        if (strcmp(k->workflow_id, workflow_id) != 0) continue;
        if (strcmp(k->run_id, run_id) == 0) return;
        if (k->run_id[0] == '\0') { /* the unknown start turned out to have a run */
            snprintf(k->run_id, sizeof k->run_id, "%s", run_id);
            return;
        }
    }
    if (p->known_count == RUN_KNOWN_MAX) return;
    run_known *k = &p->known[p->known_count++];
    snprintf(k->workflow_id, sizeof k->workflow_id, "%s", workflow_id);
    snprintf(k->run_id, sizeof k->run_id, "%s", run_id);
}

static void new_request_id(char rid[WEFT_CLIENT_REQUEST_ID_BYTES]) {
    weft_err err;
    WEFT_ASSERT(weft_request_id_new(rid, &err) == 0);
}

/* Sends a start and files its outcome: a run id to ask for later, or an unknown to resend. */
static int run_start(run_proc *p, const jepsen_start_spec *s) {
    char run_id[JEPSEN_RUN_ID_BYTES] = "";
    bool started = false;
    int rc = jepsen_op_start(&p->h, p->cfg->client, p->cfg->ns, s, run_id, &started);
    if (rc == 0) known_add(p, s->workflow_id, run_id);
    if (jepsen_outcome_of(rc) == JEPSEN_INFO) known_add(p, s->workflow_id, "");
    return rc;
}

/* ---- ledger and timers: fresh workflows; an unknown start is sent again ---- */

static void fresh_spec(run_proc *p, const char *kind, const char *type, jepsen_start_spec *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->workflow_id, sizeof s->workflow_id, "%s-%s-%s-%llu", kind, p->cfg->tag,
             p->h.process, (unsigned long long)++p->ops);
    s->workflow_type = type;
    s->reuse = WEFT_REUSE_ALLOW;
    s->conflict = WEFT_CONFLICT_FAIL;
    new_request_id(s->request_id);
}

static void ledger_spec(run_proc *p, jepsen_start_spec *s) {
    fresh_spec(p, "ledger", JEPSEN_WF_LEDGER, s);
    snprintf(s->input, sizeof s->input, "{\"steps\":%llu}",
             (unsigned long long)jepsen_rng_range(&p->rng, 1, 3));
}

static void timers_spec(run_proc *p, jepsen_start_spec *s) {
    fresh_spec(p, "timers", JEPSEN_WF_TIMERS, s);
    uint64_t n = jepsen_rng_range(&p->rng, 1, RUN_TIMERS_PER_WF_MAX);
    size_t off = (size_t)snprintf(s->input, sizeof s->input, "{\"timers_ms\":[");
    for (uint64_t i = 0; i < n; i++) {
        off += (size_t)snprintf(
            s->input + off, sizeof s->input - off, "%s%llu", i ? "," : "",
            (unsigned long long)jepsen_rng_range(&p->rng, RUN_TIMER_MS_MIN, RUN_TIMER_MS_MAX));
    }
    snprintf(s->input + off, sizeof s->input - off, "]}");
}

static void op_fresh(run_proc *p) {
    if (p->retry_sends == 0) {
        if (p->cfg->workload == WL_LEDGER) ledger_spec(p, &p->retry);
        if (p->cfg->workload == WL_TIMERS) timers_spec(p, &p->retry);
    }
    int rc = run_start(p, &p->retry);
    p->retry_sends++;
    if (jepsen_outcome_of(rc) != JEPSEN_INFO || p->retry_sends > RUN_START_RESENDS_MAX)
        p->retry_sends = 0;
}

/* ---- signals: ordered sequences to long-running workflows ---- */

/* A new workflow in a free slot: every process gets a sequence. cfg->sig.mu held. */
static void slot_make(run_cfg *cfg, run_sigslot *w) {
    memset(w, 0, sizeof *w);
    w->live = true;
    snprintf(w->start.workflow_id, sizeof w->start.workflow_id, "signals-%s-%llu", cfg->tag,
             (unsigned long long)++cfg->sig.made);
    w->start.workflow_type = JEPSEN_WF_SIGNALS;
    w->start.reuse = WEFT_REUSE_ALLOW;
    w->start.conflict = WEFT_CONFLICT_FAIL;
    new_request_id(w->start.request_id);
    uint64_t expect = 0;
    for (uint32_t i = 0; i < cfg->procs; i++) {
        w->seq[i].len = jepsen_rng_range(&cfg->sig.rng, RUN_SIGNAL_SEQ_MIN, RUN_SIGNAL_SEQ_MAX);
        w->seq[i].next_seq = 1;
        expect += w->seq[i].len;
    }
    snprintf(w->start.input, sizeof w->start.input, "{\"expect\":%llu}",
             (unsigned long long)expect);
}

static bool slot_has_work(const run_sigslot *w, uint32_t i) {
    return w->live && !w->dead && w->seq[i].next_seq <= w->seq[i].len;
}

/* Frees a slot once every process sent its whole sequence. cfg->sig.mu held. */
static void slot_retire(run_cfg *cfg, run_sigslot *w) {
    bool busy = false;
    for (uint32_t i = 0; i < cfg->procs; i++)
        busy = busy || slot_has_work(w, i);
    if (!busy) w->live = false;
}

/* Picks a slot this process still has to feed (making one when it has none and a slot is
 * free). Returns its index, or -1. cfg->sig.mu held. */
static int slot_pick(run_proc *p, bool may_make) {
    run_sigpool *pool = &p->cfg->sig;
    int choices[RUN_SIGNAL_SLOTS_MAX], n = 0, free_slot = -1;
    for (int k = 0; k < (int)RUN_SIGNAL_SLOTS_MAX; k++) {
        if (slot_has_work(&pool->slots[k], p->index)) choices[n++] = k;
        if (!pool->slots[k].live && free_slot < 0) free_slot = k;
    }
    if (n > 0) return choices[jepsen_rng_next(&p->rng) % (uint64_t)n];
    if (!may_make || free_slot < 0) return -1;
    slot_make(p->cfg, &pool->slots[free_slot]);
    return free_slot;
}

/* One operation on slot k: its start while no start was acknowledged, else this process's
 * next signal. Returns false when there was nothing to do. */
static bool sig_step(run_proc *p, bool may_make) {
    run_sigpool *pool = &p->cfg->sig;
    pthread_mutex_lock(&pool->mu);
    int k = slot_pick(p, may_make);
    run_sigslot *w = k >= 0 ? &pool->slots[k] : NULL;
    bool started = w != NULL && w->started;
    jepsen_start_spec start;
    run_sigseq seq;
    if (w != NULL) {
        start = w->start;
        seq = w->seq[p->index];
    }
    pthread_mutex_unlock(&pool->mu);
    if (w == NULL) return false;
    if (!started) {
        int rc = run_start(p, &start);
        pthread_mutex_lock(&pool->mu);
        if (rc == 0) w->started = true;
        /* Certainly not started: nothing waits for the signals. */
        if (jepsen_outcome_of(rc) == JEPSEN_FAIL && !w->started) w->dead = true;
        slot_retire(p->cfg, w);
        pthread_mutex_unlock(&pool->mu);
        return true;
    }
    if (!seq.rid_live) new_request_id(seq.rid);
    int rc = jepsen_op_signal(&p->h, p->cfg->client, p->cfg->ns, start.workflow_id, seq.rid,
                              seq.next_seq);
    jepsen_outcome oc = jepsen_outcome_of(rc);
    /* Unknown: the same request id goes again, so the seq is delivered at most once and the
     * next one never overtakes it. */
    seq.rid_live = oc == JEPSEN_INFO;
    if (oc == JEPSEN_FAIL) seq.fails++;
    if (oc == JEPSEN_OK) {
        seq.fails = 0;
        seq.next_seq++;
    }
    /* The run refuses signals: it cannot complete, and the checker will say so. */
    if (seq.fails >= RUN_SIGNAL_FAILS_MAX) seq.next_seq = seq.len + 1;
    pthread_mutex_lock(&pool->mu);
    w->seq[p->index] = seq;
    slot_retire(p->cfg, w);
    pthread_mutex_unlock(&pool->mu);
    return true;
}

static void op_signals(run_proc *p) {
    sig_step(p, true);
}

/* ---- starts: concurrent starts of one id with shared request ids, under every policy ---- */

static void round_next(run_cfg *cfg) {
    run_round *r = &cfg->round;
    /* Half the rounds reuse the last id, once its run may have closed: the reuse policies then
     * decide. */
    if (r->rounds == 0 || jepsen_rng_next(&r->rng) % 2 == 0) {
        snprintf(r->workflow_id, sizeof r->workflow_id, "starts-%s-%llu", cfg->tag,
                 (unsigned long long)r->rounds);
    }
    r->rounds++;
    for (uint32_t j = 0; j < RUN_STARTS_ROUND_REQUESTS; j++) {
        jepsen_start_spec *s = &r->requests[j];
        memset(s, 0, sizeof *s);
        snprintf(s->workflow_id, sizeof s->workflow_id, "%s", r->workflow_id);
        s->workflow_type = JEPSEN_WF_LEDGER;
        snprintf(s->input, sizeof s->input, "{\"steps\":1}");
        s->reuse = (uint32_t)(jepsen_rng_next(&r->rng) % WEFT_REUSE__COUNT);
        s->conflict = (uint32_t)(jepsen_rng_next(&r->rng) % WEFT_CONFLICT__COUNT);
        new_request_id(s->request_id);
    }
    r->ops_left = RUN_STARTS_ROUND_OPS;
}

static void op_starts(run_proc *p) {
    run_round *r = &p->cfg->round;
    jepsen_start_spec s;
    pthread_mutex_lock(&r->mu);
    if (r->ops_left == 0) round_next(p->cfg);
    r->ops_left--;
    s = r->requests[jepsen_rng_next(&p->rng) % RUN_STARTS_ROUND_REQUESTS];
    pthread_mutex_unlock(&r->mu);
    run_start(p, &s);
}

/* ---- the phases ---- */

static void proc_op(run_proc *p) {
    switch (p->cfg->workload) {
    case WL_LEDGER:
    case WL_TIMERS:
        op_fresh(p);
        break;
    case WL_SIGNALS:
        op_signals(p);
        break;
    case WL_STARTS:
        op_starts(p);
        break;
    }
}

static void phase_ops(run_proc *p) {
    uint64_t next = jepsen_now_ms();
    while (jepsen_now_ms() < p->cfg->end_ms) {
        uint64_t now = jepsen_now_ms();
        if (now < next) jepsen_sleep_ms(next - now);
        proc_op(p);
        next += p->cfg->interval_ms;
        if (next < jepsen_now_ms()) next = jepsen_now_ms(); /* late: no burst to catch up */
    }
}

static void wait_healed(const run_cfg *cfg) {
    uint64_t deadline = jepsen_now_ms() + cfg->heal_wait_ms;
    struct stat st;
    while (cfg->healed_file != NULL && stat(cfg->healed_file, &st) != 0) {
        if (jepsen_now_ms() >= deadline) {
            fprintf(stderr, "weft-jepsen run: %s did not appear within %llu ms; draining anyway\n",
                    cfg->healed_file, (unsigned long long)cfg->heal_wait_ms);
            return;
        }
        jepsen_sleep_ms(RUN_HEALED_POLL_MS);
    }
}

/* Finishes what the process began: unknown starts and every signal sequence. */
static void phase_finish(run_proc *p, uint64_t deadline_ms) {
    if (p->retry_sends > 0) {
        while (p->retry_sends > 0 && jepsen_now_ms() < deadline_ms) {
            int rc = run_start(p, &p->retry);
            if (jepsen_outcome_of(rc) != JEPSEN_INFO) p->retry_sends = 0;
        }
    }
    if (p->cfg->workload != WL_SIGNALS) return;
    while (jepsen_now_ms() < deadline_ms && sig_step(p, false)) {
    }
}

static void phase_results(run_proc *p, uint64_t deadline_ms) {
    for (uint32_t i = 0; i < p->known_count; i++) {
        const run_known *k = &p->known[i];
        jepsen_op_result(&p->h, p->cfg->client, p->cfg->ns, k->workflow_id, k->run_id, deadline_ms);
    }
}

static void *proc_main(void *arg) {
    run_proc *p = arg;
    phase_ops(p);
    wait_healed(p->cfg);
    uint64_t deadline = jepsen_now_ms() + p->cfg->drain_ms;
    phase_finish(p, deadline);
    phase_results(p, deadline);
    return NULL;
}

/* ---- the subcommand ---- */

static int parse_workload(const char *w, run_workload *out) {
    static const char *const names[] = {"ledger", "timers", "signals", "starts"};
    for (int i = 0; i < 4; i++) {
        if (w != NULL && strcmp(w, names[i]) == 0) return *out = (run_workload)i, 0;
    }
    fprintf(stderr,
            "weft-jepsen run: --workload must be ledger, timers, signals or starts (got \"%s\")\n",
            w ? w : "");
    return -1;
}

/* Splits "c1,c2" into the processes. Returns the count, or -1 after printing why. */
static int procs_open(run_cfg *cfg, const char *list, const char *store, run_proc **out) {
    run_proc *procs = calloc(JEPSEN_PROCESSES_MAX, sizeof *procs);
    WEFT_ASSERT(procs != NULL);
    int n = 0;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", list != NULL ? list : "");
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == (int)JEPSEN_PROCESSES_MAX || strlen(tok) >= JEPSEN_NAME_BYTES_MAX) break;
        run_proc *p = &procs[n++];
        p->cfg = cfg;
        p->index = (uint32_t)(n - 1);
        snprintf(p->h.process, sizeof p->h.process, "%s", tok);
        jepsen_rng_seed(&p->rng, cfg->seed, tok);
        p->known = calloc(RUN_KNOWN_MAX, sizeof *p->known);
        WEFT_ASSERT(p->known != NULL);
        char path[8192];
        snprintf(path, sizeof path, "%s/history/%s.jsonl", store, tok);
        if (jepsen_log_open(&p->h.log, path) != 0) return -1;
    }
    if (n == 0) {
        fprintf(stderr, "weft-jepsen run: --process needs names like c1,c2 (1 to %u)\n",
                JEPSEN_PROCESSES_MAX);
        return -1;
    }
    *out = procs;
    return n;
}

int jepsen_cmd_run(int argc, char **argv) {
    const char *address = NULL, *workload = NULL, *process = NULL, *rate = "10", *time_s = "30",
               *seed = "1", *store = NULL, *healed = NULL, *heal_wait = "300", *drain = "120",
               *ns = WEFT_DEFAULT_NAMESPACE, *tag = "r";
    const jepsen_flag flags[] = {
        {"address", &address, NULL, "every node's client address, comma-separated"},
        {"workload", &workload, NULL, "ledger, timers, signals or starts"},
        {"process", &process, NULL, "process names, comma-separated: one thread each"},
        {"rate", &rate, NULL, "operations per second, all processes together (default 10)"},
        {"time", &time_s, NULL, "seconds of operations (default 30)"},
        {"seed", &seed, NULL, "seed of every random choice (default 1)"},
        {"store", &store, NULL, "the run's store directory (histories go to STORE/history/)"},
        {"healed-file", &healed, NULL, "wait for this file before the result phase"},
        {"heal-wait", &heal_wait, NULL, "longest wait for the healed file, s (default 300)"},
        {"drain", &drain, NULL, "result phase bound once healed, s (default 120)"},
        {"namespace", &ns, NULL, "namespace (default: default)"},
        {"tag", &tag, NULL, "part of every workflow id (default r)"},
        {NULL, NULL, NULL, NULL},
    };
    if (jepsen_flags_parse("run", flags, argc, argv, 2) != 0) return 2;
    run_cfg cfg = {.ns = ns, .healed_file = healed, .tag = tag};
    uint64_t rate_ops = 0, time_v = 0, hw = 0, dr = 0;
    if (address == NULL || store == NULL) {
        fprintf(stderr, "weft-jepsen run: --address and --store are required\n");
        return 2;
    }
    if (parse_workload(workload, &cfg.workload) != 0 ||
        jepsen_parse_u64("rate", rate, 1, 100000, &rate_ops) != 0 ||
        jepsen_parse_u64("time", time_s, 1, 86400, &time_v) != 0 ||
        jepsen_parse_u64("seed", seed, 0, UINT64_MAX, &cfg.seed) != 0 ||
        jepsen_parse_u64("heal-wait", heal_wait, 0, 86400, &hw) != 0 ||
        jepsen_parse_u64("drain", drain, 1, 86400, &dr) != 0) {
        return 2;
    }
    run_proc *procs = NULL;
    int n = procs_open(&cfg, process, store, &procs);
    if (n < 0) return 2;
    cfg.interval_ms = 1000u * (uint64_t)n / rate_ops;
    cfg.heal_wait_ms = hw * 1000u;
    cfg.drain_ms = dr * 1000u;
    cfg.procs = (uint32_t)n;
    pthread_mutex_init(&cfg.round.mu, NULL);
    pthread_mutex_init(&cfg.sig.mu, NULL);
    jepsen_rng_seed(&cfg.sig.rng, cfg.seed, "signals-pool");
    jepsen_rng_seed(&cfg.round.rng, cfg.seed, "starts-round");
    /* Retries: a few, with the same request id; after them the outcome is unknown (info). */
    if (jepsen_client_open(address, "weft-jepsen-run", 5000, 5, &cfg.client) != 0) return 1;
    cfg.end_ms = jepsen_now_ms() + time_v * 1000u;
    for (int i = 0; i < n; i++)
        pthread_create(&procs[i].thread, NULL, proc_main, &procs[i]);
    for (int i = 0; i < n; i++)
        pthread_join(procs[i].thread, NULL);
    for (int i = 0; i < n; i++) {
        jepsen_log_close(&procs[i].h.log);
        free(procs[i].known);
    }
    free(procs);
    weft_client_close(cfg.client);
    return 0;
}
