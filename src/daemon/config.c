// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice daemon: parsing of /etc/tcp-splice.conf (see tcp-splice.conf(5)).
 *
 * libinih splits the "key = value" lines; whatever depends on how libinih was
 * built is settled here instead, in the line reader that feeds it:
 *  - comments ('#' or ';' first on a line, or after whitespace) are removed,
 *    so the library's inline-comment options do not matter;
 *  - indentation is removed, so an indented line is never glued to the value
 *    before it as a multi-line continuation;
 *  - a line longer than the library's line buffer is reported here instead of
 *    being split in two, which would shift every later line number;
 *  - section headers are handled here, since inih truncates long section
 *    names and says nothing about a section without keys;
 *  - every line that inih would refuse is reported here with its number (inih
 *    returns the first one only).
 * inih reads one line and handles it before reading the next, so the reader's
 * line number is the line of every handler call.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"

#define ARRAY_SIZE(a)	 (sizeof(a) / sizeof((a)[0]))
#define _cleanup_(f)	 __attribute__((cleanup(f)))
#define CONFIG_MAX_BYTES (1024 * 1024)
#define UNSAFE_ENV	 "TCP_SPLICE_CONFIG_UNSAFE_OK"

enum section {
	SEC_NONE,    /* before the first header */
	SEC_GLOBAL,  /* [global] */
	SEC_POLICY,  /* [policy NAME]: the last of cfg.policies */
	SEC_UNKNOWN, /* a header already reported: its keys are skipped */
};

struct parser;
typedef bool (*key_setter)(struct parser *p, const char *value, char *why, size_t whylen);

struct key {
	const char *name;
	enum section section;
	key_setter set;
};

struct config_error {
	int line; /* 0: about the whole file */
	unsigned int seq;
	char *msg;
};

static bool set_ring_max_kb(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_ring_mem_max_mb(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_busy_poll_us(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_early_wake(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_early_wake_poll(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_relay_zerocopy(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_stats_interval(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_log_level(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_cgroup(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_ports(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_scope(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_family(struct parser *p, const char *v, char *why, size_t whylen);
static bool set_enabled(struct parser *p, const char *v, char *why, size_t whylen);

static const struct key keys[] = {
	{"ring_max_kb", SEC_GLOBAL, set_ring_max_kb},
	{"ring_mem_max_mb", SEC_GLOBAL, set_ring_mem_max_mb},
	{"busy_poll_us", SEC_GLOBAL, set_busy_poll_us},
	{"early_wake", SEC_GLOBAL, set_early_wake},
	{"early_wake_poll", SEC_GLOBAL, set_early_wake_poll},
	{"relay_zerocopy", SEC_GLOBAL, set_relay_zerocopy},
	{"stats_interval", SEC_GLOBAL, set_stats_interval},
	{"log_level", SEC_GLOBAL, set_log_level},
	{"cgroup", SEC_POLICY, set_cgroup},
	{"ports", SEC_POLICY, set_ports},
	{"scope", SEC_POLICY, set_scope},
	{"family", SEC_POLICY, set_family},
	{"enabled", SEC_POLICY, set_enabled},
};

struct parser {
	const char *name; /* path, for messages */
	const char *text; /* may hold NUL bytes when read from a file */
	size_t len, pos;
	int lineno; /* of the line last handed to inih */

	struct tsd_config cfg; /* being built; handed over only on success */
	size_t policies_cap;
	enum section section;
	bool header_refused; /* the current section's header has an error */
	int global_line;
	int seen[ARRAY_SIZE(keys)]; /* line where the current section set each key, 0: not yet */

	struct config_error *errors;
	size_t nerrors, errors_cap;
	bool oom;
};

/* Enough for a value quoted with escapes, cut after QUOTE_MAX bytes. */
#define QUOTE_MAX 64
struct quoted {
	char s[2 + 4 * QUOTE_MAX + 3 + 1];
};

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static void freep(void *p)
{
	free(*(void **)p);
}

/* Text for a message, control bytes escaped and long text cut; in quotes if marks. */
static const char *escape(struct quoted *q, const char *s, size_t n, bool marks)
{
	static const char hex[] = "0123456789abcdef";
	char *o = q->s;
	size_t i;

	if (marks)
		*o++ = '\'';
	for (i = 0; i < n && i < QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0xf];
		} else {
			*o++ = (char)c;
		}
	}
	if (i < n) {
		memcpy(o, "...", 3);
		o += 3;
	}
	if (marks)
		*o++ = '\'';
	*o = '\0';
	return q->s;
}

static const char *quote_n(struct quoted *q, const char *s, size_t n)
{
	return escape(q, s, n, true);
}

static const char *quote(struct quoted *q, const char *s)
{
	return escape(q, s, strlen(s), true);
}

static void add_error(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_error(struct parser *p, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (p->nerrors == p->errors_cap) {
		size_t cap = p->errors_cap ? 2 * p->errors_cap : 16;
		struct config_error *e = realloc(p->errors, cap * sizeof(*e));

		if (!e) {
			p->oom = true;
			return;
		}
		p->errors = e;
		p->errors_cap = cap;
	}
	p->errors[p->nerrors].msg = strdup(msg);
	if (!p->errors[p->nerrors].msg) {
		p->oom = true;
		return;
	}
	p->errors[p->nerrors].line = line;
	p->errors[p->nerrors].seq = (unsigned int)p->nerrors;
	p->nerrors++;
}

static bool has_error_at(const struct parser *p, int line)
{
	for (size_t i = 0; i < p->nerrors; i++)
		if (p->errors[i].line == line)
			return true;
	return false;
}

static int error_order(const void *a, const void *b)
{
	const struct config_error *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* In line order: a missing cgroup is only known at the end of the file. */
static void write_errors(struct parser *p, FILE *errs)
{
	if (!errs)
		return;
	qsort(p->errors, p->nerrors, sizeof(*p->errors), error_order);
	for (size_t i = 0; i < p->nerrors; i++) {
		if (p->errors[i].line > 0)
			fprintf(errs, "%s:%d: %s\n", p->name, p->errors[i].line, p->errors[i].msg);
		else
			fprintf(errs, "%s: %s\n", p->name, p->errors[i].msg);
	}
	if (p->oom)
		fprintf(errs, "%s: out of memory while reading the configuration\n", p->name);
	fflush(errs);
}

static void parser_free(struct parser *p)
{
	for (size_t i = 0; i < p->nerrors; i++)
		free(p->errors[i].msg);
	free(p->errors);
	p->errors = NULL;
	p->nerrors = 0;
}

void tsd_config_defaults(struct tsd_config *cfg)
{
	*cfg = (struct tsd_config){
		.ring_max_kb = 4096,
		.ring_mem_max_kb = 0,
		.busy_poll_us = 0,
		.early_wake = true,
		.early_wake_poll = true,
		.relay_zerocopy = true,
		.stats_interval_s = 10,
		.log_level = LOG_INFO,
		.policies = NULL,
		.npolicies = 0,
	};
}

void tsd_config_free(struct tsd_config *cfg)
{
	for (size_t i = 0; i < cfg->npolicies; i++) {
		free(cfg->policies[i].name);
		free(cfg->policies[i].cgroup);
	}
	free(cfg->policies);
	tsd_config_defaults(cfg);
}

/* ---- values ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Decimal digits only: no sign, no base prefix, no unit. */
static bool parse_ulong(const char *s, const char **end, unsigned long *out)
{
	unsigned long v = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (ULONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*end = s;
	*out = v;
	return true;
}

static bool parse_number_in(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	const char *end;
	unsigned long v;

	if (!parse_ulong(s, &end, &v) || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool set_ring_max_kb(struct parser *p, const char *v, char *why, size_t whylen)
{
	unsigned long n;

	if (!parse_number_in(v, 4, 65536, &n)) {
		snprintf(why, whylen, "expected a size in KiB from 4 to 65536");
		return false;
	}
	p->cfg.ring_max_kb = (unsigned int)n;
	return true;
}

static bool set_ring_mem_max_mb(struct parser *p, const char *v, char *why, size_t whylen)
{
	unsigned long n;

	if (!parse_number_in(v, 0, 1048576, &n)) {
		snprintf(why, whylen,
			 "expected a size in MiB from 0 (the module's default) to 1048576");
		return false;
	}
	p->cfg.ring_mem_max_kb = n * 1024;
	return true;
}

static bool set_busy_poll_us(struct parser *p, const char *v, char *why, size_t whylen)
{
	unsigned long n;

	if (!parse_number_in(v, 0, 1000000, &n)) {
		snprintf(why, whylen, "expected microseconds from 0 (off) to 1000000");
		return false;
	}
	p->cfg.busy_poll_us = (unsigned int)n;
	return true;
}

static bool set_stats_interval(struct parser *p, const char *v, char *why, size_t whylen)
{
	static const struct {
		const char *unit;
		unsigned long seconds;
	} units[] = {
		{"", 1}, {"s", 1}, {"sec", 1}, {"m", 60}, {"min", 60}, {"h", 3600},
	};
	const char *end;
	unsigned long n;

	if (parse_ulong(v, &end, &n)) {
		while (is_blank(*end))
			end++;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			if (strcmp(end, units[i].unit) != 0)
				continue;
			if (n >= 1 && n <= 3600 / units[i].seconds) {
				p->cfg.stats_interval_s = (unsigned int)(n * units[i].seconds);
				return true;
			}
			break;
		}
	}
	snprintf(why, whylen,
		 "expected a duration from 1s to 1h in seconds (10, 10s) or minutes (2min)");
	return false;
}

struct name_value {
	const char *name;
	int value;
};

/* Case-insensitive lookup of an enumerated value. */
static bool lookup(const struct name_value *t, size_t n, const char *v, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(t[i].name, v) == 0) {
			*out = t[i].value;
			return true;
		}
	}
	return false;
}

static bool set_log_level(struct parser *p, const char *v, char *why, size_t whylen)
{
	static const struct name_value levels[] = {
		{"debug", LOG_DEBUG},	  {"info", LOG_INFO}, {"notice", LOG_NOTICE},
		{"warning", LOG_WARNING}, {"err", LOG_ERR},
	};

	if (!lookup(levels, ARRAY_SIZE(levels), v, &p->cfg.log_level)) {
		snprintf(why, whylen, "expected debug, info, notice, warning or err");
		return false;
	}
	return true;
}

static struct tsd_policy *current_policy(struct parser *p)
{
	return &p->cfg.policies[p->cfg.npolicies - 1];
}

/* Checks a glob and strips the slashes at its ends ("/" is the root, ""). */
static bool set_cgroup(struct parser *p, const char *v, char *why, size_t whylen)
{
	struct tsd_policy *pol = current_policy(p);
	const char *s = v, *e = v + strlen(v), *c;
	char *copy;

	if (s == e) {
		snprintf(why, whylen, "expected a glob: ** for every cgroup, / for the root only");
		return false;
	}
	while (s < e && *s == '/')
		s++;
	while (e > s && e[-1] == '/')
		e--;
	for (c = s; c < e;) {
		const char *ce = memchr(c, '/', (size_t)(e - c));
		size_t n;

		ce = ce ? ce : e;
		n = (size_t)(ce - c);
		if (n == 0) {
			snprintf(why, whylen, "empty path component (two slashes in a row)");
			return false;
		}
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
			snprintf(why, whylen, "'.' and '..' are not allowed as path components");
			return false;
		}
		for (const char *x = c; x < ce; x++) {
			if ((unsigned char)*x < 0x20 || *x == 0x7f) {
				snprintf(why, whylen, "control characters are not allowed");
				return false;
			}
			if (x + 1 < ce && x[0] == '*' && x[1] == '*' && n != 2) {
				snprintf(why, whylen,
					 "'**' must be a whole path component, as in a/**/b");
				return false;
			}
		}
		c = ce + (ce < e);
	}
	copy = strndup(s, (size_t)(e - s));
	if (!copy) {
		p->oom = true;
		return true;
	}
	free(pol->cgroup);
	pol->cgroup = copy;
	return true;
}

static bool set_ports(struct parser *p, const char *v, char *why, size_t whylen)
{
	struct tsd_policy *pol = current_policy(p);

	return tsd_parse_ports(v, pol->ports, &pol->nports, why, whylen) == 0;
}

static bool set_scope(struct parser *p, const char *v, char *why, size_t whylen)
{
	static const struct name_value scopes[] = {
		{"loopback", TS_SCOPE_LOOPBACK},
		{"local", TS_SCOPE_LOCAL},
		{"any", TS_SCOPE_ANY},
	};
	int s;

	if (!lookup(scopes, ARRAY_SIZE(scopes), v, &s)) {
		snprintf(why, whylen, "expected loopback, local or any");
		return false;
	}
	current_policy(p)->scope = (enum ts_scope)s;
	return true;
}

static bool set_family(struct parser *p, const char *v, char *why, size_t whylen)
{
	static const struct name_value families[] = {
		{"ipv4", TS_FAMILY_IPV4},
		{"ipv6", TS_FAMILY_IPV6},
		{"any", TS_FAMILY_IPV4 | TS_FAMILY_IPV6},
	};
	int f;

	if (!lookup(families, ARRAY_SIZE(families), v, &f)) {
		snprintf(why, whylen, "expected ipv4, ipv6 or any");
		return false;
	}
	current_policy(p)->family_mask = (unsigned int)f;
	return true;
}

static bool parse_bool(const char *v, bool *out, char *why, size_t whylen)
{
	static const struct name_value booleans[] = {
		{"yes", 1}, {"true", 1}, {"1", 1}, {"no", 0}, {"false", 0}, {"0", 0},
	};
	int b;

	if (!lookup(booleans, ARRAY_SIZE(booleans), v, &b)) {
		snprintf(why, whylen, "expected yes, no, true, false, 1 or 0");
		return false;
	}
	*out = b;
	return true;
}

static bool set_early_wake(struct parser *p, const char *v, char *why, size_t whylen)
{
	return parse_bool(v, &p->cfg.early_wake, why, whylen);
}

static bool set_early_wake_poll(struct parser *p, const char *v, char *why, size_t whylen)
{
	return parse_bool(v, &p->cfg.early_wake_poll, why, whylen);
}

static bool set_relay_zerocopy(struct parser *p, const char *v, char *why, size_t whylen)
{
	return parse_bool(v, &p->cfg.relay_zerocopy, why, whylen);
}

static bool set_enabled(struct parser *p, const char *v, char *why, size_t whylen)
{
	return parse_bool(v, &current_policy(p)->enabled, why, whylen);
}

/* ---- sections and keys ---- */

/* Names are checked, but a refused one is kept too: escape it. */
static const char *policy_name(struct quoted *q, const struct tsd_policy *pol)
{
	return escape(q, pol->name, strlen(pol->name), false);
}

static const char *section_label(struct parser *p, char *buf, size_t len)
{
	struct quoted q;

	if (p->section == SEC_GLOBAL)
		return "[global]";
	snprintf(buf, len, "[policy %s]", policy_name(&q, current_policy(p)));
	return buf;
}

/* [A-Za-z0-9_.-], whatever the locale; not "." or "..": it names a bpffs directory. */
static bool valid_policy_name(const char *s, size_t n)
{
	if (n == 0 || n > TSD_POLICY_NAME_MAX || (n == 1 && s[0] == '.') ||
	    (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

static void add_policy(struct parser *p, const char *name, size_t n)
{
	struct tsd_policy *pol;

	if (p->cfg.npolicies == p->policies_cap) {
		size_t cap = p->policies_cap ? 2 * p->policies_cap : 4;
		struct tsd_policy *a = realloc(p->cfg.policies, cap * sizeof(*a));

		if (!a) {
			p->oom = true;
			p->section = SEC_UNKNOWN;
			return;
		}
		p->cfg.policies = a;
		p->policies_cap = cap;
	}
	pol = &p->cfg.policies[p->cfg.npolicies];
	*pol = (struct tsd_policy){
		.name = strndup(name, n),
		.scope = TS_SCOPE_LOOPBACK,
		.family_mask = TS_FAMILY_IPV4 | TS_FAMILY_IPV6,
		.enabled = true,
		.line = p->lineno,
	};
	if (!pol->name) {
		p->oom = true;
		p->section = SEC_UNKNOWN;
		return;
	}
	p->cfg.npolicies++;
	p->section = SEC_POLICY;
}

static void start_policy(struct parser *p, const char *name, size_t n)
{
	struct quoted q;
	size_t errors = p->nerrors;

	if (p->cfg.npolicies == TSD_MAX_POLICIES) {
		add_error(p, p->lineno, "more than %d policies", TSD_MAX_POLICIES);
		return;
	}
	if (n == 0) {
		add_error(p, p->lineno, "missing policy name: write [policy NAME]");
	} else if (!valid_policy_name(name, n)) {
		add_error(p, p->lineno,
			  "bad policy name %s: use letters, digits, '_', '.' and '-' (not '.' or "
			  "'..' alone), at most %d",
			  quote_n(&q, name, n), TSD_POLICY_NAME_MAX);
	} else {
		for (size_t i = 0; i < p->cfg.npolicies; i++) {
			const struct tsd_policy *o = &p->cfg.policies[i];

			if (strlen(o->name) == n && memcmp(o->name, name, n) == 0) {
				add_error(p, p->lineno,
					  "duplicate section [policy %.*s] (first at line %d)",
					  (int)n, name, o->line);
				break;
			}
		}
	}
	p->header_refused = p->nerrors != errors;
	/* Even a refused header gets its keys checked, so that they are reported too. */
	add_policy(p, name, n);
}

static int find_key(enum section section, const char *name, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].section == section && strlen(keys[i].name) == n &&
		    memcmp(keys[i].name, name, n) == 0)
			return (int)i;
	return -1;
}

/* A policy needs a cgroup line; a bad one is reported already, as a bad value. */
static void end_section(struct parser *p)
{
	struct tsd_policy *pol;
	struct quoted q;

	if (p->section != SEC_POLICY || p->seen[find_key(SEC_POLICY, "cgroup", 6)])
		return;
	pol = current_policy(p);
	/* A refused header is reported already: one error is enough. */
	if (!p->header_refused)
		add_error(
			p, pol->line,
			"[policy %s] has no cgroup: it is required (cgroup = ** for every cgroup)",
			policy_name(&q, pol));
}

/* A line that starts with '['; [s, e) has neither indentation nor comment. */
static void start_section(struct parser *p, const char *s, const char *e)
{
	struct quoted q;
	const char *in, *in_end;

	end_section(p);
	memset(p->seen, 0, sizeof(p->seen));
	p->section = SEC_UNKNOWN;
	p->header_refused = false;
	if (e[-1] != ']' || e - s < 2) {
		if (memchr(s, ']', (size_t)(e - s)))
			add_error(p, p->lineno, "unexpected text after ']' in a section header");
		else
			add_error(p, p->lineno, "missing ']' at the end of the section header");
		return;
	}
	in = s + 1;
	in_end = e - 1;
	while (in < in_end && is_blank(*in))
		in++;
	while (in_end > in && is_blank(in_end[-1]))
		in_end--;

	if (in_end - in == 6 && memcmp(in, "global", 6) == 0) {
		if (p->global_line)
			add_error(p, p->lineno, "duplicate section [global] (first at line %d)",
				  p->global_line);
		else
			p->global_line = p->lineno;
		p->section = SEC_GLOBAL;
	} else if (in_end - in >= 6 && memcmp(in, "policy", 6) == 0 &&
		   (in_end - in == 6 || is_blank(in[6]))) {
		in += 6;
		while (in < in_end && is_blank(*in))
			in++;
		start_policy(p, in, (size_t)(in_end - in));
	} else {
		add_error(p, p->lineno, "unknown section [%s]: expected [global] or [policy NAME]",
			  quote_n(&q, in, (size_t)(in_end - in)));
	}
}

static const char *key_list(enum section section, char *buf, size_t len)
{
	size_t n = 0, total = 0, at = 0;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		total += keys[i].section == section;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(keys) && at < len; i++) {
		if (keys[i].section != section)
			continue;
		n++;
		at += (size_t)snprintf(buf + at, len - at, "%s%s",
				       n == 1 ? "" : (n == total ? " or " : ", "), keys[i].name);
	}
	return buf;
}

/* inih's handler: section is ignored, the reader keeps the real one. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct key *k;
	struct quoted qn, qv;
	char label[320], list[160], why[256];
	int i;

	(void)section;
	if (!value)
		value = "";
	switch (p->section) {
	case SEC_NONE:
		add_error(p, p->lineno,
			  "key %s outside of any section: put it under [global] or [policy NAME]",
			  quote(&qn, name));
		return 1;
	case SEC_UNKNOWN:
		return 1;
	case SEC_GLOBAL:
	case SEC_POLICY:
		break;
	}
	i = find_key(p->section, name, strlen(name));
	if (i < 0) {
		add_error(p, p->lineno, "unknown key %s in %s: expected %s", quote(&qn, name),
			  section_label(p, label, sizeof(label)),
			  key_list(p->section, list, sizeof(list)));
		return 1;
	}
	k = &keys[i];
	if (p->seen[i]) {
		add_error(p, p->lineno, "duplicate key %s in %s (first at line %d)",
			  quote(&qn, name), section_label(p, label, sizeof(label)), p->seen[i]);
		return 1;
	}
	p->seen[i] = p->lineno;
	why[0] = '\0';
	if (!k->set(p, value, why, sizeof(why)))
		add_error(p, p->lineno, "bad value %s for %s: %s", quote(&qv, value), k->name, why);
	return 1;
}

/* Is c the start of a comment: first on the line or after whitespace? */
static const char *find_comment(const char *s, const char *e)
{
	for (const char *c = s; c < e; c++)
		if ((*c == '#' || *c == ';') && (c == s || is_blank(c[-1])))
			return c;
	return e;
}

/*
 * inih's fgets-like reader: hands over the next line with its indentation and
 * comment removed, or an empty line for anything handled (or refused) here.
 */
static char *read_line(char *buf, int size, void *stream)
{
	struct parser *p = stream;
	const char *s, *e, *nl, *sep;
	size_t room;

	if (p->pos >= p->len || size < 3)
		return NULL;
	s = p->text + p->pos;
	nl = memchr(s, '\n', p->len - p->pos);
	e = nl ? nl : p->text + p->len;
	p->pos = (size_t)(e - p->text) + (nl != NULL);
	p->lineno++;
	room = (size_t)size - 2; /* for the '\n' and the NUL */
	strcpy(buf, "\n");

	if (p->lineno == 1 && e - s >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	if (memchr(s, '\0', (size_t)(e - s))) {
		add_error(p, p->lineno, "NUL byte in the line");
		return buf;
	}
	while (s < e && is_blank(*s))
		s++;
	e = find_comment(s, e);
	while (e > s && is_blank(e[-1]))
		e--;
	if (s == e)
		return buf;
	if (*s == '[') {
		start_section(p, s, e);
		return buf;
	}
	sep = s;
	while (sep < e && *sep != '=' && *sep != ':')
		sep++;
	if (sep == e) {
		add_error(p, p->lineno, "expected 'key = value' or '[section]'");
		return buf;
	}
	if (sep == s) {
		add_error(p, p->lineno, "missing key name before '%c'", *sep);
		return buf;
	}
	if ((size_t)(e - s) > room) {
		const char *ke = sep;
		int k;

		add_error(p, p->lineno,
			  "line too long (%zu characters without comment, at most %zu)",
			  (size_t)(e - s), room);
		/* Its key counts as given: no "missing cgroup" on top of this error. */
		while (ke > s && is_blank(ke[-1]))
			ke--;
		k = find_key(p->section, s, (size_t)(ke - s));
		if (k >= 0 && !p->seen[k])
			p->seen[k] = p->lineno;
		return buf;
	}
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\n';
	buf[e - s + 1] = '\0';
	return buf;
}

static int parse_text(const char *name, const char *text, size_t len, struct tsd_config *cfg,
		      FILE *errs)
{
	struct parser p = {
		.name = name ? name : "<string>",
		.text = text ? text : "",
		.len = text ? len : 0,
		.section = SEC_NONE,
	};
	int r;

	tsd_config_defaults(&p.cfg);
	r = ini_parse_stream(read_line, &p, on_key, &p);
	if (r == -2)
		p.oom = true;
	else if (r > 0 && !has_error_at(&p, r))
		add_error(&p, r, "cannot parse this line");

	end_section(&p);

	if (p.nerrors || p.oom) {
		write_errors(&p, errs);
		parser_free(&p);
		tsd_config_free(&p.cfg);
		return -1;
	}
	parser_free(&p);
	*cfg = p.cfg;
	return 0;
}

int tsd_config_parse_string(const char *name, const char *text, struct tsd_config *cfg, FILE *errs)
{
	return parse_text(name, text, text ? strlen(text) : 0, cfg, errs);
}

static void file_error(FILE *errs, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void file_error(FILE *errs, const char *path, const char *fmt, ...)
{
	va_list ap;

	if (!errs)
		return;
	fprintf(errs, "%s: ", path);
	va_start(ap, fmt);
	vfprintf(errs, fmt, ap);
	va_end(ap);
	fputc('\n', errs);
	fflush(errs);
}

/* Another user able to write the file could choose what gets spliced. */
static bool file_is_safe(const char *path, const struct stat *st, FILE *errs)
{
	const char *env = getenv(UNSAFE_ENV);
	bool safe = true;

	if (env && strcmp(env, "1") == 0)
		return true;
	if (st->st_uid != 0) {
		file_error(errs, path, "owned by uid %lu, not by root: refusing to use it",
			   (unsigned long)st->st_uid);
		safe = false;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		file_error(errs, path,
			   "writable by group or others (mode %04o): refusing to use it; run "
			   "'chmod go-w %s'",
			   (unsigned int)(st->st_mode & 07777), path);
		safe = false;
	}
	return safe;
}

int tsd_config_parse_file(const char *path, struct tsd_config *cfg, FILE *errs)
{
	_cleanup_(closep) int fd = -1;
	_cleanup_(freep) char *buf = NULL;
	struct stat st;
	size_t len = 0;

	/* O_NONBLOCK: a FIFO in its place must not hang the daemon. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		file_error(errs, path, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		file_error(errs, path, "cannot stat: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		file_error(errs, path, "not a regular file");
		return -1;
	}
	if (!file_is_safe(path, &st, errs))
		return -1;
	if (st.st_size > CONFIG_MAX_BYTES) {
		file_error(errs, path, "larger than %d bytes: refusing to read it",
			   CONFIG_MAX_BYTES);
		return -1;
	}
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (!buf) {
		file_error(errs, path, "out of memory");
		return -1;
	}
	/* The size is checked again while reading: the file may be growing. */
	for (;;) {
		ssize_t n = read(fd, buf + len, CONFIG_MAX_BYTES + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			file_error(errs, path, "cannot read: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX_BYTES) {
			file_error(errs, path, "larger than %d bytes: refusing to read it",
				   CONFIG_MAX_BYTES);
			return -1;
		}
	}
	buf[len] = '\0';
	return parse_text(path, buf, len, cfg, errs);
}

/* ---- ports ---- */

static const char *trim(const char *s, const char **end)
{
	while (s < *end && is_blank(*s))
		s++;
	while (*end > s && is_blank((*end)[-1]))
		(*end)--;
	return s;
}

/* A port number in [s, e): digits only, 1..65535. */
static int parse_port(const char *s, const char *e, unsigned int *out, char *err, size_t errlen)
{
	unsigned long v = 0;
	struct quoted q;

	if (s == e)
		return -1;
	for (const char *c = s; c < e; c++) {
		if (!isdigit((unsigned char)*c))
			return -1;
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v < 1 || v > 65535) {
		snprintf(err, errlen, "port %s is out of range 1-65535",
			 quote_n(&q, s, (size_t)(e - s)));
		return -2;
	}
	*out = (unsigned int)v;
	return 0;
}

int tsd_parse_ports(const char *s, struct ts_port_range *out, unsigned int *n, char *err,
		    size_t errlen)
{
	struct ts_port_range r[TS_MAX_PORT_RANGES];
	unsigned int count = 0;
	char scratch[8];
	const char *end, *p;
	struct quoted q;

	if (!err || !errlen) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	end = s + strlen(s);
	p = trim(s, &end);
	if (p == end || (end - p == 3 && strncasecmp(p, "any", 3) == 0)) {
		*n = 0;
		return 0;
	}
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *ie = comma ? comma : end;
		const char *is = trim(p, &ie);
		const char *dash = memchr(is, '-', (size_t)(ie - is));
		unsigned int lo, hi = 0;
		int rc;

		if (is == ie) {
			snprintf(err, errlen, "empty entry in the port list");
			return -1;
		}
		if (ie - is == 3 && strncasecmp(is, "any", 3) == 0) {
			snprintf(err, errlen, "'any' cannot be combined with ports");
			return -1;
		}
		if (dash) {
			const char *le = dash, *hs = dash + 1, *he = ie;
			const char *ls = trim(is, &le);

			hs = trim(hs, &he);
			rc = parse_port(ls, le, &lo, err, errlen);
			if (rc == 0)
				rc = parse_port(hs, he, &hi, err, errlen);
		} else {
			rc = parse_port(is, ie, &lo, err, errlen);
			hi = lo;
		}
		if (rc == -1) {
			snprintf(err, errlen, "%s is not a port or a range LO-HI",
				 quote_n(&q, is, (size_t)(ie - is)));
			return -1;
		}
		if (rc < 0)
			return -1;
		if (lo > hi) {
			snprintf(err, errlen, "range %u-%u is reversed", lo, hi);
			return -1;
		}
		if (count == TS_MAX_PORT_RANGES) {
			snprintf(err, errlen, "more than %d ports or port ranges",
				 TS_MAX_PORT_RANGES);
			return -1;
		}
		r[count].lo = (__u16)lo;
		r[count].hi = (__u16)hi;
		count++;
		if (!comma)
			break;
		p = comma + 1;
	}
	memcpy(out, r, count * sizeof(r[0]));
	*n = count;
	return 0;
}

/* ---- cgroup globs ---- */

/* The component of s after any slashes: [*start, returned end). */
static const char *next_component(const char *s, const char **start)
{
	while (*s == '/')
		s++;
	*start = s;
	while (*s && *s != '/')
		s++;
	return s;
}

/* '*' and '?' within one component; only the last '*' needs to be retried. */
static bool component_match(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;

	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pn && (p[pi] == '?' || p[pi] == s[si])) {
			pi++;
			si++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

/*
 * '**' is to components what '*' is to characters, and the same argument
 * holds: only the last '**' seen needs to take more components on a mismatch.
 */
bool tsd_glob_match(const char *pattern, const char *path)
{
	const char *pp = pattern, *sp = path;
	const char *retry_p = NULL, *retry_s = NULL;

	for (;;) {
		const char *pc, *sc;
		const char *pe = next_component(pp, &pc);
		const char *se = next_component(sp, &sc);
		size_t pn = (size_t)(pe - pc), sn = (size_t)(se - sc);

		if (pn == 2 && pc[0] == '*' && pc[1] == '*') {
			retry_p = pe;
			retry_s = sp;
			pp = pe;
			continue;
		}
		if (pn == 0 && sn == 0)
			return true;
		if (pn && sn && component_match(pc, pn, sc, sn)) {
			pp = pe;
			sp = se;
			continue;
		}
		if (!retry_p)
			return false;
		retry_s = next_component(retry_s, &sc);
		if (sc == retry_s)
			return false;
		pp = retry_p;
		sp = retry_s;
	}
}
