/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-spliced: watching the cgroup2 tree for cgroups that come and go.
 *
 * One inotify watch per cgroup directory; the owner adds them (during its
 * walks, before listing a directory's children, so that no child is missed)
 * and hears of new and removed cgroups through the callbacks.
 */
#ifndef TSD_CGWATCH_H
#define TSD_CGWATCH_H

#include <systemd/sd-event.h>

struct tsd_cgwatch;

struct tsd_cgwatch_ops {
	/* A new cgroup (relative path); it may have children already. */
	void (*added)(const char *cgroup, void *data);
	void (*removed)(const char *cgroup, void *data);
	/* The kernel dropped events: everything must be looked at again. */
	void (*lost)(void *data);
};

int tsd_cgwatch_new(sd_event *event, const char *root, const struct tsd_cgwatch_ops *ops,
		    void *data, struct tsd_cgwatch **out);
/* Watch the directory of this cgroup (idempotent).  0 or -errno. */
int tsd_cgwatch_add(struct tsd_cgwatch *w, const char *cgroup);
void tsd_cgwatch_free(struct tsd_cgwatch *w);

#endif /* TSD_CGWATCH_H */
