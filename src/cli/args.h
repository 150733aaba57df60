/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice: the command line, parsed without side effects (no output, no
 * exit), so that it can be unit-tested and fuzzed (tests/unit/c/fuzz_cli.c).
 */
#ifndef TS_CLI_ARGS_H
#define TS_CLI_ARGS_H

#include <stdbool.h>

enum cli_action {
	CLI_STATUS,
	CLI_LIST,
	CLI_HELP,
	CLI_VERSION,
	CLI_USAGE, /* a usage error: err says what, exit status 2 */
};

struct cli_args {
	enum cli_action action;
	bool json, procs;
	char err[160];
};

/* Parses argv[1..argc-1]; always fills *a, returns a->action. */
enum cli_action cli_parse_args(int argc, char **argv, struct cli_args *a);

#endif /* TS_CLI_ARGS_H */
