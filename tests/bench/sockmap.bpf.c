// SPDX-License-Identifier: GPL-2.0
/*
 * sockmap redirection for the benchmark's comparison, the way socket
 * acceleration of Cilium or Merbridge works: a sock_ops program puts every
 * established IPv4 TCP socket with a local or remote port in [port_lo,
 * port_hi] into a SOCKHASH keyed by its 4-tuple, and an sk_msg program
 * redirects each message sent on such a socket straight into the receive
 * queue of its peer (the entry with the mirrored tuple), skipping TCP/IP.
 * Only UAPI types: one object for every kernel.
 */
#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define AF_INET 2

/* Ports in host order. */
struct tuple {
	__u32 local_ip4, remote_ip4;
	__u32 local_port, remote_port;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct tuple);
	__type(value, __u64);
} socks SEC(".maps");

/* What the sk_msg program did, for the benchmark's check. */
struct counts {
	__u64 redirected_bytes, redirected_msgs, passed_msgs;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counts);
} stats SEC(".maps");

/* Set by the loader before load. */
const volatile __u32 port_lo = 30000, port_hi = 39999;

/*
 * remote_port is the big-endian port, in the low 16 bits or shifted into the
 * high ones depending on the context and kernel; a port is never 0, so the
 * half that is not 0 holds it.
 */
static __always_inline __u32 port_of(__u32 raw)
{
	return bpf_ntohs((__u16)(raw & 0xffff ? raw : raw >> 16));
}

static __always_inline int in_range(__u32 port)
{
	return port >= port_lo && port <= port_hi;
}

SEC("sockops")
int sockmap_sockops(struct bpf_sock_ops *ops)
{
	struct tuple key;

	if (ops->family != AF_INET)
		return 1;
	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	key.local_ip4 = ops->local_ip4;
	key.remote_ip4 = ops->remote_ip4;
	key.local_port = ops->local_port;
	key.remote_port = port_of(ops->remote_port);
	if (!in_range(key.local_port) && !in_range(key.remote_port))
		return 1;
	bpf_sock_hash_update(ops, &socks, &key, BPF_NOEXIST);
	return 1;
}

SEC("sk_msg")
int sockmap_redirect(struct sk_msg_md *msg)
{
	struct tuple peer = {
		.local_ip4 = msg->remote_ip4,
		.remote_ip4 = msg->local_ip4,
		.local_port = port_of(msg->remote_port),
		.remote_port = msg->local_port,
	};
	__u32 zero = 0, size = msg->size;
	struct counts *c = bpf_map_lookup_elem(&stats, &zero);
	long verdict;

	verdict = bpf_msg_redirect_hash(msg, &socks, &peer, BPF_F_INGRESS);
	if (c && verdict == SK_PASS) {
		__sync_fetch_and_add(&c->redirected_bytes, size);
		__sync_fetch_and_add(&c->redirected_msgs, 1);
	} else if (c) {
		__sync_fetch_and_add(&c->passed_msgs, 1);
	}
	/* No peer in the map (not yet, or not local): over TCP as usual. */
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
