// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: parsers of the module's /proc files and the sum of the BPF
 * programs' per-CPU counters (see ts-stats.h).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ts-cleanup.h"
#include "ts-stats.h"

#define TS_CONNS_HEADER "state local remote inode ring_tx ring_rx rx_fill rx_size"

/* A per-CPU value is copied out in 8-byte slots, one per possible CPU. */
_Static_assert(sizeof(struct ts_stats) % 8 == 0, "ts_stats must fill 8-byte slots");

void ts_counters_free(struct ts_counters *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

static int counters_append(struct ts_counters *c, const char *name, int64_t value)
{
	struct ts_counter *v = realloc(c->v, (c->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->v = v;
	v[c->n].name = strdup(name);
	if (!v[c->n].name)
		return -ENOMEM;
	v[c->n++].value = value;
	return 0;
}

int ts_counters_read(const char *path, struct ts_counters *out)
{
	_cleanup_fclose_ FILE *f = fopen(path ? path : TS_PROC_COUNTERS, "re");
	_cleanup_free_ char *line = NULL;
	struct ts_counters c = {0};
	size_t cap = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char name[64];
		long long value;
		int r;

		if (sscanf(line, "%63s %lld", name, &value) != 2)
			continue; /* a line this version does not understand */
		r = counters_append(&c, name, value);
		if (r) {
			ts_counters_free(&c);
			return r;
		}
	}
	*out = c;
	return 0;
}

int ts_counters_get(const struct ts_counters *c, const char *name, int64_t *value)
{
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->v[i].name, name)) {
			*value = c->v[i].value;
			return 0;
		}
	}
	return -ENOENT;
}

/* "1.2.3.4:80" or "[2001:db8::1]:80", as the module prints them. */
static int parse_endpoint(const char *s, struct ts_endpoint *ep)
{
	char addr[INET6_ADDRSTRLEN];
	const char *colon, *start = s;
	unsigned long port;
	size_t len;
	char *end;

	memset(ep, 0, sizeof(*ep));
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		start = s + 1;
		len = (size_t)(close - start);
		colon = close + 1;
		ep->family = AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		len = (size_t)(colon - s);
		ep->family = AF_INET;
	}
	if (len >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, start, len);
	addr[len] = '\0';
	if (inet_pton(ep->family, addr, ep->addr) != 1)
		return -EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port > 65535)
		return -EINVAL;
	ep->port = (uint16_t)port;
	return 0;
}

const char *ts_endpoint_format(const struct ts_endpoint *ep, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "?";

	inet_ntop(ep->family, ep->addr, addr, sizeof(addr));
	if (ep->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", addr, ep->port);
	else
		snprintf(buf, len, "%s:%u", addr, ep->port);
	return buf;
}

static int parse_conn(const char *line, struct ts_conn *c)
{
	char local[TS_ENDPOINT_STRLEN], remote[TS_ENDPOINT_STRLEN];
	unsigned long long inode, tx, rx, fill, size;

	memset(c, 0, sizeof(*c));
	if (sscanf(line, "%15s %55s %55s %llu %llu %llu %llu %llu", c->state, local, remote, &inode,
		   &tx, &rx, &fill, &size) != 8)
		return -EINVAL;
	if (parse_endpoint(local, &c->local) || parse_endpoint(remote, &c->remote))
		return -EINVAL;
	c->inode = inode;
	c->ring_tx = tx;
	c->ring_rx = rx;
	c->rx_fill = fill;
	c->rx_size = size;
	return 0;
}

void ts_conns_free(struct ts_conns *c)
{
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

int ts_conns_read(const char *path, struct ts_conns *out)
{
	_cleanup_fclose_ FILE *f = fopen(path ? path : TS_PROC_CONNS, "re");
	_cleanup_free_ char *line = NULL;
	struct ts_conns c = {0};
	size_t cap = 0, alloc = 0;
	ssize_t n;

	if (!f)
		return -errno;
	n = getline(&line, &cap, f);
	if (n <= 0 || strncmp(line, TS_CONNS_HEADER, strlen(TS_CONNS_HEADER)))
		return -EPROTO;
	while (getline(&line, &cap, f) > 0) {
		if (c.n == alloc) {
			struct ts_conn *v;

			alloc = alloc ? 2 * alloc : 64;
			v = realloc(c.v, alloc * sizeof(*v));
			if (!v) {
				ts_conns_free(&c);
				return -ENOMEM;
			}
			c.v = v;
		}
		/* A socket closing while the file is read can leave a short line. */
		if (!parse_conn(line, &c.v[c.n]))
			c.n++;
	}
	*out = c;
	return 0;
}

void ts_bpf_stats_add(struct ts_stats *sum, const struct ts_stats *more)
{
	sum->calls += more->calls;
	sum->allowed += more->allowed;
	sum->denied += more->denied;
	sum->kfunc_ok += more->kfunc_ok;
	sum->kfunc_err += more->kfunc_err;
}

int ts_bpf_stats_read(int map_fd, struct ts_stats *sum)
{
	struct ts_stats *per_cpu;
	__u32 key = 0;
	int ncpus, r = 0;

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	per_cpu = calloc((size_t)ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	memset(sum, 0, sizeof(*sum));
	if (bpf_map_lookup_elem(map_fd, &key, per_cpu))
		r = -errno;
	else
		for (int i = 0; i < ncpus; i++)
			ts_bpf_stats_add(sum, &per_cpu[i]);
	free(per_cpu);
	return r;
}
