// SPDX-License-Identifier: GPL-2.0
/* tcp-spliced: links, addresses and routes into local_prefixes (see netwatch.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>

#include "../bpf/tcp_splice_policy.h"
#include "log.h"
#include "netwatch.h"

/* Changes come in bursts (a container start brings a link, addresses, routes): one update. */
#define SETTLE_USEC (100 * 1000)

struct tsd_netwatch {
	sd_event *event;
	int map_fd;
	struct nl_cache_mngr *mngr;
	struct nl_cache *links, *addrs, *routes;
	sd_event_source *io, *settle;
	struct ts_prefix_key *cur; /* what the map holds, sorted */
	size_t ncur;
	bool warned_full;
};

struct keyset {
	struct ts_prefix_key v[TS_MAX_LOCAL_PREFIXES];
	size_t n;
	size_t dropped;
};

static void key_add(struct keyset *s, int family, const void *addr, unsigned int plen)
{
	struct ts_prefix_key k = {0};
	unsigned int bits, i;

	if (family == AF_INET) {
		if (plen > 32)
			return;
		k.addr32[2] = htonl(0xffff);
		memcpy(&k.addr32[3], addr, 4);
		bits = 96 + plen;
	} else if (family == AF_INET6) {
		if (plen > 128)
			return;
		memcpy(k.addr, addr, 16);
		bits = plen;
	} else {
		return;
	}
	/* Host bits cleared: the trie ignores them, the set comparison must too. */
	for (i = bits; i < 128; i++)
		k.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	k.prefixlen = bits;
	if (s->n == TS_MAX_LOCAL_PREFIXES) {
		s->dropped++;
		return;
	}
	s->v[s->n++] = k;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ts_prefix_key));
}

static void key_format(const struct ts_prefix_key *k, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	bool v4 = k->prefixlen >= 96 && !k->addr32[0] && !k->addr32[1] &&
		  k->addr32[2] == htonl(0xffff);

	if (v4)
		inet_ntop(AF_INET, &k->addr32[3], a, sizeof(a));
	else
		inet_ntop(AF_INET6, k->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, v4 ? k->prefixlen - 96 : k->prefixlen);
}

static bool kind_virtual_local(const char *kind)
{
	return kind && (!strcmp(kind, "veth") || !strcmp(kind, "dummy"));
}

static bool link_local(struct nl_cache *links, struct rtnl_link *l)
{
	const char *kind = rtnl_link_get_type(l);
	int ifindex = rtnl_link_get_ifindex(l);

	if (rtnl_link_get_flags(l) & IFF_LOOPBACK || kind_virtual_local(kind))
		return true;
	if (!kind || strcmp(kind, "bridge"))
		return false;
	for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *port = (struct rtnl_link *)o;

		if (rtnl_link_get_master(port) == ifindex &&
		    !kind_virtual_local(rtnl_link_get_type(port)))
			return false;
	}
	return true;
}

static bool ifindex_local(struct nl_cache *links, int ifindex)
{
	struct rtnl_link *l = rtnl_link_get(links, ifindex);
	bool local;

	if (!l)
		return false;
	local = link_local(links, l);
	rtnl_link_put(l);
	return local;
}

static bool route_local(struct nl_cache *links, struct rtnl_route *rt)
{
	int n = rtnl_route_get_nnexthops(rt);

	if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || rtnl_route_get_type(rt) != RTN_UNICAST ||
	    n < 1)
		return false;
	for (int i = 0; i < n; i++)
		if (!ifindex_local(links, rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, i))))
			return false;
	return true;
}

static void collect(struct tsd_netwatch *w, struct keyset *s)
{
	/* The host's own addresses first: they are what must never be dropped. */
	for (struct nl_object *o = nl_cache_get_first(w->addrs); o; o = nl_cache_get_next(o)) {
		struct nl_addr *a = rtnl_addr_get_local((struct rtnl_addr *)o);

		if (a)
			key_add(s, nl_addr_get_family(a), nl_addr_get_binary_addr(a),
				nl_addr_get_len(a) * 8);
	}
	for (struct nl_object *o = nl_cache_get_first(w->routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(rt);

		/* A default route would make every address local. */
		if (dst && nl_addr_get_prefixlen(dst) > 0 && route_local(w->links, rt))
			key_add(s, nl_addr_get_family(dst), nl_addr_get_binary_addr(dst),
				nl_addr_get_prefixlen(dst));
	}
}

static size_t dedup(struct keyset *s)
{
	size_t n = 0;

	qsort(s->v, s->n, sizeof(s->v[0]), key_cmp);
	for (size_t i = 0; i < s->n; i++)
		if (!n || key_cmp(&s->v[n - 1], &s->v[i]))
			s->v[n++] = s->v[i];
	s->n = n;
	return n;
}

static bool contains(const struct ts_prefix_key *v, size_t n, const struct ts_prefix_key *k)
{
	return bsearch(k, v, n, sizeof(*v), key_cmp) != NULL;
}

/* Additions before removals: an address never looks foreign in between. */
static int sync_map(struct tsd_netwatch *w)
{
	struct keyset *s = calloc(1, sizeof(*s));
	struct ts_prefix_key *cur;
	size_t added = 0, removed = 0;
	char text[INET6_ADDRSTRLEN + 8];
	__u8 one = 1;

	if (!s)
		return -ENOMEM;
	collect(w, s);
	dedup(s);
	if (s->dropped && !w->warned_full) {
		w->warned_full = true;
		tsd_log(LOG_WARNING,
			"more than %d local prefixes: %zu left out, their connections "
			"count as non-local",
			TS_MAX_LOCAL_PREFIXES, s->dropped);
	}
	for (size_t i = 0; i < s->n; i++) {
		if (contains(w->cur, w->ncur, &s->v[i]))
			continue;
		key_format(&s->v[i], text, sizeof(text));
		if (bpf_map_update_elem(w->map_fd, &s->v[i], &one, BPF_ANY)) {
			tsd_log(LOG_ERR, "adding local prefix %s failed: %s", text,
				strerror(errno));
			continue;
		}
		tsd_log(LOG_DEBUG, "local prefix %s added", text);
		added++;
	}
	for (size_t i = 0; i < w->ncur; i++) {
		if (contains(s->v, s->n, &w->cur[i]))
			continue;
		key_format(&w->cur[i], text, sizeof(text));
		bpf_map_delete_elem(w->map_fd, &w->cur[i]);
		tsd_log(LOG_DEBUG, "local prefix %s removed", text);
		removed++;
	}
	cur = malloc(s->n * sizeof(*cur) + 1);
	if (!cur) {
		free(s);
		return -ENOMEM;
	}
	memcpy(cur, s->v, s->n * sizeof(*cur));
	free(w->cur);
	w->cur = cur;
	w->ncur = s->n;
	free(s);
	if (added || removed)
		tsd_log(LOG_INFO, "local prefixes: %zu (+%zu -%zu)", w->ncur, added, removed);
	return 0;
}

static int on_settled(sd_event_source *s, uint64_t usec, void *data)
{
	(void)s;
	(void)usec;
	return sync_map(data) == -ENOMEM ? -ENOMEM : 0;
}

static void on_change(struct nl_cache *cache, struct nl_object *obj, int action, void *data)
{
	struct tsd_netwatch *w = data;
	int r;

	(void)cache;
	(void)obj;
	(void)action;
	if (!w->settle) {
		r = sd_event_add_time_relative(w->event, &w->settle, CLOCK_MONOTONIC, SETTLE_USEC,
					       0, on_settled, w);
		if (r < 0)
			tsd_log(LOG_ERR, "scheduling a local prefix update failed: %s",
				strerror(-r));
		return;
	}
	/* Armed already: that update will see this change too. */
	if (sd_event_source_get_enabled(w->settle, NULL) > 0)
		return;
	sd_event_source_set_time_relative(w->settle, SETTLE_USEC);
	sd_event_source_set_enabled(w->settle, SD_EVENT_ONESHOT);
}

static void close_caches(struct tsd_netwatch *w)
{
	w->io = sd_event_source_disable_unref(w->io);
	if (w->mngr)
		nl_cache_mngr_free(w->mngr); /* frees the caches it holds */
	w->mngr = NULL;
	w->links = w->addrs = w->routes = NULL;
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *data);

/* Fresh dumps of all three caches, then change notifications. */
static int open_caches(struct tsd_netwatch *w)
{
	int r;

	r = nl_cache_mngr_alloc(NULL, NETLINK_ROUTE, NL_AUTO_PROVIDE, &w->mngr);
	if (!r)
		r = nl_cache_mngr_add(w->mngr, "route/link", on_change, w, &w->links);
	if (!r)
		r = nl_cache_mngr_add(w->mngr, "route/addr", on_change, w, &w->addrs);
	if (!r)
		r = nl_cache_mngr_add(w->mngr, "route/route", on_change, w, &w->routes);
	if (r) {
		tsd_log(LOG_ERR, "netlink: %s", nl_geterror(r));
		close_caches(w);
		return -EIO;
	}
	r = sd_event_add_io(w->event, &w->io, nl_cache_mngr_get_fd(w->mngr), EPOLLIN, on_netlink,
			    w);
	if (r < 0) {
		close_caches(w);
		return r;
	}
	return 0;
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *data)
{
	struct tsd_netwatch *w = data;
	int r;

	(void)s;
	(void)fd;
	(void)revents;
	r = nl_cache_mngr_data_ready(w->mngr);
	if (r >= 0)
		return 0;
	/* Most likely the socket overran (ENOBUFS): the caches are stale, dump again. */
	tsd_log(LOG_WARNING, "netlink: %s: reading links, addresses and routes again",
		nl_geterror(r));
	close_caches(w);
	r = open_caches(w);
	if (!r)
		r = sync_map(w);
	/* Blind to address changes from now on: exit, a restart starts afresh. */
	return r ? sd_event_exit(w->event, r) : 0;
}

int tsd_netwatch_new(sd_event *event, int map_fd, struct tsd_netwatch **out)
{
	struct tsd_netwatch *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->event = event;
	w->map_fd = map_fd;
	r = open_caches(w);
	if (!r)
		r = sync_map(w);
	if (r) {
		tsd_netwatch_free(w);
		return r;
	}
	*out = w;
	return 0;
}

void tsd_netwatch_free(struct tsd_netwatch *w)
{
	if (!w)
		return;
	close_caches(w);
	sd_event_source_disable_unref(w->settle);
	free(w->cur);
	free(w);
}

size_t tsd_netwatch_count(const struct tsd_netwatch *w)
{
	return w ? w->ncur : 0;
}
