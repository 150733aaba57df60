// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: the sock_ops program that decides which connections to splice.
 *
 * Attached to a cgroup, it sees both ends of every TCP connection become
 * established and offers the ones the policy admits to the tcp_splice module,
 * which pairs the two ends of a local connection.  The policy lives in maps so
 * that the daemon can change it without reloading.  Every test below gives the
 * same answer on both ends of a connection (ports are tested local OR remote,
 * addresses on both ends), so an end is never offered without its peer.
 */
/*
 * Context loads must keep a constant offset or the verifier refuses them;
 * clang merges loads of two fields on two paths into one load through a
 * computed pointer unless the type is marked preserve_static_offset, which
 * vmlinux.h does not do for context types.
 */
#pragma clang attribute push(__attribute__((preserve_static_offset)), apply_to = record)
#include "vmlinux.h"
#pragma clang attribute pop
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tcp_splice_policy.h"

#define AF_INET		2
#define AF_INET6	10

/* In the tcp_splice module (src/module/main.c); resolved in its BTF at load. */
extern int bpf_tcp_splice_established(struct bpf_sock_ops *ctx) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ts_policy);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TS_MAX_LOCAL_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* required for LPM tries */
	__type(key, struct ts_prefix_key);
	__type(value, __u8);
} local_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ts_stats);
} stats SEC(".maps");

/* Atomic: a softirq callback can interrupt a process-context one on this CPU. */
static __always_inline void ts_count(__u64 *counter)
{
	__sync_fetch_and_add(counter, 1);
}

static __always_inline bool ts_addr_v4mapped(const struct ts_prefix_key *a)
{
	return a->addr32[0] == 0 && a->addr32[1] == 0 &&
	       a->addr32[2] == bpf_htonl(0x0000ffff);
}

/* 127/8 (v4-mapped, so also ::ffff:127.0.0.0/104) or ::1. */
static __always_inline bool ts_addr_loopback(const struct ts_prefix_key *a)
{
	if (ts_addr_v4mapped(a))
		return (bpf_ntohl(a->addr32[3]) >> 24) == 127;
	return a->addr32[0] == 0 && a->addr32[1] == 0 && a->addr32[2] == 0 &&
	       a->addr32[3] == bpf_htonl(1);
}

static __always_inline bool ts_addr_local(struct ts_prefix_key *a)
{
	return ts_addr_loopback(a) || bpf_map_lookup_elem(&local_prefixes, a);
}

/* Both addresses as 128-bit keys, IPv4 v4-mapped like an IPv6 socket has them. */
static __always_inline int ts_read_addrs(const struct bpf_sock_ops *ctx,
					 struct ts_prefix_key *local,
					 struct ts_prefix_key *remote)
{
	local->prefixlen = 128;
	remote->prefixlen = 128;
	if (ctx->family == AF_INET) {
		local->addr32[0] = 0;
		local->addr32[1] = 0;
		local->addr32[2] = bpf_htonl(0x0000ffff);
		local->addr32[3] = ctx->local_ip4;
		remote->addr32[0] = 0;
		remote->addr32[1] = 0;
		remote->addr32[2] = bpf_htonl(0x0000ffff);
		remote->addr32[3] = ctx->remote_ip4;
		return 0;
	}
	if (ctx->family == AF_INET6) {
		/* Context fields take constant offsets only: no loop. */
		local->addr32[0] = ctx->local_ip6[0];
		local->addr32[1] = ctx->local_ip6[1];
		local->addr32[2] = ctx->local_ip6[2];
		local->addr32[3] = ctx->local_ip6[3];
		remote->addr32[0] = ctx->remote_ip6[0];
		remote->addr32[1] = ctx->remote_ip6[1];
		remote->addr32[2] = ctx->remote_ip6[2];
		remote->addr32[3] = ctx->remote_ip6[3];
		return 0;
	}
	return -1;
}

/*
 * An IPv6 socket talking to an IPv4 peer (v4-mapped addresses) counts as
 * IPv4: its peer is a plain AF_INET socket, and both ends must agree.
 */
static __always_inline bool ts_family_allowed(const struct ts_policy *p,
					      const struct ts_prefix_key *local,
					      const struct ts_prefix_key *remote)
{
	__u32 bit;

	if (!p->family_mask)
		return true;
	if (ts_addr_v4mapped(local) && ts_addr_v4mapped(remote))
		bit = TS_FAMILY_IPV4;
	else
		bit = TS_FAMILY_IPV6;
	return p->family_mask & bit;
}

static __always_inline bool ts_scope_allowed(const struct ts_policy *p,
					     struct ts_prefix_key *local,
					     struct ts_prefix_key *remote)
{
	switch (p->scope) {
	case TS_SCOPE_LOOPBACK:
		return ts_addr_loopback(local) && ts_addr_loopback(remote);
	case TS_SCOPE_LOCAL:
		return ts_addr_local(local) && ts_addr_local(remote);
	case TS_SCOPE_ANY:
		return true;
	}
	return false;	/* an unknown scope admits nothing */
}

static __always_inline bool ts_port_in_range(const struct ts_port_range *r,
					     __u16 port)
{
	return port >= r->lo && port <= r->hi;
}

static __always_inline bool ts_ports_allowed(const struct ts_policy *p,
					     __u16 lport, __u16 rport)
{
	__u32 n = p->nports;
	__u32 i;

	if (!n)
		return true;
	for (i = 0; i < TS_MAX_PORT_RANGES && i < n; i++) {
		if (ts_port_in_range(&p->ports[i], lport) ||
		    ts_port_in_range(&p->ports[i], rport))
			return true;
	}
	return false;
}

static __always_inline bool ts_policy_allows(const struct bpf_sock_ops *ctx)
{
	struct ts_prefix_key local, remote;
	const struct ts_policy *p;
	__u32 key = 0;
	__u16 lport, rport;

	p = bpf_map_lookup_elem(&policy, &key);
	if (!p || !p->enabled)
		return false;
	if (ts_read_addrs(ctx, &local, &remote))
		return false;
	if (!ts_family_allowed(p, &local, &remote))
		return false;
	if (!ts_scope_allowed(p, &local, &remote))
		return false;
	/*
	 * local_port is in host order; remote_port holds the network-order
	 * port in its upper 16 bits on little-endian, its lower on big-endian:
	 * as a whole it is a network-order u32 either way.
	 */
	lport = ctx->local_port;
	rport = bpf_ntohl(ctx->remote_port);
	return ts_ports_allowed(p, lport, rport);
}

SEC("sockops")
int tcp_splice_sockops(struct bpf_sock_ops *ctx)
{
	struct ts_stats *s;
	__u32 key = 0;
	int err;

	if (ctx->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    ctx->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;

	s = bpf_map_lookup_elem(&stats, &key);
	if (!s)
		return 1;	/* never: entry 0 of an array always exists */
	ts_count(&s->calls);
	if (!ts_policy_allows(ctx)) {
		ts_count(&s->denied);
		return 1;
	}
	ts_count(&s->allowed);

	/*
	 * The argument is typed as this program's context, so the verifier
	 * wants the context pointer itself: it refuses the trusted pointer
	 * bpf_cast_to_kern_ctx() returns ("expected pointer to ctx").
	 */
	err = bpf_tcp_splice_established(ctx);
	ts_count(err ? &s->kfunc_err : &s->kfunc_ok);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
