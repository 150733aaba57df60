// SPDX-License-Identifier: GPL-2.0
/* tcp-spliced: cgroup attachments as pinned bpf_links (see attach.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/bpf.h>

#include "../lib/ts-cleanup.h"
#include "../lib/ts-pins.h"
#include "attach.h"
#include "log.h"
#include "progs.h"

static struct tsd_attachment *lookup(struct tsd_attachments *a, uint64_t id, size_t *pos)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->v[mid].cgroup_id == id)
			return &a->v[mid];
		if (a->v[mid].cgroup_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

static struct tsd_attachment *insert(struct tsd_attachments *a, uint64_t id, const char *cgroup,
				     const char *policy, uint32_t prog_id)
{
	struct tsd_attachment *v, *e;
	size_t pos;

	if (lookup(a, id, &pos))
		return NULL;
	v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v)
		return NULL;
	a->v = v;
	memmove(&v[pos + 1], &v[pos], (a->n - pos) * sizeof(*v));
	e = &v[pos];
	*e = (struct tsd_attachment){.cgroup_id = id, .prog_id = prog_id, .seen = true};
	e->cgroup = cgroup ? strdup(cgroup) : NULL;
	e->policy = strdup(policy);
	a->n++;
	return e;
}

static void remove_entry(struct tsd_attachments *a, struct tsd_attachment *e)
{
	size_t pos = (size_t)(e - a->v);

	free(e->cgroup);
	free(e->policy);
	memmove(e, e + 1, (a->n - pos - 1) * sizeof(*e));
	a->n--;
}

static int mkdir_pins(const char *policy)
{
	char dir[PATH_MAX];
	int r;

	r = ts_pin_path(dir, sizeof(dir), policy, 0);
	if (r)
		return r;
	if (mkdir(TS_PIN_ROOT, 0700) && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Empty policy directories go with their last pin; a busy one stays. */
static void rmdir_pins(const char *policy)
{
	char dir[PATH_MAX];

	if (!ts_pin_path(dir, sizeof(dir), policy, 0))
		rmdir(dir);
}

/* Detach now, even if something else still holds the link, and unpin. */
static void unpin(const char *path, bool detach)
{
	_cleanup_close_ int fd = detach ? bpf_obj_get(path) : -1;

	if (fd >= 0)
		bpf_link_detach(fd);
	unlink(path);
}

static void drop(struct tsd_attachments *a, struct tsd_attachment *e, bool detach, const char *why)
{
	char path[PATH_MAX];

	if (!ts_pin_path(path, sizeof(path), e->policy, e->cgroup_id))
		unpin(path, detach);
	tsd_event(LOG_INFO, TSD_MID_CGROUP_DETACHED,
		  &(struct tsd_fields){
			  .policy = e->policy, .cgroup = e->cgroup, .cgroup_id = e->cgroup_id},
		  "cgroup /%s: policy %s detached (%s)", e->cgroup ? e->cgroup : "?", e->policy,
		  why);
	rmdir_pins(e->policy);
	remove_entry(a, e);
}

static int adopt_one(const struct ts_pin *pin, void *data)
{
	struct tsd_attachments *a = data;
	_cleanup_close_ int fd = bpf_obj_get(pin->path);
	struct ts_link_state st;

	if (fd < 0)
		return 0; /* not ours to judge: leave it */
	if (ts_link_state(fd, &st) || st.cgroup_id != pin->cgroup_id ||
	    lookup(a, st.cgroup_id, NULL)) {
		/* Broken, its cgroup gone, or a second link on one cgroup. */
		tsd_log(LOG_INFO, "dropping stale pin %s", pin->path);
		bpf_link_detach(fd);
		unlink(pin->path);
		return 0;
	}
	return insert(a, st.cgroup_id, NULL, pin->policy, st.prog_id) ? 0 : -ENOMEM;
}

int tsd_attach_adopt(struct tsd_attachments *a)
{
	int r = ts_pins_foreach(adopt_one, a);

	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	for (size_t i = 0; i < a->n; i++)
		a->v[i].seen = false;
	if (a->n)
		tsd_log(LOG_INFO, "took over %zu attached cgroups from a previous run", a->n);
	return 0;
}

static int attach_new(struct tsd_attachments *a, int cgfd, uint64_t id, const char *cgroup,
		      const struct tsd_prog *prog)
{
	struct tsd_fields f = {.policy = prog->name, .cgroup = cgroup, .cgroup_id = id};
	_cleanup_close_ int link = -1;
	char path[PATH_MAX];
	int r;

	r = ts_pin_path(path, sizeof(path), prog->name, id);
	if (!r)
		r = mkdir_pins(prog->name);
	if (r)
		goto fail;
	link = bpf_link_create(prog->fd, cgfd, BPF_CGROUP_SOCK_OPS, NULL);
	if (link < 0) {
		r = -errno;
		goto fail;
	}
	/* Without the pin the link would go with this fd: pin first, then record. */
	if (bpf_obj_pin(link, path)) {
		r = -errno;
		goto fail;
	}
	if (!insert(a, id, cgroup, prog->name, prog->id)) {
		unpin(path, true);
		r = -ENOMEM;
		goto fail;
	}
	tsd_event(LOG_INFO, TSD_MID_CGROUP_ATTACHED, &f, "cgroup /%s: policy %s attached", cgroup,
		  prog->name);
	return 0;
fail:
	f.error = -r;
	tsd_event(LOG_ERR, NULL, &f, "cgroup /%s: attaching policy %s failed: %s", cgroup,
		  prog->name, strerror(-r));
	return r;
}

/* Swap the program inside the live link: the cgroup never runs without one. */
static int replace(struct tsd_attachment *e, const struct tsd_prog *prog)
{
	char old_path[PATH_MAX], new_path[PATH_MAX];
	_cleanup_free_ char *old_policy = NULL;
	_cleanup_close_ int fd = -1;

	if (ts_pin_path(old_path, sizeof(old_path), e->policy, e->cgroup_id) ||
	    ts_pin_path(new_path, sizeof(new_path), prog->name, e->cgroup_id))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(old_path);
	if (fd < 0 || bpf_link_update(fd, prog->fd, NULL))
		return -errno;
	if (strcmp(e->policy, prog->name)) {
		_cleanup_free_ char *name = strdup(prog->name);
		int r;

		if (!name)
			return -ENOMEM;
		r = mkdir_pins(prog->name);
		if (r)
			return r;
		if (bpf_obj_pin(fd, new_path))
			return -errno;
		unlink(old_path);
		old_policy = e->policy;
		e->policy = TAKE_PTR(name);
		rmdir_pins(old_policy);
	}
	e->prog_id = prog->id;
	tsd_event(LOG_INFO, TSD_MID_CGROUP_ATTACHED,
		  &(struct tsd_fields){
			  .policy = prog->name, .cgroup = e->cgroup, .cgroup_id = e->cgroup_id},
		  "cgroup /%s: policy %s %s", e->cgroup, prog->name,
		  old_policy ? "replaced the previous policy" : "updated");
	return 0;
}

int tsd_attach_set(struct tsd_attachments *a, int cgfd, uint64_t cgroup_id, const char *cgroup,
		   const struct tsd_prog *prog)
{
	struct tsd_attachment *e = lookup(a, cgroup_id, NULL);
	int r;

	if (e) {
		e->seen = true;
		if (!e->cgroup || strcmp(e->cgroup, cgroup)) {
			free(e->cgroup);
			e->cgroup = strdup(cgroup);
		}
	}
	if (!prog) {
		if (e)
			drop(a, e, true, "no policy of its own claims it now");
		return 0;
	}
	if (e && e->prog_id == prog->id && !strcmp(e->policy, prog->name))
		return 0;
	if (e) {
		r = replace(e, prog);
		if (!r)
			return 0;
		tsd_log(LOG_WARNING,
			"cgroup /%s: replacing the program in its link failed (%s), "
			"attaching anew",
			cgroup, strerror(-r));
		drop(a, e, true, "its link could not be updated");
	}
	return attach_new(a, cgfd, cgroup_id, cgroup, prog);
}

void tsd_attach_cgroup_gone(struct tsd_attachments *a, const char *cgroup)
{
	size_t len = strlen(cgroup);

	for (size_t i = 0; i < a->n;) {
		const char *c = a->v[i].cgroup;

		/* The cgroup itself, or a descendant whose event was lost. */
		if (c && !strncmp(c, cgroup, len) && (c[len] == '\0' || c[len] == '/'))
			drop(a, &a->v[i], false, "cgroup removed");
		else
			i++;
	}
}

void tsd_attach_unmark(struct tsd_attachments *a)
{
	for (size_t i = 0; i < a->n; i++)
		a->v[i].seen = false;
}

void tsd_attach_sweep(struct tsd_attachments *a)
{
	for (size_t i = 0; i < a->n;) {
		if (!a->v[i].seen)
			drop(a, &a->v[i], true, "cgroup removed");
		else
			i++;
	}
}

void tsd_attach_detach_all(struct tsd_attachments *a)
{
	DIR *d;

	while (a->n)
		drop(a, &a->v[a->n - 1], true, "service stopping");
	/* Directories that lost their pins otherwise (stale ones dropped at start). */
	d = opendir(TS_PIN_ROOT);
	if (d) {
		struct dirent *de;

		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				rmdir_pins(de->d_name);
		closedir(d);
	}
	rmdir(TS_PIN_ROOT);
	tsd_attach_free(a);
}

void tsd_attach_free(struct tsd_attachments *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].cgroup);
		free(a->v[i].policy);
	}
	free(a->v);
	a->v = NULL;
	a->n = 0;
}
