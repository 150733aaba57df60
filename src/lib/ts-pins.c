// SPDX-License-Identifier: GPL-2.0
/* tcp-splice: the pins under TS_PIN_ROOT and what a link tells (ts-pins.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "ts-pins.h"

int ts_pin_path(char *buf, size_t len, const char *policy, uint64_t cgroup_id)
{
	int n;

	if (cgroup_id)
		n = snprintf(buf, len, "%s/%s/%" PRIu64, TS_PIN_ROOT, policy, cgroup_id);
	else
		n = snprintf(buf, len, "%s/%s", TS_PIN_ROOT, policy);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int parse_id(const char *s, uint64_t *id)
{
	char *end;

	if (*s < '1' || *s > '9')
		return -EINVAL;
	errno = 0;
	*id = strtoull(s, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

int ts_pins_foreach_policy(const char *policy, ts_pin_fn fn, void *data)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (ts_pin_path(dir, sizeof(dir), policy, 0))
		return 0;
	d = opendir(dir);
	if (!d)
		return 0; /* removed meanwhile, or not a directory */
	while ((de = readdir(d))) {
		struct ts_pin pin = {.policy = policy, .path = path};

		if (parse_id(de->d_name, &pin.cgroup_id) ||
		    ts_pin_path(path, sizeof(path), policy, pin.cgroup_id))
			continue;
		r = fn(&pin, data);
		if (r)
			break;
	}
	closedir(d);
	return r;
}

int ts_pins_foreach(ts_pin_fn fn, void *data)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir(TS_PIN_ROOT);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = ts_pins_foreach_policy(de->d_name, fn, data);
		if (r)
			break;
	}
	closedir(d);
	return r;
}

int ts_link_state(int link_fd, struct ts_link_state *st)
{
	struct bpf_link_info info = {0};
	__u32 len = sizeof(info);

	if (bpf_link_get_info_by_fd(link_fd, &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_CGROUP)
		return -EMEDIUMTYPE;
	st->link_id = info.id;
	st->prog_id = info.prog_id;
	st->cgroup_id = info.cgroup.cgroup_id;
	return 0;
}

int ts_prog_map_fd(uint32_t prog_id, const char *name)
{
	__u32 map_ids[16], nmaps = 16;
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int prog_fd, r = -ENOENT;

	prog_fd = bpf_prog_get_fd_by_id(prog_id);
	if (prog_fd < 0)
		return -errno;
	info.nr_map_ids = nmaps;
	info.map_ids = (__u64)(uintptr_t)map_ids;
	if (bpf_prog_get_info_by_fd(prog_fd, &info, &len)) {
		r = -errno;
		goto out;
	}
	if (info.nr_map_ids < nmaps)
		nmaps = info.nr_map_ids;
	for (__u32 i = 0; i < nmaps; i++) {
		struct bpf_map_info minfo = {0};
		__u32 mlen = sizeof(minfo);
		int fd = bpf_map_get_fd_by_id(map_ids[i]);

		if (fd < 0)
			continue;
		if (!bpf_map_get_info_by_fd(fd, &minfo, &mlen) && !strcmp(minfo.name, name)) {
			r = fd;
			break;
		}
		close(fd);
	}
out:
	close(prog_fd);
	return r;
}
