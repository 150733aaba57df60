/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice: the cgroup2 tree as the daemon and the CLI see it.  Paths are
 * relative to the cgroup2 mount, without a leading '/'; "" is the root.
 */
#ifndef TS_CGROUP_H
#define TS_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* The cgroup2 mount point (from /proc/self/mountinfo).  0 or -errno. */
int ts_cgroup_root(char *buf, size_t len);

/* The cgroup id (what BPF link info reports) of an open cgroup directory. */
int ts_cgroup_id(int dirfd, uint64_t *id);

/*
 * Visit every cgroup below root (root itself first as ""), a parent before
 * its children.  fn gets the open directory and the relative path; a
 * negative return stops the walk and is returned.  Directories that vanish
 * while walking are skipped.
 */
typedef int (*ts_cgroup_fn)(int dirfd, const char *rel, void *data);
int ts_cgroup_walk(const char *root, ts_cgroup_fn fn, void *data);

/* Like ts_cgroup_walk, from the cgroup rel (below root) down. */
int ts_cgroup_walk_from(const char *root, const char *rel, ts_cgroup_fn fn, void *data);

#endif /* TS_CGROUP_H */
