/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice: the bpffs layout the daemon leaves behind and the CLI reads.
 *
 * Every attachment is a cgroup bpf_link pinned at
 * TS_PIN_ROOT/<policy>/<cgroup id>; the pin keeps the program attached when
 * the daemon is gone.  The program, its policy and its counters are reached
 * through the link (link -> program -> maps), so nothing else is pinned.
 */
#ifndef TS_PINS_H
#define TS_PINS_H

#include <stddef.h>
#include <stdint.h>

#define TS_PIN_ROOT "/sys/fs/bpf/tcp-splice"

struct ts_pin {
	const char *policy; /* the directory name */
	uint64_t cgroup_id; /* the file name */
	const char *path;   /* the whole pin path */
};

/*
 * Call fn for every well-formed pin (other files are skipped) until it
 * returns non-zero.  0, -ENOENT if nothing is pinned at all, fn's non-zero
 * return, or -errno.  Pins of one policy: ts_pins_foreach_policy.
 */
typedef int (*ts_pin_fn)(const struct ts_pin *pin, void *data);
int ts_pins_foreach(ts_pin_fn fn, void *data);
int ts_pins_foreach_policy(const char *policy, ts_pin_fn fn, void *data);

/* TS_PIN_ROOT/policy[/cgroup_id] into buf (cgroup_id 0: the directory). */
int ts_pin_path(char *buf, size_t len, const char *policy, uint64_t cgroup_id);

struct ts_link_state {
	uint32_t link_id;
	uint32_t prog_id;
	uint64_t cgroup_id; /* 0: the cgroup is gone and the link with it */
};

int ts_link_state(int link_fd, struct ts_link_state *st);

/* An fd of the map called name among the program's maps, or -errno. */
int ts_prog_map_fd(uint32_t prog_id, const char *name);

#endif /* TS_PINS_H */
