// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-spliced: the policy daemon of tcp-splice.  main only reads the command
 * line and wires the manager up; see manager.c for what the daemon does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "../lib/ts-policy.h"
#include "config.h"
#include "log.h"
#include "manager.h"

#ifndef TSD_VERSION
#define TSD_VERSION "unknown"
#endif
#define DEFAULT_CONFIG "/etc/tcp-splice.conf"

static void usage(FILE *f)
{
	fputs("usage: tcp-spliced [--config FILE]\n"
	      "       tcp-spliced --check-config [FILE]\n"
	      "Attach the tcp-splice sock_ops program to the cgroups the policies of FILE\n"
	      "(default " DEFAULT_CONFIG ") name, and keep them attached as cgroups come\n"
	      "and go.  Meant to run as tcp-spliced.service; see tcp-spliced(8).\n"
	      "  -c, --config FILE          the configuration file\n"
	      "      --check-config [FILE]  check FILE and exit: 0 if valid, else 1 and\n"
	      "                             FILE:LINE: messages on stderr\n"
	      "  -h, --help                 this text\n"
	      "  -V, --version              the version\n",
	      f);
}

/* The --check-config verdict, for an admin about to reload. */
static int check_config(const char *path)
{
	struct tsd_config cfg;
	size_t disabled = 0;

	tsd_config_defaults(&cfg);
	if (tsd_config_parse_file(path, &cfg, stderr))
		return EXIT_FAILURE;
	for (size_t i = 0; i < cfg.npolicies; i++)
		disabled += !cfg.policies[i].enabled;
	printf("%s: OK, %zu policies (%zu disabled)\n", path, cfg.npolicies, disabled);
	for (size_t i = 0; i < cfg.npolicies; i++) {
		const struct tsd_policy *pol = &cfg.policies[i];
		struct ts_policy p = {.scope = pol->scope,
				      .family_mask = pol->family_mask,
				      .nports = pol->nports};
		char desc[256];

		memcpy(p.ports, pol->ports, sizeof(p.ports));
		ts_policy_describe(&p, desc, sizeof(desc));
		printf("  %zu. %s%s: cgroups '/%s', %s\n", i + 1, pol->name,
		       pol->enabled ? "" : " (disabled)", pol->cgroup, desc);
	}
	tsd_config_free(&cfg);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 0x100 };
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", optional_argument, NULL, OPT_CHECK},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *config = DEFAULT_CONFIG;
	struct tsd_manager *m = NULL;
	bool check = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case OPT_CHECK:
			check = true;
			/* "--check-config FILE" as well as "--check-config=FILE". */
			if (optarg)
				config = optarg;
			else if (optind < argc && argv[optind][0] != '-')
				config = argv[optind++];
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("tcp-spliced %s\n", TSD_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tcp-spliced: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_FAILURE;
	}
	if (check)
		return check_config(config);

	tsd_log_setup_libbpf();
	r = tsd_manager_new(config, &m);
	if (r) {
		sd_notifyf(0, "STATUS=Configuration %s rejected: see the journal", config);
		return TSD_EXIT_NOT_CONFIGURED;
	}
	r = tsd_manager_start(m);
	if (r) {
		sd_notifyf(0, "STATUS=Failed to start: %s", strerror(-r));
		tsd_manager_free(m);
		return r == -ENOPKG ? TSD_EXIT_NOT_INSTALLED : EXIT_FAILURE;
	}
	r = tsd_manager_run(m);
	tsd_manager_free(m);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
