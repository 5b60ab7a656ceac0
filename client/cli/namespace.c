/* namespace.c: `weft namespace register|describe|list`: the namespace registry. The namespace
 * is the global --namespace flag, as for every other command. */
#include <string.h>

#include "cli.h"

/* Prints one namespace as a table row (list) or as `key: value` lines (describe). */
static void namespace_print_row(const weft_namespace_info *ns) {
    char created[CLI_TIME_BYTES];
    char retention[32] = "default";
    if (ns->retention_ms > 0) {
        snprintf(retention, sizeof retention, "%llums", (unsigned long long)ns->retention_ms);
    }
    printf("%-24.*s  %-12s  %-24s  %.*s\n", CLI_STR(ns->namespace_), retention,
           cli_time(ns->created_time_ms, created), CLI_STR(ns->description));
}

int cli_namespace_register(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_register_ns_req req = {.namespace_ = weft_str_c(ctx->namespace_)};
    int rc = 0;
    if (strcmp(ctx->namespace_, WEFT_DEFAULT_NAMESPACE) == 0) {
        rc = cli_usage_error(ctx, &err, "--namespace",
                             "name the namespace to register: weft namespace register "
                             "--namespace NAME (namespace '%s' always exists)",
                             WEFT_DEFAULT_NAMESPACE);
    }
    const char *desc = cli_arg(ctx, "description");
    if (desc != NULL) req.description = weft_str_c(desc);
    if (rc == 0) rc = cli_arg_duration(ctx, "retention", &req.retention_ms, &err);
    if (rc == 0) rc = cli_request_id(ctx, &req.request_id, &err);
    if (rc == 0) rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_register_namespace(ctx->client, &req, &err);
    if (rc == 0 && ctx->output == CLI_OUTPUT_JSON) {
        json_t *j = json_pack("{s:s}", "namespace", ctx->namespace_);
        rc = j != NULL ? cli_print_json(j, &err)
                       : weft_err_set(&err, WEFT_E_RESOURCE_EXHAUSTED, "", "out of memory");
        json_decref(j);
    } else if (rc == 0) {
        printf("registered namespace %s\n", ctx->namespace_);
    }
    return rc == 0 ? CLI_EXIT_OK : cli_fail_write(ctx, &err);
}

int cli_namespace_describe(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_describe_ns_req req = {.namespace_ = weft_str_c(ctx->namespace_)};
    weft_namespace_info resp;
    weft_response holder = {0};
    int rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_describe_namespace(ctx->client, &req, &resp, &holder, &err);
    if (rc == 0 && ctx->output == CLI_OUTPUT_JSON) {
        rc = cli_print_struct_json(&weft_namespace_info_schema, &resp, &err);
    } else if (rc == 0) {
        char created[CLI_TIME_BYTES];
        printf("namespace: %.*s\ndescription: %.*s\n", CLI_STR(resp.namespace_),
               CLI_STR(resp.description));
        if (resp.retention_ms > 0) {
            printf("retention_ms: %llu\n", (unsigned long long)resp.retention_ms);
        } else {
            printf("retention_ms: 0 (the server's default)\n");
        }
        printf("created: %s\n", cli_time(resp.created_time_ms, created));
    }
    weft_response_free(&holder);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}

int cli_namespace_list(cli_ctx *ctx) {
    weft_err err;
    weft_err_clear(&err);
    weft_list_ns_resp resp;
    weft_response holder = {0};
    int rc = cli_connect(ctx, &err);
    if (rc == 0) rc = weft_client_list_namespaces(ctx->client, &resp, &holder, &err);
    if (rc == 0 && ctx->output == CLI_OUTPUT_JSON) {
        for (uint32_t i = 0; i < resp.namespaces_count && rc == 0; i++)
            rc = cli_print_struct_json(&weft_namespace_info_schema, &resp.namespaces[i], &err);
    } else if (rc == 0) {
        printf("%-24s  %-12s  %-24s  %s\n", "NAMESPACE", "RETENTION", "CREATED", "DESCRIPTION");
        for (uint32_t i = 0; i < resp.namespaces_count; i++)
            namespace_print_row(&resp.namespaces[i]);
    }
    weft_response_free(&holder);
    return rc == 0 ? CLI_EXIT_OK : cli_fail(&err);
}
