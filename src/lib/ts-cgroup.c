// SPDX-License-Identifier: GPL-2.0
/* tcp-splice: cgroup2 mount, ids and tree walk (see ts-cgroup.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts-cgroup.h"

int ts_cgroup_root(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;

	if (!f)
		return -errno;
	/* "id parent maj:min root mountpoint options... - fstype source ..." */
	while (getline(&line, &cap, f) > 0) {
		char mnt[PATH_MAX], fstype[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if ((size_t)snprintf(buf, len, "%s", mnt) >= len)
			r = -ENAMETOOLONG;
		else
			r = 0;
		break;
	}
	free(line);
	fclose(f);
	return r;
}

int ts_cgroup_id(int dirfd, uint64_t *id)
{
	/* A kernfs file handle is the node id, which is the cgroup id. */
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = {.fh.handle_bytes = sizeof(uint64_t)};
	struct stat st;
	int mnt;

	if (!name_to_handle_at(dirfd, "", &h.fh, &mnt, AT_EMPTY_PATH) &&
	    h.fh.handle_bytes == sizeof(uint64_t)) {
		memcpy(id, h.fh.f_handle, sizeof(*id));
		return 0;
	}
	/* Without handle support the inode number is the same id on 64-bit. */
	if (fstat(dirfd, &st))
		return -errno;
	*id = st.st_ino;
	return 0;
}

static int walk(int dirfd, char *rel, size_t len, ts_cgroup_fn fn, void *data)
{
	size_t base = strlen(rel);
	struct dirent *de;
	DIR *d;
	int dfd, r;

	r = fn(dirfd, rel, data);
	if (r < 0)
		return r;
	/* fdopendir takes the fd over: it gets a dup, the caller keeps dirfd. */
	dfd = dup(dirfd);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	r = 0;
	while ((de = readdir(d))) {
		int sub;

		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(rel + base, len - base, "%s%s", base ? "/" : "", de->d_name) >=
		    len - base)
			continue; /* deeper than PATH_MAX: nothing can name it anyway */
		sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (sub < 0)
			continue; /* removed since readdir */
		r = walk(sub, rel, len, fn, data);
		close(sub);
		if (r < 0)
			break;
	}
	rel[base] = '\0';
	closedir(d);
	return r;
}

int ts_cgroup_walk_from(const char *root, const char *rel, ts_cgroup_fn fn, void *data)
{
	char path[PATH_MAX], buf[PATH_MAX];
	int fd, r;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, rel) >= sizeof(path) ||
	    (size_t)snprintf(buf, sizeof(buf), "%s", rel) >= sizeof(buf))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = walk(fd, buf, sizeof(buf), fn, data);
	close(fd);
	return r;
}

int ts_cgroup_walk(const char *root, ts_cgroup_fn fn, void *data)
{
	return ts_cgroup_walk_from(root, "", fn, data);
}
