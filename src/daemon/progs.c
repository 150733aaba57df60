// SPDX-License-Identifier: GPL-2.0
/* tcp-spliced: the per-policy sock_ops programs (see progs.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../lib/ts-cleanup.h"
#include "../lib/ts-pins.h"
#include "log.h"
#include "progs.h"
#include "tcp_splice.skel.h"

static void policy_of(const struct tsd_policy *src, struct ts_policy *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->enabled = 1;
	dst->scope = src->scope;
	dst->family_mask = src->family_mask;
	dst->nports = src->nports < TS_MAX_PORT_RANGES ? src->nports : TS_MAX_PORT_RANGES;
	memcpy(dst->ports, src->ports, dst->nports * sizeof(dst->ports[0]));
}

/* A map from elsewhere may stand in for the object's only if it has its shape. */
static bool map_fits(int fd, const struct bpf_map *def)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);

	if (bpf_map_get_info_by_fd(fd, &info, &len))
		return false;
	return info.type == bpf_map__type(def) && info.key_size == bpf_map__key_size(def) &&
	       info.value_size == bpf_map__value_size(def) &&
	       info.max_entries == bpf_map__max_entries(def);
}

int tsd_prefix_map_create(void)
{
	struct tcp_splice *skel = tcp_splice__open();
	const struct bpf_map *def;
	int fd;

	if (!skel)
		return -errno;
	def = skel->maps.local_prefixes;
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = bpf_map__map_flags(def));
	fd = bpf_map_create(bpf_map__type(def), "local_prefixes", bpf_map__key_size(def),
			    bpf_map__value_size(def), bpf_map__max_entries(def), &opts);
	if (fd < 0)
		fd = -errno;
	tcp_splice__destroy(skel);
	return fd;
}

static int stats_of_pin(const struct ts_pin *pin, void *data)
{
	struct ts_link_state st;
	_cleanup_close_ int fd = bpf_obj_get(pin->path);
	int map_fd;

	if (fd < 0 || ts_link_state(fd, &st))
		return 0;
	map_fd = ts_prog_map_fd(st.prog_id, "stats");
	if (map_fd < 0)
		return 0;
	*(int *)data = map_fd;
	return 1;
}

/* The stats map of a program a previous daemon left attached for this policy. */
static int stats_from_pins(const char *policy)
{
	int fd = -1;

	ts_pins_foreach_policy(policy, stats_of_pin, &fd);
	return fd;
}

static void prog_free(struct tsd_prog *p)
{
	tcp_splice__destroy(p->skel);
	free(p->name);
	free(p->cgroup);
	memset(p, 0, sizeof(*p));
}

void tsd_progs_free(struct tsd_progs *p)
{
	for (size_t i = 0; i < p->n; i++)
		prog_free(&p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static struct tsd_prog *find(struct tsd_progs *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].name && !strcmp(p->v[i].name, name))
			return &p->v[i];
	return NULL;
}

static int prog_load(struct tsd_prog *p, int prefix_fd, int stats_fd)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info), key = 0;
	int r;

	p->skel = tcp_splice__open();
	if (!p->skel)
		return -errno;
	r = bpf_map__reuse_fd(p->skel->maps.local_prefixes, prefix_fd);
	if (r)
		return r;
	/* Counters survive a policy change and a daemon restart. */
	if (stats_fd >= 0 && map_fits(stats_fd, p->skel->maps.stats)) {
		r = bpf_map__reuse_fd(p->skel->maps.stats, stats_fd);
		if (r)
			return r;
	}
	r = tcp_splice__load(p->skel);
	if (r)
		return r;
	/* Written before the program is attached anywhere, never again. */
	r = bpf_map__update_elem(p->skel->maps.policy, &key, sizeof(key), &p->policy,
				 sizeof(p->policy), BPF_ANY);
	if (r)
		return r;
	p->fd = bpf_program__fd(p->skel->progs.tcp_splice_sockops);
	p->stats_fd = bpf_map__fd(p->skel->maps.stats);
	if (bpf_prog_get_info_by_fd(p->fd, &info, &len))
		return -errno;
	p->id = info.id;
	return 0;
}

static int prog_init(struct tsd_prog *p, const struct tsd_policy *pol)
{
	policy_of(pol, &p->policy);
	p->line = pol->line;
	p->name = strdup(pol->name);
	p->cgroup = strdup(pol->cgroup);
	return p->name && p->cgroup ? 0 : -ENOMEM;
}

int tsd_progs_build(const struct tsd_config *cfg, const char *config_path, struct tsd_progs *old,
		    int prefix_fd, struct tsd_progs *out)
{
	struct tsd_progs new = {0};
	int r;

	new.v = calloc(cfg->npolicies ? cfg->npolicies : 1, sizeof(*new.v));
	if (!new.v)
		return -ENOMEM;

	/* First load what is new or changed: a failure leaves *old as it was. */
	for (size_t i = 0; i < cfg->npolicies; i++) {
		const struct tsd_policy *pol = &cfg->policies[i];
		struct tsd_prog *p = &new.v[new.n], *prev;
		_cleanup_close_ int pinned_stats = -1;

		if (!pol->enabled)
			continue;
		new.n++;
		r = prog_init(p, pol);
		if (r)
			goto fail;
		prev = find(old, pol->name);
		if (prev && !memcmp(&prev->policy, &p->policy, sizeof(p->policy)))
			continue; /* taken over below */
		if (!prev)
			pinned_stats = stats_from_pins(pol->name);
		r = prog_load(p, prefix_fd, prev ? prev->stats_fd : pinned_stats);
		if (r) {
			tsd_event(LOG_ERR, TSD_MID_CONFIG_REJECTED,
				  &(struct tsd_fields){.policy = pol->name,
						       .config_file = config_path,
						       .config_line = pol->line,
						       .error = -r},
				  "%s:%d: loading the BPF program of policy '%s' failed: %s",
				  config_path, pol->line, pol->name, strerror(-r));
			goto fail;
		}
	}

	/* Then take the unchanged ones over. */
	for (size_t i = 0; i < new.n; i++) {
		struct tsd_prog *p = &new.v[i], *prev;

		if (p->skel)
			continue;
		prev = find(old, p->name);
		p->skel = TAKE_PTR(prev->skel);
		p->fd = prev->fd;
		p->id = prev->id;
		p->stats_fd = prev->stats_fd;
		prog_free(prev);
	}
	*out = new;
	return 0;
fail:
	tsd_progs_free(&new);
	return r;
}

const struct tsd_prog *tsd_progs_match(const struct tsd_progs *p, const char *cgroup)
{
	for (size_t i = 0; i < p->n; i++)
		if (tsd_glob_match(p->v[i].cgroup, cgroup))
			return &p->v[i];
	return NULL;
}
