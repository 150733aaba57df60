/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice: reading what the module and the BPF programs count.
 *
 * The one place that parses /proc/net/tcp_splice ("name value" lines),
 * /proc/net/tcp_splice_conns (one socket per line) and sums the programs'
 * per-CPU stats map: the daemon and the CLI both read through here.
 */
#ifndef TS_STATS_H
#define TS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "../bpf/tcp_splice_policy.h"

#define TS_PROC_COUNTERS "/proc/net/tcp_splice"
#define TS_PROC_CONNS	 "/proc/net/tcp_splice_conns"

struct ts_counter {
	char *name;
	int64_t value;
};

/* The module's counters in file order (the module decides which exist). */
struct ts_counters {
	struct ts_counter *v;
	size_t n;
};

/* 0, or -errno (-ENOENT: the module is not loaded). path NULL: the default. */
int ts_counters_read(const char *path, struct ts_counters *out);
/* 0 and *value, or -ENOENT if the module does not have that counter. */
int ts_counters_get(const struct ts_counters *c, const char *name, int64_t *value);
void ts_counters_free(struct ts_counters *c);

struct ts_endpoint {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
};

/* One socket of /proc/net/tcp_splice_conns. */
struct ts_conn {
	char state[16]; /* paired, parked, alone, closed */
	struct ts_endpoint local, remote;
	uint64_t inode;
	uint64_t ring_tx; /* bytes this socket sent through the ring */
	uint64_t ring_rx; /* bytes it received from it */
	uint64_t rx_fill; /* bytes waiting in its inbound ring */
	uint64_t rx_size; /* size of that ring */
};

struct ts_conns {
	struct ts_conn *v;
	size_t n;
};

/* 0, or -errno; -EPROTO if the header is not the one this parser knows. */
int ts_conns_read(const char *path, struct ts_conns *out);
void ts_conns_free(struct ts_conns *c);

/* "1.2.3.4:80" or "[::1]:80"; returns buf. */
#define TS_ENDPOINT_STRLEN 56
const char *ts_endpoint_format(const struct ts_endpoint *ep, char *buf, size_t len);

/* The sum over the CPUs of a program's per-CPU "stats" map.  0 or -errno. */
int ts_bpf_stats_read(int map_fd, struct ts_stats *sum);
void ts_bpf_stats_add(struct ts_stats *sum, const struct ts_stats *more);

#endif /* TS_STATS_H */
