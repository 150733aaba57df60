/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-spliced: one loaded sock_ops program per enabled policy.
 *
 * A program's policy map is written once, before the program is attached
 * anywhere, and never changed: a changed policy gets a new program, which
 * replaces the old one in each of its links at once.  All programs share one
 * local_prefixes map (owned by the manager); a policy's stats map is carried
 * over to its replacement, and from the pins of a previous daemon at start.
 */
#ifndef TSD_PROGS_H
#define TSD_PROGS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct tcp_splice;

struct tsd_prog {
	char *name;   /* the policy's, also its pin directory */
	char *cgroup; /* glob of the cgroups it claims */
	int line;     /* of its section in the config */
	struct ts_policy policy;
	struct tcp_splice *skel;
	int fd;	      /* the program (owned by skel) */
	uint32_t id;  /* ... as link info reports it */
	int stats_fd; /* its stats map (owned by skel) */
};

struct tsd_progs {
	struct tsd_prog *v; /* in config order: the first match wins */
	size_t n;
};

/*
 * Programs for cfg's (checked)  enabled policies into *out.  A policy unchanged since
 * *old keeps its program (moved out of *old); only the new and the changed
 * ones are loaded.  On failure *old is untouched, errors are logged with
 * CONFIG_FILE/CONFIG_LINE, and -errno is returned.
 */
int tsd_progs_build(const struct tsd_config *cfg, const char *config_path, struct tsd_progs *old,
		    int prefix_fd, struct tsd_progs *out);
void tsd_progs_free(struct tsd_progs *p);

/* The program of the first policy whose glob matches cgroup (relative path). */
const struct tsd_prog *tsd_progs_match(const struct tsd_progs *p, const char *cgroup);

/* The local_prefixes map every program shares, created from the object's definition. */
int tsd_prefix_map_create(void);

#endif /* TSD_PROGS_H */
