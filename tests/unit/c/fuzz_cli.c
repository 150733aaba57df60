// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: the CLI's command line (cli_parse_args of src/cli/args.c)
 * on any argument vector.  The input is split at NUL bytes into at most 64
 * arguments after argv[0].  Beyond the sanitizers, it checks what the parser
 * promises: a known action; a command only with exactly one non-option
 * argument that is "status" or "list"; -p never with status; a usage error
 * always says what is wrong, in one line; argv is only permuted, never
 * changed; and the same vector parses the same way twice (no state kept).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../src/cli/args.h"

#define MAX_ARGS 64

static void require(bool ok, const char *what, const char *detail)
{
	if (ok)
		return;
	fprintf(stderr, "broken promise: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

static int split(char *buf, size_t len, char **argv)
{
	int argc = 0;
	size_t start = 0;

	argv[argc++] = "tcp-splice";
	for (size_t i = 0; i <= len && argc < MAX_ARGS + 1; i++) {
		if (i == len || buf[i] == 0) {
			buf[i] = 0;
			argv[argc++] = buf + start;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	return argc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *argv[MAX_ARGS + 2], *before[MAX_ARGS + 2];
	struct cli_args a, b;
	int argc, nonopt = 0;
	bool dashdash = false;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	argc = split(buf, size, argv);
	memcpy(before, argv, sizeof(argv));

	cli_parse_args(argc, argv, &a);
	require(a.action <= CLI_USAGE, "unknown action", NULL);
	require(strlen(a.err) < sizeof(a.err), "error not terminated", NULL);
	if (a.action == CLI_USAGE) {
		require(a.err[0] != 0, "usage error without a message", NULL);
		require(!strchr(a.err, '\n'), "multi-line message", a.err);
	} else {
		require(a.err[0] == 0, "message without an error", a.err);
	}
	/* getopt permutes argv: the same strings, maybe in another order. */
	qsort(before + 1, argc - 1, sizeof(char *), cmp_str);
	{
		char *after[MAX_ARGS + 2];

		memcpy(after, argv, sizeof(after));
		qsort(after + 1, argc - 1, sizeof(char *), cmp_str);
		for (int i = 0; i < argc; i++)
			require(!strcmp(before[i], after[i]), "argv changed", after[i]);
	}
	if (a.action == CLI_STATUS || a.action == CLI_LIST) {
		const char *cmd = NULL;

		for (int i = 1; i < argc; i++) {
			if (!dashdash && !strcmp(argv[i], "--")) {
				dashdash = true;
				continue;
			}
			if (dashdash || argv[i][0] != '-' || !argv[i][1]) {
				nonopt++;
				cmd = argv[i];
			}
		}
		require(nonopt == 1, "a command with other arguments", NULL);
		require(!strcmp(cmd, a.action == CLI_STATUS ? "status" : "list"),
			"action does not match the command", cmd);
		require(!(a.action == CLI_STATUS && a.procs), "-p with status", NULL);
	}
	/* Parsing again (argv now permuted) gives the same answer. */
	cli_parse_args(argc, argv, &b);
	require(a.action == b.action && a.json == b.json && a.procs == b.procs &&
			!strcmp(a.err, b.err),
		"second parse differs", b.err);
	free(buf);
	return 0;
}
