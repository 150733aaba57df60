// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: tsd_config_parse_string on any text.  Beyond the
 * sanitizers, it checks what the parser promises: a refused text leaves the
 * configuration untouched and has one "name:line: message" per error, with a
 * line that exists; an accepted one has no error and only values in range.
 */
#define _GNU_SOURCE /* open_memstream */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "../../../src/daemon/config.h"

#define NAME "fuzz.conf"

static void require(bool ok, const char *what, const char *detail)
{
	if (ok)
		return;
	fprintf(stderr, "broken promise: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	abort();
}

static void check_policy(const struct tsd_policy *p)
{
	static const char *const paths[] = {"", "a", "system.slice/x.service", "a/b/c/d"};

	require(p->name && p->name[0], "policy without a name", NULL);
	require(strlen(p->name) <= TSD_POLICY_NAME_MAX, "policy name too long", p->name);
	require(strspn(p->name,
		       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
			strlen(p->name),
		"bad policy name", p->name);
	require(p->cgroup != NULL, "policy without cgroup", p->name);
	require(p->cgroup[0] != '/' && (!p->cgroup[0] || p->cgroup[strlen(p->cgroup) - 1] != '/'),
		"cgroup not normalized", p->cgroup);
	require(p->nports <= TS_MAX_PORT_RANGES, "too many ports", p->name);
	for (unsigned int i = 0; i < p->nports; i++)
		require(p->ports[i].lo >= 1 && p->ports[i].lo <= p->ports[i].hi, "bad port range",
			p->name);
	require(p->scope == TS_SCOPE_LOOPBACK || p->scope == TS_SCOPE_LOCAL ||
			p->scope == TS_SCOPE_ANY,
		"bad scope", p->name);
	require(p->family_mask && !(p->family_mask & ~(TS_FAMILY_IPV4 | TS_FAMILY_IPV6)),
		"bad family", p->name);
	require(p->line >= 1, "policy without a line", p->name);
	/* A glob matches itself read as a path; "**" matches every path. */
	require(tsd_glob_match(p->cgroup, p->cgroup), "glob does not match itself", p->cgroup);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		require(tsd_glob_match("**", paths[i]), "** does not match", paths[i]);
		(void)tsd_glob_match(p->cgroup, paths[i]);
	}
}

static void check_accepted(const struct tsd_config *cfg)
{
	require(cfg->ring_max_kb >= 4 && cfg->ring_max_kb <= 65536, "ring_max_kb", NULL);
	require(cfg->ring_mem_max_kb % 1024 == 0 && cfg->ring_mem_max_kb <= 1048576UL * 1024,
		"ring_mem_max_kb", NULL);
	require(cfg->busy_poll_us <= 1000000, "busy_poll_us", NULL);
	require(cfg->stats_interval_s >= 1 && cfg->stats_interval_s <= 3600, "stats_interval",
		NULL);
	require(cfg->log_level >= LOG_ERR && cfg->log_level <= LOG_DEBUG, "log_level", NULL);
	require(!cfg->npolicies == !cfg->policies, "policies and npolicies disagree", NULL);
	for (size_t i = 0; i < cfg->npolicies; i++) {
		check_policy(&cfg->policies[i]);
		for (size_t j = 0; j < i; j++)
			require(strcmp(cfg->policies[i].name, cfg->policies[j].name) != 0,
				"duplicate policy name", cfg->policies[i].name);
	}
}

/* Every line: "fuzz.conf:LINE: message" with 1 <= LINE <= lines, or "fuzz.conf: message". */
static void check_errors(char *errs, long lines)
{
	char *save = NULL;

	for (char *l = strtok_r(errs, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *rest = l + strlen(NAME ":"), *end;
		long n;

		require(strncmp(l, NAME ":", strlen(NAME ":")) == 0, "error without the name", l);
		if (*rest == ' ') {
			require(rest[1] != '\0', "empty message", l);
			continue;
		}
		n = strtol(rest, &end, 10);
		require(end != rest && n >= 1 && n <= lines, "error line out of the text", l);
		require(end[0] == ':' && end[1] == ' ' && end[2] != '\0', "malformed error", l);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsd_config cfg, copy;
	char *text, *errs = NULL;
	size_t errlen = 0;
	long lines = 1;
	FILE *f;
	int rc;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (const char *c = text; *c; c++)
		lines += *c == '\n';

	f = open_memstream(&errs, &errlen);
	if (!f) {
		free(text);
		return 0;
	}
	memset(&cfg, 0x5a, sizeof(cfg));
	memcpy(&copy, &cfg, sizeof(cfg));
	rc = tsd_config_parse_string(NAME, text, &cfg, f);
	fclose(f);

	if (rc == 0) {
		require(errlen == 0, "accepted with errors", errs);
		check_accepted(&cfg);
		tsd_config_free(&cfg);
	} else {
		require(rc == -1, "return value other than 0 or -1", NULL);
		require(memcmp(&cfg, &copy, sizeof(cfg)) == 0, "refused but cfg written", NULL);
		require(errlen > 0, "refused without an error message", NULL);
		require(strlen(errs) == errlen, "NUL byte in the errors", NULL);
		check_errors(errs, lines);
	}
	free(errs);
	free(text);
	return 0;
}
