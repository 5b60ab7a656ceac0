/* completion.c: `weft completion bash`: a bash completion script made from the command table,
 * so that completion knows exactly the commands, flags and enum values that help shows. */
#include <string.h>

#include "cli.h"

/* Prints the distinct groups of the table, in table order, separated by spaces. */
static void completion_groups(void) {
    for (unsigned i = 0; i < cli_commands_count; i++) {
        bool seen = false;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = strcmp(cli_commands[j].group, cli_commands[i].group) == 0;
        if (!seen) printf("%s%s", i > 0 ? " " : "", cli_commands[i].group);
    }
}

/* _weft_commands GROUP: the commands of a group. */
static void completion_commands_fn(void) {
    printf("_weft_commands() {\n    case \"$1\" in\n");
    for (unsigned i = 0; i < cli_commands_count; i++) {
        const char *g = cli_commands[i].group;
        if (i > 0 && strcmp(cli_commands[i - 1].group, g) == 0) continue;
        printf("    %s) echo \"", g);
        for (unsigned j = i, n = 0; j < cli_commands_count; j++) {
            if (strcmp(cli_commands[j].group, g) == 0) {
                printf("%s%s", n++ > 0 ? " " : "", cli_commands[j].name);
            }
        }
        printf("\" ;;\n");
    }
    printf("    esac\n}\n");
}

static void completion_flag_words(const cli_flag *flags) {
    for (unsigned i = 0; i < CLI_FLAGS_MAX && flags[i].name != NULL; i++)
        printf(" --%s", flags[i].name);
}

/* _weft_flags "GROUP COMMAND": the command's flags and the global ones. */
static void completion_flags_fn(void) {
    printf("_weft_flags() {\n    local globals=\"");
    completion_flag_words(cli_global_flags);
    printf(" --help\"\n    case \"$1\" in\n");
    for (unsigned i = 0; i < cli_commands_count; i++) {
        const cli_command *c = &cli_commands[i];
        printf("    \"%s %s\") echo \"$globals", c->group, c->name);
        completion_flag_words(c->flags);
        printf("\" ;;\n");
    }
    printf("    *) echo \"$globals\" ;;\n    esac\n}\n");
}

static void completion_metavar_rows(const char *pattern_prefix, const cli_flag *flags) {
    for (unsigned i = 0; i < CLI_FLAGS_MAX && flags[i].name != NULL; i++) {
        if (flags[i].metavar == NULL) continue;
        printf("    %s--%s\") echo '%s' ;;\n", pattern_prefix, flags[i].name, flags[i].metavar);
    }
}

/* _weft_metavar "GROUP COMMAND --FLAG": the flag's metavar ("T", "a|b|c"), or nothing for a
 * switch or an unknown flag. */
static void completion_metavar_fn(void) {
    printf("_weft_metavar() {\n    case \"$1\" in\n");
    char prefix[96];
    for (unsigned i = 0; i < cli_commands_count; i++) {
        const cli_command *c = &cli_commands[i];
        snprintf(prefix, sizeof prefix, "\"%s %s ", c->group, c->name);
        completion_metavar_rows(prefix, c->flags);
    }
    completion_metavar_rows("*\" ", cli_global_flags);
    printf("    esac\n}\n");
}

/* The completion function itself: finds the group and command among the words (skipping
 * flag values), then offers values, commands or flags. */
static const char completion_main[] =
    "_weft() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
    "    local group='' cmd='' i w m\n"
    "    COMPREPLY=()\n"
    "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "        w=${COMP_WORDS[i]}\n"
    "        if [[ $w == --*=* ]]; then continue; fi\n"
    "        if [[ $w == -* ]]; then\n"
    "            m=$(_weft_metavar \"$group $cmd $w\")\n"
    "            if [[ -n $m ]]; then ((i++)); fi\n"
    "            continue\n"
    "        fi\n"
    "        if [[ -z $group ]]; then group=$w; elif [[ -z $cmd ]]; then cmd=$w; fi\n"
    "    done\n"
    "    if [[ $prev == --* && $COMP_CWORD -gt 1 ]]; then\n"
    "        m=$(_weft_metavar \"$group $cmd $prev\")\n"
    "        if [[ $m == *'|'* ]]; then\n"
    "            mapfile -t COMPREPLY < <(compgen -W \"${m//|/ }\" -- \"$cur\")\n"
    "            return 0\n"
    "        fi\n"
    "        if [[ $m == JSON && $cur == @* ]]; then\n"
    "            mapfile -t COMPREPLY < <(compgen -f -- \"${cur#@}\" | sed 's/^/@/')\n"
    "            return 0\n"
    "        fi\n"
    "        if [[ -n $m ]]; then return 0; fi\n"
    "    fi\n"
    "    if [[ $cur == -* ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$(_weft_flags \"$group $cmd\")\" -- \"$cur\")\n"
    "    elif [[ -z $group ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$_weft_groups\" -- \"$cur\")\n"
    "    elif [[ -z $cmd ]]; then\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$(_weft_commands \"$group\")\" -- \"$cur\")\n"
    "    else\n"
    "        mapfile -t COMPREPLY < <(compgen -W \"$(_weft_flags \"$group $cmd\")\" -- \"$cur\")\n"
    "    fi\n"
    "    return 0\n"
    "}\n"
    "complete -F _weft weft\n";

int cli_completion_bash(cli_ctx *ctx) {
    WEFT_ASSERT(ctx != NULL && ctx->cmd != NULL);
    WEFT_ASSERT(cli_commands_count > 0);
    printf("# bash completion for weft, made by `weft completion bash` from weft's command "
           "table.\n# Load: source <(weft completion bash)\n_weft_groups='");
    completion_groups();
    printf("'\n");
    completion_commands_fn();
    completion_flags_fn();
    completion_metavar_fn();
    fputs(completion_main, stdout);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}
