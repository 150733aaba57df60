// SPDX-License-Identifier: GPL-2.0
/* tcp-spliced: inotify on the cgroup2 tree (see cgwatch.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cgwatch.h"
#include "log.h"

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW)

struct watch {
	int wd;
	char *cgroup;
};

struct tsd_cgwatch {
	int fd;
	sd_event_source *source;
	char *root;
	struct watch *v; /* sorted by wd */
	size_t n;
	const struct tsd_cgwatch_ops *ops;
	void *data;
	bool warned_limit;
};

static struct watch *lookup(struct tsd_cgwatch *w, int wd, size_t *pos)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->v[mid].wd == wd)
			return &w->v[mid];
		if (w->v[mid].wd < wd)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

int tsd_cgwatch_add(struct tsd_cgwatch *w, const char *cgroup)
{
	char path[PATH_MAX];
	struct watch *v, *e;
	char *copy;
	size_t pos;
	int wd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", w->root, cgroup) >= sizeof(path))
		return -ENAMETOOLONG;
	wd = inotify_add_watch(w->fd, path, WATCH_MASK);
	if (wd < 0) {
		if (errno == ENOSPC && !w->warned_limit) {
			w->warned_limit = true;
			tsd_log(LOG_WARNING,
				"out of inotify watches at /%s: new cgroups below it "
				"are missed (raise fs.inotify.max_user_watches)",
				cgroup);
		}
		return -errno;
	}
	copy = strdup(cgroup);
	if (!copy)
		return -ENOMEM;
	e = lookup(w, wd, &pos);
	if (e) { /* watched already: the path is the same cgroup's */
		free(e->cgroup);
		e->cgroup = copy;
		return 0;
	}
	v = realloc(w->v, (w->n + 1) * sizeof(*v));
	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	w->v = v;
	memmove(&v[pos + 1], &v[pos], (w->n - pos) * sizeof(*v));
	v[pos] = (struct watch){.wd = wd, .cgroup = copy};
	w->n++;
	return 0;
}

static void forget(struct tsd_cgwatch *w, int wd)
{
	struct watch *e = lookup(w, wd, NULL);

	if (!e)
		return;
	free(e->cgroup);
	memmove(e, e + 1, (w->n - (size_t)(e - w->v) - 1) * sizeof(*e));
	w->n--;
}

static void handle(struct tsd_cgwatch *w, const struct inotify_event *ev)
{
	char child[PATH_MAX];
	struct watch *parent;

	if (ev->mask & IN_Q_OVERFLOW) {
		tsd_log(LOG_WARNING, "cgroup events were lost: looking at every cgroup again");
		w->ops->lost(w->data);
		return;
	}
	if (ev->mask & IN_IGNORED) {
		forget(w, ev->wd);
		return;
	}
	if (!(ev->mask & IN_ISDIR) || !ev->len)
		return;
	parent = lookup(w, ev->wd, NULL);
	if (!parent || (size_t)snprintf(child, sizeof(child), "%s%s%s", parent->cgroup,
					*parent->cgroup ? "/" : "", ev->name) >= sizeof(child))
		return;
	if (ev->mask & (IN_CREATE | IN_MOVED_TO))
		w->ops->added(child, w->data);
	else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
		w->ops->removed(child, w->data);
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *data)
{
	struct tsd_cgwatch *w = data;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)revents;
	for (;;) {
		ssize_t len = read(fd, buf, sizeof(buf));

		if (len < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			/* Blind to cgroups from now on: exit, a restart takes over the pins. */
			tsd_log(LOG_ERR, "reading cgroup events failed: %s", strerror(errno));
			return sd_event_exit(sd_event_source_get_event(s), -errno);
		}
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			handle(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
}

int tsd_cgwatch_new(sd_event *event, const char *root, const struct tsd_cgwatch_ops *ops,
		    void *data, struct tsd_cgwatch **out)
{
	struct tsd_cgwatch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->ops = ops;
	w->data = data;
	w->root = strdup(root);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (!w->root || w->fd < 0) {
		r = w->root ? -errno : -ENOMEM;
		goto fail;
	}
	r = sd_event_add_io(event, &w->source, w->fd, EPOLLIN, on_inotify, w);
	if (r < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	tsd_cgwatch_free(w);
	return r;
}

void tsd_cgwatch_free(struct tsd_cgwatch *w)
{
	if (!w)
		return;
	sd_event_source_disable_unref(w->source);
	if (w->fd >= 0)
		close(w->fd);
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].cgroup);
	free(w->v);
	free(w->root);
	free(w);
}
