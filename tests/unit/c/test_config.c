// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the daemon's configuration parser (src/daemon/config.c).
 *
 *   test_config BAD_DIR GOOD_DIR SHIPPED_CONF
 *
 * BAD_DIR holds NAME.conf files that must be refused, each with NAME.err: one
 * "LINE: message prefix" per expected error, in order, and no other error.
 * Every *.conf of GOOD_DIR (the fuzzer's seeds) must be accepted.
 * Prints one "PASS name" or "FAIL name: why" line per case; exits 1 on a
 * failure.
 */
#define _GNU_SOURCE /* asprintf */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "../../../src/daemon/config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNSAFE_ENV    "TCP_SPLICE_CONFIG_UNSAFE_OK"

static int failures;
static char tmpdir[] = "/tmp/test_config.XXXXXX";

/* ---- reporting ---- */

/* A case collects its first failure; report() prints the one line. */
struct tcase {
	const char *name;
	char why[1024];
};

static void check(struct tcase *t, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void check(struct tcase *t, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok || t->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
}

static void report(struct tcase *t)
{
	if (t->why[0]) {
		/* One line per case: newlines of quoted output become '|'. */
		for (char *c = t->why; *c; c++)
			if (*c == '\n')
				*c = '|';
		printf("FAIL %s: %s\n", t->name, t->why);
		failures++;
	} else {
		printf("PASS %s\n", t->name);
	}
	fflush(stdout);
}

/* ---- helpers ---- */

/* Parses text named "t.conf"; *errs gets what was written to the error stream. */
static int parse(const char *text, struct tsd_config *cfg, char **errs)
{
	size_t len;
	FILE *f = open_memstream(errs, &len);
	int rc;

	if (!f) {
		perror("open_memstream");
		exit(2);
	}
	rc = tsd_config_parse_string("t.conf", text, cfg, f);
	fclose(f);
	return rc;
}

/* Parses text that must be accepted. */
static bool parse_ok(struct tcase *t, const char *text, struct tsd_config *cfg)
{
	char *errs = NULL;
	int rc = parse(text, cfg, &errs);

	check(t, rc == 0 && errs[0] == '\0', "refused (rc %d): %s", rc, errs);
	free(errs);
	return rc == 0;
}

/* Parses text that must be refused with exactly these errors (prefixes, in order). */
static void parse_bad(struct tcase *t, const char *text, const char *const *expected, size_t n)
{
	struct tsd_config cfg;
	char *errs = NULL, *line, *save = NULL;
	size_t i = 0;
	int rc;

	rc = parse(text, &cfg, &errs);
	check(t, rc == -1, "accepted, expected %zu error(s)", n);
	if (rc == 0) {
		tsd_config_free(&cfg);
		free(errs);
		return;
	}
	for (line = strtok_r(errs, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		if (i >= n) {
			check(t, false, "unexpected error '%s'", line);
			break;
		}
		check(t, strncmp(line, expected[i], strlen(expected[i])) == 0,
		      "error %zu is '%s', expected '%s...'", i + 1, line, expected[i]);
	}
	check(t, i >= n, "%zu error(s), expected %zu", i, n);
	free(errs);
}

static char *write_temp(const char *name, const void *data, size_t len, mode_t mode)
{
	char *path;
	int fd;

	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		exit(2);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) < 0) {
		perror(path);
		exit(2);
	}
	close(fd);
	return path;
}

/* parse_file with errors captured; TCP_SPLICE_CONFIG_UNSAFE_OK as given (NULL: unset). */
static int parse_path(const char *path, const char *unsafe, struct tsd_config *cfg, char **errs)
{
	size_t len;
	FILE *f = open_memstream(errs, &len);
	int rc;

	if (!f)
		exit(2);
	if (unsafe)
		setenv(UNSAFE_ENV, unsafe, 1);
	else
		unsetenv(UNSAFE_ENV);
	rc = tsd_config_parse_file(path, cfg, f);
	unsetenv(UNSAFE_ENV);
	fclose(f);
	return rc;
}

/* ---- good files ---- */

static void test_defaults(void)
{
	struct tcase t = {.name = "config-defaults"};
	struct tsd_config cfg;

	tsd_config_defaults(&cfg);
	check(&t, cfg.ring_max_kb == 4096, "ring_max_kb %u", cfg.ring_max_kb);
	check(&t, cfg.ring_mem_max_kb == 0, "ring_mem_max_kb %lu", cfg.ring_mem_max_kb);
	check(&t, cfg.busy_poll_us == 0, "busy_poll_us %u", cfg.busy_poll_us);
	check(&t, cfg.early_wake, "early_wake off");
	check(&t, cfg.early_wake_poll, "early_wake_poll off");
	check(&t, cfg.relay_zerocopy, "relay_zerocopy off");
	check(&t, cfg.stats_interval_s == 10, "stats_interval_s %u", cfg.stats_interval_s);
	check(&t, cfg.log_level == LOG_INFO, "log_level %d", cfg.log_level);
	check(&t, !cfg.policies && cfg.npolicies == 0, "policies");
	report(&t);
}

static void test_empty(void)
{
	static const char *const texts[] = {
		"",
		"\n\n\n",
		"# only comments\n; and these\n   # indented\n\t; too\n",
		"[global]\n",
		"\xef\xbb\xbf# a BOM\n",
	};
	struct tcase t = {.name = "config-empty-files"};

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct tsd_config cfg;

		if (!parse_ok(&t, texts[i], &cfg))
			continue;
		check(&t, cfg.npolicies == 0 && cfg.ring_max_kb == 4096, "text %zu: not defaults",
		      i);
		tsd_config_free(&cfg);
	}
	report(&t);
}

static void test_full(void)
{
	struct tcase t = {.name = "config-every-key"};
	struct tsd_config cfg;
	const struct tsd_policy *p;

	if (parse_ok(&t,
		     "[global]\n"
		     "ring_max_kb = 256\n"
		     "ring_mem_max_mb = 64\n"
		     "busy_poll_us = 50\n"
		     "early_wake = no\n"
		     "early_wake_poll = no\n"
		     "relay_zerocopy = no\n"
		     "stats_interval = 2min\n"
		     "log_level = debug\n"
		     "\n"
		     "[policy containers]\n"
		     "cgroup = /system.slice/docker-*.scope/\n"
		     "ports = 6379, 8000-8100\n"
		     "scope = local\n"
		     "family = ipv6\n"
		     "enabled = no\n",
		     &cfg)) {
		check(&t, cfg.ring_max_kb == 256, "ring_max_kb %u", cfg.ring_max_kb);
		check(&t, cfg.ring_mem_max_kb == 64 * 1024, "ring_mem_max_kb %lu",
		      cfg.ring_mem_max_kb);
		check(&t, cfg.busy_poll_us == 50, "busy_poll_us %u", cfg.busy_poll_us);
		check(&t, !cfg.early_wake, "early_wake on");
		check(&t, !cfg.early_wake_poll, "early_wake_poll on");
		check(&t, !cfg.relay_zerocopy, "relay_zerocopy on");
		check(&t, cfg.stats_interval_s == 120, "stats_interval_s %u", cfg.stats_interval_s);
		check(&t, cfg.log_level == LOG_DEBUG, "log_level %d", cfg.log_level);
		check(&t, cfg.npolicies == 1, "npolicies %zu", cfg.npolicies);
		if (cfg.npolicies == 1) {
			p = &cfg.policies[0];
			check(&t, strcmp(p->name, "containers") == 0, "name '%s'", p->name);
			check(&t, strcmp(p->cgroup, "system.slice/docker-*.scope") == 0,
			      "cgroup '%s'", p->cgroup);
			check(&t,
			      p->nports == 2 && p->ports[0].lo == 6379 && p->ports[0].hi == 6379 &&
				      p->ports[1].lo == 8000 && p->ports[1].hi == 8100,
			      "ports");
			check(&t, p->scope == TS_SCOPE_LOCAL, "scope %d", p->scope);
			check(&t, p->family_mask == TS_FAMILY_IPV6, "family %u", p->family_mask);
			check(&t, !p->enabled, "enabled");
			check(&t, p->line == 11, "line %d", p->line);
		}
		tsd_config_free(&cfg);
	}
	report(&t);
}

static void test_policy_defaults(void)
{
	struct tcase t = {.name = "config-policy-defaults"};
	struct tsd_config cfg;

	if (parse_ok(&t, "[policy p]\ncgroup = **\n", &cfg)) {
		const struct tsd_policy *p = &cfg.policies[0];

		check(&t, cfg.npolicies == 1, "npolicies %zu", cfg.npolicies);
		check(&t, p->scope == TS_SCOPE_LOOPBACK, "scope %d", p->scope);
		check(&t, p->family_mask == (TS_FAMILY_IPV4 | TS_FAMILY_IPV6), "family %u",
		      p->family_mask);
		check(&t, p->enabled, "not enabled");
		check(&t, p->nports == 0, "nports %u", p->nports);
		check(&t, p->line == 1, "line %d", p->line);
		tsd_config_free(&cfg);
	}
	report(&t);
}

static void test_policy_order(void)
{
	struct tcase t = {.name = "config-policies-in-file-order"};
	struct tsd_config cfg;
	char text[16384];
	size_t at = 0;

	/* 40 policies: the array grows several times. */
	for (int i = 0; i < 40; i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at,
				       "[policy p%d]\ncgroup = c%d/**\n\n", i, i);
	if (parse_ok(&t, text, &cfg)) {
		check(&t, cfg.npolicies == 40, "npolicies %zu", cfg.npolicies);
		for (size_t i = 0; i < cfg.npolicies; i++) {
			char name[32], cg[32];

			snprintf(name, sizeof(name), "p%zu", i);
			snprintf(cg, sizeof(cg), "c%zu/**", i);
			check(&t, strcmp(cfg.policies[i].name, name) == 0, "policy %zu is '%s'", i,
			      cfg.policies[i].name);
			check(&t, strcmp(cfg.policies[i].cgroup, cg) == 0, "cgroup %zu is '%s'", i,
			      cfg.policies[i].cgroup);
			check(&t, cfg.policies[i].line == (int)(3 * i + 1), "line %zu is %d", i,
			      cfg.policies[i].line);
		}
		tsd_config_free(&cfg);
	}
	report(&t);
}

/* TSD_MAX_POLICIES are accepted, one more is an error at its header. */
static void test_policy_limit(void)
{
	struct tcase t = {.name = "config-policy-limit"};
	size_t size = (TSD_MAX_POLICIES + 1) * 40, at = 0;
	char *text = malloc(size), want[64];
	struct tsd_config cfg;

	if (!text)
		exit(2);
	for (int i = 0; i < TSD_MAX_POLICIES; i++)
		at += (size_t)snprintf(text + at, size - at, "[policy p%d]\ncgroup = **\n", i);
	if (parse_ok(&t, text, &cfg)) {
		check(&t, cfg.npolicies == TSD_MAX_POLICIES, "npolicies %zu", cfg.npolicies);
		tsd_config_free(&cfg);
	}
	snprintf(text + at, size - at, "[policy last]\ncgroup = **\n");
	snprintf(want, sizeof(want), "t.conf:%d: more than %d policies", 2 * TSD_MAX_POLICIES + 1,
		 TSD_MAX_POLICIES);
	parse_bad(&t, text, (const char *const[]){want}, 1);
	free(text);
	report(&t);
}

static void test_values(void)
{
	static const struct {
		const char *text; /* one key of [global] or of [policy p] */
		enum { GLOBAL, POLICY } in;
		const char *field;
		long want;
	} cases[] = {
		{"stats_interval = 10", GLOBAL, "stats", 10},
		{"stats_interval = 10s", GLOBAL, "stats", 10},
		{"stats_interval = 10 s", GLOBAL, "stats", 10},
		{"stats_interval = 45sec", GLOBAL, "stats", 45},
		{"stats_interval = 2min", GLOBAL, "stats", 120},
		{"stats_interval = 60m", GLOBAL, "stats", 3600},
		{"stats_interval = 1h", GLOBAL, "stats", 3600},
		{"stats_interval = 3600", GLOBAL, "stats", 3600},
		{"stats_interval = 1", GLOBAL, "stats", 1},
		{"ring_max_kb = 4", GLOBAL, "ring", 4},
		{"ring_max_kb = 65536", GLOBAL, "ring", 65536},
		{"ring_max_kb = 0064", GLOBAL, "ring", 64},
		{"ring_mem_max_mb = 0", GLOBAL, "mem", 0},
		{"ring_mem_max_mb = 1048576", GLOBAL, "mem", 1048576L * 1024},
		{"busy_poll_us = 1000000", GLOBAL, "poll", 1000000},
		{"early_wake = no", GLOBAL, "early", 0},
		{"early_wake = false", GLOBAL, "early", 0},
		{"early_wake = 0", GLOBAL, "early", 0},
		{"early_wake = yes", GLOBAL, "early", 1},
		{"early_wake = True", GLOBAL, "early", 1},
		{"early_wake_poll = yes", GLOBAL, "early_poll", 1},
		{"early_wake_poll = 0", GLOBAL, "early_poll", 0},
		{"relay_zerocopy = no", GLOBAL, "relay_zc", 0},
		{"relay_zerocopy = true", GLOBAL, "relay_zc", 1},
		{"log_level = debug", GLOBAL, "log", LOG_DEBUG},
		{"log_level = info", GLOBAL, "log", LOG_INFO},
		{"log_level = notice", GLOBAL, "log", LOG_NOTICE},
		{"log_level = warning", GLOBAL, "log", LOG_WARNING},
		{"log_level = err", GLOBAL, "log", LOG_ERR},
		{"log_level = WARNING", GLOBAL, "log", LOG_WARNING},
		{"scope = loopback", POLICY, "scope", TS_SCOPE_LOOPBACK},
		{"scope = local", POLICY, "scope", TS_SCOPE_LOCAL},
		{"scope = any", POLICY, "scope", TS_SCOPE_ANY},
		{"scope = Local", POLICY, "scope", TS_SCOPE_LOCAL},
		{"family = ipv4", POLICY, "family", TS_FAMILY_IPV4},
		{"family = ipv6", POLICY, "family", TS_FAMILY_IPV6},
		{"family = any", POLICY, "family", TS_FAMILY_IPV4 | TS_FAMILY_IPV6},
		{"enabled = yes", POLICY, "enabled", 1},
		{"enabled = true", POLICY, "enabled", 1},
		{"enabled = 1", POLICY, "enabled", 1},
		{"enabled = YES", POLICY, "enabled", 1},
		{"enabled = no", POLICY, "enabled", 0},
		{"enabled = false", POLICY, "enabled", 0},
		{"enabled = 0", POLICY, "enabled", 0},
		{"ports = any", POLICY, "nports", 0},
		{"ports = ANY", POLICY, "nports", 0},
		{"ports =", POLICY, "nports", 0},
		{"ports = 1-65535", POLICY, "nports", 1},
	};
	struct tcase t = {.name = "config-values"};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct tsd_config cfg;
		char text[256];
		long got = -1;
		const char *f = cases[i].field;

		if (cases[i].in == GLOBAL)
			snprintf(text, sizeof(text), "[global]\n%s\n", cases[i].text);
		else
			snprintf(text, sizeof(text), "[policy p]\ncgroup = **\n%s\n",
				 cases[i].text);
		if (!parse_ok(&t, text, &cfg))
			continue;
		if (!strcmp(f, "stats"))
			got = cfg.stats_interval_s;
		else if (!strcmp(f, "ring"))
			got = cfg.ring_max_kb;
		else if (!strcmp(f, "mem"))
			got = (long)cfg.ring_mem_max_kb;
		else if (!strcmp(f, "poll"))
			got = cfg.busy_poll_us;
		else if (!strcmp(f, "early"))
			got = cfg.early_wake;
		else if (!strcmp(f, "early_poll"))
			got = cfg.early_wake_poll;
		else if (!strcmp(f, "relay_zc"))
			got = cfg.relay_zerocopy;
		else if (!strcmp(f, "log"))
			got = cfg.log_level;
		else if (!strcmp(f, "scope"))
			got = cfg.policies[0].scope;
		else if (!strcmp(f, "family"))
			got = cfg.policies[0].family_mask;
		else if (!strcmp(f, "enabled"))
			got = cfg.policies[0].enabled;
		else if (!strcmp(f, "nports"))
			got = cfg.policies[0].nports;
		check(&t, got == cases[i].want, "'%s': got %ld, expected %ld", cases[i].text, got,
		      cases[i].want);
		tsd_config_free(&cfg);
	}
	report(&t);
}

static void test_cgroup_normalized(void)
{
	static const struct {
		const char *value, *want;
	} cases[] = {
		{"/", ""},
		{"//", ""},
		{"**", "**"},
		{"/**", "**"},
		{"/system.slice/", "system.slice"},
		{"system.slice/*.service", "system.slice/*.service"},
		{"/a/**/b/", "a/**/b"},
		{"user.slice/user-?.slice", "user.slice/user-?.slice"},
		{"a#b", "a#b"},
		{"machine.slice/with space", "machine.slice/with space"},
	};
	struct tcase t = {.name = "config-cgroup-normalized"};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct tsd_config cfg;
		char text[256];

		snprintf(text, sizeof(text), "[policy p]\ncgroup = %s\n", cases[i].value);
		if (!parse_ok(&t, text, &cfg))
			continue;
		check(&t, strcmp(cfg.policies[0].cgroup, cases[i].want) == 0,
		      "'%s' became '%s', expected '%s'", cases[i].value, cfg.policies[0].cgroup,
		      cases[i].want);
		tsd_config_free(&cfg);
	}
	report(&t);
}

/* Indentation, CRLF, BOM, ':' separators, trailing comments, spaces in headers. */
static void test_syntax_tolerance(void)
{
	struct tcase t = {.name = "config-syntax-tolerance"};
	struct tsd_config cfg;

	if (parse_ok(&t,
		     "\xef\xbb\xbf[global]\r\n"
		     "  ring_max_kb = 128   # KiB\r\n"
		     "\tlog_level:notice ; quieter\r\n"
		     "[ policy \t web ]   ; the web tier\r\n"
		     "    cgroup = web.slice/**\r\n"
		     "    ports = 80 , 443 ,8000 - 8080\r\n"
		     "\r\n"
		     "[policy db] # the database\n"
		     "cgroup=db.slice/x#not-a-comment\n"
		     "scope\t=\tany\n",
		     &cfg)) {
		check(&t, cfg.ring_max_kb == 128, "ring_max_kb %u", cfg.ring_max_kb);
		check(&t, cfg.log_level == LOG_NOTICE, "log_level %d", cfg.log_level);
		check(&t, cfg.npolicies == 2, "npolicies %zu", cfg.npolicies);
		if (cfg.npolicies == 2) {
			const struct tsd_policy *w = &cfg.policies[0], *d = &cfg.policies[1];

			check(&t, strcmp(w->name, "web") == 0, "name '%s'", w->name);
			check(&t, strcmp(w->cgroup, "web.slice/**") == 0, "cgroup '%s'", w->cgroup);
			check(&t,
			      w->nports == 3 && w->ports[0].lo == 80 && w->ports[1].hi == 443 &&
				      w->ports[2].lo == 8000 && w->ports[2].hi == 8080,
			      "ports");
			check(&t, strcmp(d->cgroup, "db.slice/x#not-a-comment") == 0, "cgroup '%s'",
			      d->cgroup);
			check(&t, d->scope == TS_SCOPE_ANY, "scope %d", d->scope);
			check(&t, d->line == 8, "line %d", d->line);
		}
		tsd_config_free(&cfg);
	}
	report(&t);
}

/* The library's line buffer (INI_MAX_LINE) bounds a line, comments excluded. */
static void test_line_length(void)
{
	struct tcase t = {.name = "config-line-length-limit"};
	const size_t limit = INI_MAX_LINE - 2;
	const char *head = "[policy p]\ncgroup = ";
	size_t hl = strlen("cgroup = ");
	char text[1024], want[64];
	struct tsd_config cfg;
	size_t at;

	/* Exactly at the limit, with a long comment after it. */
	at = (size_t)snprintf(text, sizeof(text), "%s", head);
	memset(text + at, 'x', limit - hl);
	at += limit - hl;
	at += (size_t)snprintf(text + at, sizeof(text) - at, "   # %0300d\n", 0);
	if (parse_ok(&t, text, &cfg)) {
		check(&t, strlen(cfg.policies[0].cgroup) == limit - hl, "cgroup of %zu",
		      strlen(cfg.policies[0].cgroup));
		tsd_config_free(&cfg);
	}

	/* One more: refused, and the line after it keeps its number. */
	at = (size_t)snprintf(text, sizeof(text), "%s", head);
	memset(text + at, 'x', limit - hl + 1);
	at += limit - hl + 1;
	snprintf(text + at, sizeof(text) - at, "\nscope = wide\n");
	snprintf(want, sizeof(want), "t.conf:2: line too long (%zu characters", limit + 1);
	parse_bad(&t, text, (const char *const[]){want, "t.conf:3: bad value 'wide' for scope"}, 2);
	report(&t);
}

/* An indented line is a key of its own, never a continuation of the previous value. */
static void test_no_continuation(void)
{
	struct tcase t = {.name = "config-indented-line-is-not-a-continuation"};
	struct tsd_config cfg;

	if (parse_ok(&t, "[policy p]\ncgroup = a\n   ports = 80\n", &cfg)) {
		check(&t, strcmp(cfg.policies[0].cgroup, "a") == 0, "cgroup '%s'",
		      cfg.policies[0].cgroup);
		check(&t, cfg.policies[0].nports == 1, "nports %u", cfg.policies[0].nports);
		tsd_config_free(&cfg);
	}
	parse_bad(&t, "[policy p]\ncgroup = a\n   b\n",
		  (const char *const[]){"t.conf:3: expected 'key = value' or '[section]'"}, 1);
	report(&t);
}

static void test_refused_untouched(void)
{
	struct tcase t = {.name = "config-refused-file-leaves-cfg-untouched"};
	struct tsd_config cfg, copy;
	char *errs = NULL;

	memset(&cfg, 0xa5, sizeof(cfg));
	memcpy(&copy, &cfg, sizeof(cfg));
	check(&t, parse("[policy p]\ncgroup = **\nscope = wide\n", &cfg, &errs) == -1, "accepted");
	check(&t, memcmp(&cfg, &copy, sizeof(cfg)) == 0, "cfg was written");
	free(errs);

	/* A reload that fails keeps the running configuration. */
	if (parse_ok(&t, "[policy keep]\ncgroup = **\n", &cfg)) {
		memcpy(&copy, &cfg, sizeof(cfg));
		check(&t, parse("[policy new]\n", &cfg, &errs) == -1, "accepted");
		free(errs);
		check(&t, memcmp(&cfg, &copy, sizeof(cfg)) == 0, "cfg was written");
		check(&t, strcmp(cfg.policies[0].name, "keep") == 0, "policy lost");
		tsd_config_free(&cfg);
		tsd_config_free(&cfg); /* twice is harmless */
		check(&t, cfg.npolicies == 0 && !cfg.policies, "not reset by free");
	}
	check(&t, tsd_config_parse_string("t", "[oops]\n", &cfg, NULL) == -1,
	      "accepted with errs NULL");
	report(&t);
}

static void test_error_format(void)
{
	struct tcase t = {.name = "config-errors-one-line-each-escaped"};
	struct tsd_config cfg;
	char *errs = NULL;

	/* Control bytes in a value are escaped; the message stays on one line. */
	check(&t, parse("[global]\nlog_level = a\x1b[31mb\rc\n", &cfg, &errs) == -1, "accepted");
	check(&t,
	      strcmp(errs, "t.conf:2: bad value 'a\\x1b[31mb\\x0dc' for log_level: expected debug, "
			   "info, notice, warning or err\n") == 0,
	      "got '%s'", errs);
	free(errs);

	/* A name for messages other than the path. */
	{
		size_t len;
		FILE *f = open_memstream(&errs, &len);

		tsd_config_parse_string(NULL, "[x]\n", &cfg, f);
		fclose(f);
		check(&t, strncmp(errs, "<string>:1: unknown section", 27) == 0, "got '%s'", errs);
		free(errs);
	}
	report(&t);
}

/* ---- files ---- */

static void test_file_checks(void)
{
	struct tcase t = {.name = "config-file-checks"};
	static const char good[] = "[policy p]\ncgroup = **\n";
	struct tsd_config cfg;
	char *errs = NULL, *path, *want = NULL;
	int rc;

	/* Missing file, directory, FIFO (which must not block). */
	rc = parse_path("/nonexistent/tcp-splice.conf", NULL, &cfg, &errs);
	check(&t,
	      rc == -1 && strstr(errs, "/nonexistent/tcp-splice.conf: cannot open: No such file"),
	      "missing file: rc %d '%s'", rc, errs);
	free(errs);
	rc = parse_path(tmpdir, "1", &cfg, &errs);
	check(&t, rc == -1 && strstr(errs, ": not a regular file"), "directory: rc %d '%s'", rc,
	      errs);
	free(errs);
	if (asprintf(&path, "%s/fifo", tmpdir) < 0 || mkfifo(path, 0600) < 0)
		exit(2);
	rc = parse_path(path, "1", &cfg, &errs);
	check(&t, rc == -1 && strstr(errs, ": not a regular file"), "fifo: rc %d '%s'", rc, errs);
	free(errs);
	free(path);

	/* Writable by others: refused, unless the tests' escape hatch is set. */
	path = write_temp("open.conf", good, strlen(good), 0666);
	rc = parse_path(path, NULL, &cfg, &errs);
	check(&t,
	      rc == -1 &&
		      strstr(errs, ": writable by group or others (mode 0666): refusing to use it"),
	      "mode 0666: rc %d '%s'", rc, errs);
	free(errs);
	rc = parse_path(path, "0", &cfg, &errs);
	check(&t, rc == -1, "mode 0666 with %s=0: accepted", UNSAFE_ENV);
	free(errs);
	rc = parse_path(path, "1", &cfg, &errs);
	check(&t, rc == 0, "mode 0666 with %s=1: rc %d '%s'", UNSAFE_ENV, rc, errs);
	if (rc == 0)
		tsd_config_free(&cfg);
	free(errs);

	/* Owned by another user: refused (as root, hand it to nobody). */
	if (geteuid() == 0 && chown(path, 65534, 65534) < 0)
		exit(2);
	if (chmod(path, 0644) < 0)
		exit(2);
	rc = parse_path(path, NULL, &cfg, &errs);
	if (asprintf(&want, "%s: owned by uid %u, not by root", path,
		     geteuid() == 0 ? 65534U : (unsigned int)geteuid()) < 0)
		exit(2);
	check(&t, rc == -1 && strstr(errs, want), "other owner: rc %d '%s'", rc, errs);
	free(errs);
	free(want);

	/* Owned by root, 0644: accepted as it is (only when the tests run as root). */
	if (geteuid() == 0) {
		if (chown(path, 0, 0) < 0)
			exit(2);
		rc = parse_path(path, NULL, &cfg, &errs);
		check(&t, rc == 0, "root 0644: rc %d '%s'", rc, errs);
		if (rc == 0)
			tsd_config_free(&cfg);
		free(errs);
	}
	free(path);
	report(&t);
}

static void test_file_content(void)
{
	struct tcase t = {.name = "config-file-nul-and-size"};
	static const char nul[] = "[global]\nlog_level = de\0bug\n[policy p]\ncgroup = **\n";
	struct tsd_config cfg;
	char *errs = NULL, *path, *want, *big;
	size_t size = 1024 * 1024 + 1;
	int rc;

	path = write_temp("nul.conf", nul, sizeof(nul) - 1, 0644);
	rc = parse_path(path, "1", &cfg, &errs);
	if (asprintf(&want, "%s:2: NUL byte in the line\n", path) < 0)
		exit(2);
	check(&t, rc == -1 && strcmp(errs, want) == 0, "NUL byte: rc %d '%s'", rc, errs);
	free(errs);
	free(want);
	free(path);

	big = malloc(size);
	if (!big)
		exit(2);
	memset(big, '\n', size);
	path = write_temp("big.conf", big, size, 0644);
	rc = parse_path(path, "1", &cfg, &errs);
	check(&t, rc == -1 && strstr(errs, ": larger than 1048576 bytes"), "big: rc %d '%s'", rc,
	      errs);
	free(errs);
	free(path);
	/* The largest file that is read. */
	path = write_temp("max.conf", big, size - 1, 0644);
	rc = parse_path(path, "1", &cfg, &errs);
	check(&t, rc == 0, "1 MiB: rc %d '%s'", rc, errs);
	if (rc == 0)
		tsd_config_free(&cfg);
	free(errs);
	free(path);
	free(big);
	report(&t);
}

static void test_shipped(const char *path)
{
	struct tcase t = {.name = "config-shipped-etc-tcp-splice.conf"};
	struct tsd_config cfg;
	char *errs = NULL;
	size_t enabled = 0;
	int rc;

	rc = parse_path(path, "1", &cfg, &errs);
	check(&t, rc == 0, "refused: %s", errs);
	free(errs);
	if (rc == 0) {
		const struct tsd_policy *p = cfg.npolicies ? &cfg.policies[0] : NULL;

		for (size_t i = 0; i < cfg.npolicies; i++)
			enabled += cfg.policies[i].enabled;
		check(&t, cfg.npolicies == 1 && enabled == 1, "%zu policies, %zu enabled",
		      cfg.npolicies, enabled);
		/* Safe by default: loopback only, every cgroup, any port, defaults elsewhere. */
		check(&t, p && strcmp(p->name, "loopback") == 0, "policy name");
		check(&t, p && strcmp(p->cgroup, "**") == 0, "cgroup");
		check(&t, p && p->scope == TS_SCOPE_LOOPBACK, "scope");
		check(&t, p && p->nports == 0, "ports");
		check(&t, cfg.ring_max_kb == 4096 && cfg.stats_interval_s == 10,
		      "globals differ from the defaults");
		tsd_config_free(&cfg);
	}
	report(&t);
}

/* Splits text into its lines (in place); returns how many, at most max. */
static size_t split_lines(char *text, char **lines, size_t max)
{
	char *save = NULL, *l;
	size_t n = 0;

	for (l = strtok_r(text, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	return n;
}

static char *read_all(const char *path)
{
	char *text = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");
	ssize_t n;

	if (!f)
		return NULL;
	n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(text);
		return strdup("");
	}
	return text;
}

static void test_bad_file(const char *dir, const char *name, size_t len)
{
	char tname[300], *conf = NULL, *errfile = NULL, *errs = NULL, *want;
	char *got_lines[64], *want_lines[64];
	struct tsd_config cfg, copy;
	struct tcase t = {.name = tname};
	size_t ngot, nwant;
	int rc;

	snprintf(tname, sizeof(tname), "bad/%.*s", (int)(len - 5), name);
	if (asprintf(&conf, "%s/%s", dir, name) < 0 ||
	    asprintf(&errfile, "%s/%.*s.err", dir, (int)(len - 5), name) < 0)
		exit(2);
	memset(&cfg, 0x5a, sizeof(cfg));
	memcpy(&copy, &cfg, sizeof(cfg));
	rc = parse_path(conf, "1", &cfg, &errs);
	check(&t, rc == -1, "accepted");
	if (rc == 0)
		tsd_config_free(&cfg);
	else
		check(&t, memcmp(&cfg, &copy, sizeof(cfg)) == 0, "cfg was written");

	want = read_all(errfile);
	check(&t, want != NULL, "cannot read %s", errfile);
	ngot = split_lines(errs, got_lines, ARRAY_SIZE(got_lines));
	nwant = want ? split_lines(want, want_lines, ARRAY_SIZE(want_lines)) : 0;
	check(&t, !want || nwant > 0, "%s lists no error", errfile);
	for (size_t i = 0; i < nwant || i < ngot; i++) {
		char *glued = NULL;

		if (i >= nwant) {
			check(&t, false, "unexpected error '%s'", got_lines[i]);
			break;
		}
		/* "LINE: message" -> "DIR/NAME.conf:LINE: message" */
		if (asprintf(&glued, "%s:%s", conf, want_lines[i]) < 0)
			exit(2);
		if (i >= ngot)
			check(&t, false, "missing error '%s'", glued);
		else
			check(&t, strncmp(got_lines[i], glued, strlen(glued)) == 0,
			      "got '%s', expected '%s...'", got_lines[i], glued);
		free(glued);
	}
	free(want);
	free(errs);
	free(conf);
	free(errfile);
	report(&t);
}

/* Each NAME.conf of dir is refused with the errors listed in NAME.err. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void test_good_file(const char *dir, const char *name, size_t len)
{
	char tname[300], *conf = NULL, *errs = NULL;
	struct tcase t = {.name = tname};
	struct tsd_config cfg;
	int rc;

	snprintf(tname, sizeof(tname), "good/%.*s", (int)(len - 5), name);
	if (asprintf(&conf, "%s/%s", dir, name) < 0)
		exit(2);
	rc = parse_path(conf, "1", &cfg, &errs);
	check(&t, rc == 0, "refused: %s", errs);
	if (rc == 0) {
		for (size_t i = 0; i < cfg.npolicies; i++)
			check(&t, cfg.policies[i].cgroup != NULL, "policy %zu without cgroup", i);
		tsd_config_free(&cfg);
	}
	free(errs);
	free(conf);
	report(&t);
}

static void test_corpus(const char *dir, bool bad)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, by_name), count = 0;

	if (n < 0) {
		printf("FAIL corpus: cannot read %s: %s\n", dir, strerror(errno));
		failures++;
		return;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(ents[i]->d_name);

		if (len > 5 && strcmp(ents[i]->d_name + len - 5, ".conf") == 0) {
			if (bad)
				test_bad_file(dir, ents[i]->d_name, len);
			else
				test_good_file(dir, ents[i]->d_name, len);
			count++;
		}
		free(ents[i]);
	}
	free(ents);
	if (count == 0) {
		printf("FAIL corpus: no .conf file in %s\n", dir);
		failures++;
	}
}

/* ---- ports ---- */

static void test_ports(void)
{
	static const struct {
		const char *in;
		int n; /* -1: refused */
		unsigned int r[4][2];
		const char *err;
	} cases[] = {
		{"", 0, {{0}}, NULL},
		{"   ", 0, {{0}}, NULL},
		{"any", 0, {{0}}, NULL},
		{" Any ", 0, {{0}}, NULL},
		{"80", 1, {{80, 80}}, NULL},
		{"1", 1, {{1, 1}}, NULL},
		{"65535", 1, {{65535, 65535}}, NULL},
		{"6379, 8000-8100", 2, {{6379, 6379}, {8000, 8100}}, NULL},
		{"1-65535", 1, {{1, 65535}}, NULL},
		{"22-22", 1, {{22, 22}}, NULL},
		{" 80 , 443 , 1000 - 2000 ", 3, {{80, 80}, {443, 443}, {1000, 2000}}, NULL},
		{"080", 1, {{80, 80}}, NULL},
		{"0", -1, {{0}}, "port '0' is out of range 1-65535"},
		{"65536", -1, {{0}}, "port '65536' is out of range 1-65535"},
		{"99999999999999999999999", -1, {{0}}, "port '99999999999999999999999' is out"},
		{"0-80", -1, {{0}}, "port '0' is out of range"},
		{"80-70000", -1, {{0}}, "port '70000' is out of range"},
		{"100-10", -1, {{0}}, "range 100-10 is reversed"},
		{"http", -1, {{0}}, "'http' is not a port or a range LO-HI"},
		{"-80", -1, {{0}}, "'-80' is not a port"},
		{"80-", -1, {{0}}, "'80-' is not a port"},
		{"1-2-3", -1, {{0}}, "'1-2-3' is not a port"},
		{"+80", -1, {{0}}, "'+80' is not a port"},
		{"0x50", -1, {{0}}, "'0x50' is not a port"},
		{"80 443", -1, {{0}}, "'80 443' is not a port"},
		{"80;443", -1, {{0}}, "'80;443' is not a port"},
		{",80", -1, {{0}}, "empty entry in the port list"},
		{"80,", -1, {{0}}, "empty entry in the port list"},
		{"80,,81", -1, {{0}}, "empty entry in the port list"},
		{"any,80", -1, {{0}}, "'any' cannot be combined with ports"},
		{"80, any", -1, {{0}}, "'any' cannot be combined with ports"},
		{"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", -1, {{0}}, "more than 16 ports"},
	};
	struct tcase t = {.name = "ports-parse"};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ts_port_range out[TS_MAX_PORT_RANGES];
		unsigned int n = 99;
		char err[256] = "";
		int rc;

		memset(out, 0xee, sizeof(out));
		rc = tsd_parse_ports(cases[i].in, out, &n, err, sizeof(err));
		if (cases[i].n < 0) {
			check(&t, rc == -1, "'%s' accepted", cases[i].in);
			check(&t, n == 99, "'%s': n written on error", cases[i].in);
			check(&t, strncmp(err, cases[i].err, strlen(cases[i].err)) == 0,
			      "'%s': error '%s', expected '%s...'", cases[i].in, err, cases[i].err);
			continue;
		}
		check(&t, rc == 0, "'%s' refused: %s", cases[i].in, err);
		check(&t, rc != 0 || n == (unsigned int)cases[i].n, "'%s': %u ranges, expected %d",
		      cases[i].in, n, cases[i].n);
		for (int j = 0; rc == 0 && j < cases[i].n; j++)
			check(&t, out[j].lo == cases[i].r[j][0] && out[j].hi == cases[i].r[j][1],
			      "'%s': range %d is %u-%u", cases[i].in, j, out[j].lo, out[j].hi);
	}
	/* Sixteen is the most, and no error buffer is fine. */
	{
		struct ts_port_range out[TS_MAX_PORT_RANGES];
		unsigned int n = 0;

		check(&t,
		      tsd_parse_ports("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16-20", out, &n, NULL,
				      0) == 0 &&
			      n == 16 && out[15].lo == 16 && out[15].hi == 20,
		      "sixteen ranges refused");
		check(&t, tsd_parse_ports("x", out, &n, NULL, 0) == -1, "'x' accepted");
	}
	report(&t);
}

/* ---- globs ---- */

static void test_glob(void)
{
	static const struct {
		const char *pattern, *path;
		bool match;
	} cases[] = {
		/* the root */
		{"", "", true},
		{"**", "", true},
		{"*", "", false},
		{"", "a", false},
		/* literal */
		{"system.slice", "system.slice", true},
		{"system.slice", "system.slices", false},
		{"system.slice", "system.slice/x", false},
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		/* '*' stays in its component */
		{"*", "a", true},
		{"*", "a/b", false},
		{"system.slice/*", "system.slice/docker.service", true},
		{"system.slice/*", "system.slice", false},
		{"system.slice/*", "system.slice/a/b", false},
		{"system.slice/*.service", "system.slice/redis.service", true},
		{"system.slice/*.service", "system.slice/redis.socket", false},
		{"system.slice/*.service", "system.slice/.service", true},
		{"*.slice/*", "user.slice/x", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*b*c", "abcbc", true},
		{"*a", "aaaa", true},
		{"*x*", "abc", false},
		{"docker-*.scope", "docker-0123456789abcdef.scope", true},
		/* '?' is one character, never '/' */
		{"user-?.slice", "user-1.slice", true},
		{"user-?.slice", "user-10.slice", false},
		{"a?b", "a/b", false},
		{"???", "abc", true},
		{"???", "ab", false},
		/* '**': any number of components, none included */
		{"**", "a", true},
		{"**", "a/b/c", true},
		{"a/**", "a", true},
		{"a/**", "a/b", true},
		{"a/**", "a/b/c/d", true},
		{"a/**", "b/a", false},
		{"**/x.service", "x.service", true},
		{"**/x.service", "system.slice/x.service", true},
		{"**/x.service", "a/b/c/x.service", true},
		{"**/x.service", "a/b/c/x.service/d", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"a/**/b/**/c", "a/1/b/2/3/c", true},
		{"a/**/b/**/c", "a/b/c", true},
		{"a/**/b/**/c", "a/c/b", false},
		{"**/b/*", "x/b/y", true},
		{"**/b/*", "x/b/y/z", false},
		{"**/**", "a/b", true},
		{"**/*.scope/**", "machine.slice/libpod-1.scope/container", true},
		{"**/*.scope/**", "machine.slice/libpod-1.scope", true},
		{"**/*.scope/**", "machine.slice/libpod-1.slice", false},
		/* slashes at the ends and doubled are not components */
		{"/a/b/", "a/b", true},
		{"a//b", "a/b", true},
		{"a/b", "/a/b", true},
		/* the backtracking stays cheap */
		{"**/a/**/a/**/a/**/a/**/a/**/b",
		 "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a", false},
		{"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	};
	struct tcase t = {.name = "glob-match"};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool got = tsd_glob_match(cases[i].pattern, cases[i].path);

		check(&t, got == cases[i].match, "'%s' ~ '%s': %s, expected %s", cases[i].pattern,
		      cases[i].path, got ? "match" : "no match", cases[i].match ? "match" : "none");
	}
	report(&t);
}

/* ---- errors across a file ---- */

static void test_all_errors(void)
{
	struct tcase t = {.name = "config-every-error-in-line-order"};

	parse_bad(&t,
		  "[global]\n"
		  "ring_max_kb = 1\n"
		  "[policy a]\n"
		  "scope = wide\n"
		  "[policy b]\n"
		  "cgroup = **\n"
		  "family = ipx\n"
		  "[nope]\n"
		  "x = y\n"
		  "[global]\n"
		  "stats_interval = forever\n",
		  (const char *const[]){
			  "t.conf:2: bad value '1' for ring_max_kb",
			  "t.conf:3: [policy a] has no cgroup",
			  "t.conf:4: bad value 'wide' for scope",
			  "t.conf:7: bad value 'ipx' for family",
			  "t.conf:8: unknown section ['nope']",
			  "t.conf:10: duplicate section [global] (first at line 1)",
			  "t.conf:11: bad value 'forever' for stats_interval",
		  },
		  7);
	report(&t);
}

static void cleanup_tmpdir(void)
{
	static const char *const names[] = {"fifo", "open.conf", "nul.conf", "big.conf",
					    "max.conf"};
	char path[256];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s BAD_DIR GOOD_DIR SHIPPED_CONF\n", argv[0]);
		return 2;
	}
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	unsetenv(UNSAFE_ENV);

	test_defaults();
	test_empty();
	test_full();
	test_policy_defaults();
	test_policy_order();
	test_policy_limit();
	test_values();
	test_cgroup_normalized();
	test_syntax_tolerance();
	test_line_length();
	test_no_continuation();
	test_refused_untouched();
	test_error_format();
	test_all_errors();
	test_file_checks();
	test_file_content();
	test_shipped(argv[3]);
	test_corpus(argv[1], true);
	test_corpus(argv[2], false);
	test_ports();
	test_glob();

	cleanup_tmpdir();
	return failures ? 1 : 0;
}
