/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice daemon: /etc/tcp-splice.conf, parsed into a struct tsd_config.
 *
 * A file is taken whole or not at all: any error rejects it, and every error
 * is written as one "path:line: message" line (file-level problems, such as a
 * file that cannot be opened or is writable by others, as "path: message").
 * The format is described in tcp-splice.conf(5).
 */
#ifndef TSD_CONFIG_H
#define TSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../bpf/tcp_splice_policy.h" /* struct ts_port_range, enum ts_scope, TS_FAMILY_* */

/* Longest policy name, [A-Za-z0-9_.-]+. */
#define TSD_POLICY_NAME_MAX 64
/* Most policies in a file: each enabled one is a loaded BPF program. */
#define TSD_MAX_POLICIES 1024

struct tsd_policy {
	char *name;   /* from [policy NAME] */
	char *cgroup; /* glob relative to the cgroup2 mount: no leading or trailing '/', "" = the
			 root */
	struct ts_port_range ports[TS_MAX_PORT_RANGES];
	unsigned int nports;	  /* 0: any port */
	enum ts_scope scope;	  /* default TS_SCOPE_LOOPBACK */
	unsigned int family_mask; /* TS_FAMILY_IPV4|TS_FAMILY_IPV6; default both */
	bool enabled;		  /* default true */
	int line;		  /* line of its section header */
};

struct tsd_config {
	unsigned int ring_max_kb;      /* [global] ring_max_kb, default 1024, 4..65536 */
	unsigned long ring_mem_max_kb; /* [global] ring_mem_max_mb * 1024; 0 = module default */
	unsigned int busy_poll_us;     /* [global] busy_poll_us, default 0 (off), 0..1000000 */
	bool early_wake;	       /* [global] early_wake, default true */
	bool early_wake_poll;	       /* [global] early_wake_poll, default true */
	bool relay_zerocopy;	       /* [global] relay_zerocopy, default true */
	unsigned int stats_interval_s; /* [global] stats_interval ("10", "10s", "2min"), 1..3600 */
	int log_level; /* [global] log_level as LOG_* of <syslog.h>; default LOG_INFO */
	struct tsd_policy *policies; /* in file order */
	size_t npolicies;
};

/*
 * Parse the file at path into *cfg.  0 on success: *cfg is overwritten (its
 * previous contents are not freed; the caller owns the result and releases it
 * with tsd_config_free).  -1 on any error, with one line per error written to
 * errs (which may be NULL), and *cfg left untouched.  The file must be a
 * regular file owned by root and not writable by group or others, unless the
 * environment has TCP_SPLICE_CONFIG_UNSAFE_OK=1 (for tests).
 */
int tsd_config_parse_file(const char *path, struct tsd_config *cfg, FILE *errs);

/* The same from a string; name stands for the path in messages. */
int tsd_config_parse_string(const char *name, const char *text, struct tsd_config *cfg, FILE *errs);

/* Frees what a successful parse allocated and resets *cfg to the defaults. */
void tsd_config_free(struct tsd_config *cfg);

/* Every [global] default, and no policy. */
void tsd_config_defaults(struct tsd_config *cfg);

/*
 * "6379, 8000-8100" -> two ranges; "any" or "" -> no range (any port).  0 on
 * success; -1 with a message (without location) in err, *out and *n untouched.
 */
int tsd_parse_ports(const char *s, struct ts_port_range *out, unsigned int *n, char *err,
		    size_t errlen);

/*
 * Does the cgroup path (relative to the cgroup2 mount, "" for the root) match
 * the glob?  '*' matches within one path component, '**' as a whole component
 * any number of components (also none), '?' one character other than '/'.
 */
bool tsd_glob_match(const char *pattern, const char *path);

#endif /* TSD_CONFIG_H */
