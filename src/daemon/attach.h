/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-spliced: which program each cgroup runs, as pinned bpf_links.
 *
 * The table mirrors the pins under TS_PIN_ROOT: an entry exists exactly when
 * its pin does.  Changing a cgroup's program swaps it inside the existing link
 * (no moment without a program); the pin moves to the new policy's directory
 * afterwards.
 */
#ifndef TSD_ATTACH_H
#define TSD_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tsd_prog;

struct tsd_attachment {
	uint64_t cgroup_id;
	char *cgroup; /* relative path; NULL for a pin adopted but not yet seen */
	char *policy; /* the pin's directory */
	uint32_t prog_id;
	bool seen; /* by the running full walk */
};

struct tsd_attachments {
	struct tsd_attachment *v; /* sorted by cgroup_id */
	size_t n;
};

/* Take over the pins a previous daemon left (dropping broken ones).  0 or -errno. */
int tsd_attach_adopt(struct tsd_attachments *a);

/*
 * Make cgroup (open as cgfd) run prog, or nothing if prog is NULL.  Marks
 * the entry seen.  0 or -errno (logged).
 */
int tsd_attach_set(struct tsd_attachments *a, int cgfd, uint64_t cgroup_id, const char *cgroup,
		   const struct tsd_prog *prog);

/* The cgroup at this path is gone (with it, the kernel detached the link): unpin. */
void tsd_attach_cgroup_gone(struct tsd_attachments *a, const char *cgroup);

/* Around a full walk: clear the marks, then drop what the walk did not see. */
void tsd_attach_unmark(struct tsd_attachments *a);
void tsd_attach_sweep(struct tsd_attachments *a);

/* Detach and unpin everything (the service stops). */
void tsd_attach_detach_all(struct tsd_attachments *a);

/* Forget the table without touching the pins (the daemon exits on failure). */
void tsd_attach_free(struct tsd_attachments *a);

#endif /* TSD_ATTACH_H */
