// SPDX-License-Identifier: GPL-2.0
/* tcp-splice: command line parsing (see args.h). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

static enum cli_action usage_error(struct cli_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * An argument as it may appear in a message: at most 40 bytes, control
 * characters as \xNN, so that an argument cannot forge lines of output.
 */
static const char *shown(const char *s, char *buf, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; s[i] && i < 40 && k + 5 < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < ' ' || c == 127)
			k += snprintf(buf + k, n - k, "\\x%02x", c);
		else
			buf[k++] = (char)c;
	}
	buf[k] = 0;
	return buf;
}

static enum cli_action usage_error(struct cli_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	return a->action = CLI_USAGE;
}

enum cli_action cli_parse_args(int argc, char **argv, struct cli_args *a)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"processes", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *cmd;
	char b[48];
	int c;

	memset(a, 0, sizeof(*a));
	/* getopt prints nothing; 0 re-initialises it for a second call. */
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "jphV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 'p':
			a->procs = true;
			break;
		case 'h':
			return a->action = CLI_HELP;
		case 'V':
			return a->action = CLI_VERSION;
		default:
			/* A known letter: a long option given a value ("--json=1"). */
			if (optopt && strchr("jphV", optopt) && optind > 0 && optind <= argc)
				return usage_error(a, "option '%s' takes no value",
						   shown(argv[optind - 1], b, sizeof(b)));
			if (optopt > ' ' && optopt < 127)
				return usage_error(a, "unknown option '-%c'", optopt);
			return usage_error(
				a, "unknown option '%s'",
				shown(optind > 0 && optind <= argc ? argv[optind - 1] : "?", b,
				      sizeof(b)));
		}
	}
	/* Options may come before or after the command (getopt permutes). */
	if (optind >= argc)
		return usage_error(a, "missing command (status or list)");
	if (optind < argc - 1)
		return usage_error(a, "unexpected argument '%s'",
				   shown(argv[optind + 1], b, sizeof(b)));
	cmd = argv[optind];
	if (!strcmp(cmd, "status")) {
		if (a->procs)
			return usage_error(a, "-p belongs to 'list'");
		return a->action = CLI_STATUS;
	}
	if (!strcmp(cmd, "list"))
		return a->action = CLI_LIST;
	return usage_error(a, "unknown command '%s' (status or list)", shown(cmd, b, sizeof(b)));
}
