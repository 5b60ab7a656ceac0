/* main.c: weft-jepsen, the client of weft's chaos harness (jepsen/README.md, jepsen/FORMAT.md).
 * One binary, one subcommand per role: the workers, the workload clients, the final dump, the
 * liveness probes and the status the driver polls. */
#include <stdio.h>
#include <string.h>

#include "jepsen.h"

/* The subcommands: name, handler and the line of usage. */
static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *doc;
} jepsen_cmds[] = {
    {"worker", jepsen_cmd_worker, "run the harness's workflows and activities"},
    {"run", jepsen_cmd_run, "issue one workload's operations and write the histories"},
    {"dump", jepsen_cmd_dump, "write every run one node's replicas hold (stale reads)"},
    {"probe", jepsen_cmd_probe, "time one write per shard (or keep probing with --loop)"},
    {"status", jepsen_cmd_status, "print ClusterStatus as one node answers it, as JSON"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: weft-jepsen COMMAND [flags]   (weft-jepsen COMMAND --help for flags)\n");
    for (size_t i = 0; i < WEFT_ARRAY_LEN(jepsen_cmds); i++)
        fprintf(f, "  %-8s %s\n", jepsen_cmds[i].name, jepsen_cmds[i].doc);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < WEFT_ARRAY_LEN(jepsen_cmds); i++) {
        if (strcmp(argv[1], jepsen_cmds[i].name) == 0) return jepsen_cmds[i].fn(argc, argv);
    }
    fprintf(stderr, "weft-jepsen: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
