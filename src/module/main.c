// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: module entry, parameters and the kfunc for sock_ops programs.
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/filter.h>
#include <linux/module.h>
#include <net/tcp.h>

#include "tcp_splice.h"

unsigned int ts_ring_max_kb = 4096;
module_param_named(ring_max_kb, ts_ring_max_kb, uint, 0644);
MODULE_PARM_DESC(ring_max_kb, "Largest ring per direction in KiB (4..65536, rounded down to a power of two); rings start at 4 KiB and grow on demand; applies to new growth");

unsigned long ts_ring_mem_max_kb;
module_param_named(ring_mem_max_kb, ts_ring_mem_max_kb, ulong, 0644);
MODULE_PARM_DESC(ring_mem_max_kb, "Cap on all ring memory in KiB; past it new connections stay plain TCP (0: an eighth of RAM)");

unsigned int ts_busy_poll_us;
module_param_named(busy_poll_us, ts_busy_poll_us, uint, 0644);
MODULE_PARM_DESC(busy_poll_us, "Busy-poll budget in microseconds for blocking receives on spliced sockets without SO_BUSY_POLL / net.core.busy_read (0: off)");

bool ts_early_wake = true;
module_param_named(early_wake, ts_early_wake, bool, 0644);
MODULE_PARM_DESC(early_wake, "Wake a peer blocked in a receive as soon as its ring bytes are all consumed, before the reply is written, so that its CPU's wake-up overlaps our work (request/response latency; costs a wake-up per exchange)");

bool ts_early_wake_poll = true;
module_param_named(early_wake_poll, ts_early_wake_poll, bool, 0644);
MODULE_PARM_DESC(early_wake_poll, "With early_wake, also wake a peer waiting in poll, select or epoll that has read replies before, has none unread and sleeps, if the reading thread slept since its last read (one request at a time): it looks, finds nothing and waits again (event loops at low concurrency gain; busy ones are left alone)");

bool ts_relay_zerocopy = true;
module_param_named(relay_zerocopy, ts_relay_zerocopy, bool, 0644);
MODULE_PARM_DESC(relay_zerocopy, "Relay splices of TCP pass the source's received pages to the drain by reference instead of copying them twice (N: always copy; applies to the next chunk)");

struct workqueue_struct *ts_wq;

__bpf_kfunc_start_defs();

/**
 * bpf_tcp_splice_established - offer a TCP socket for splicing
 * @ctx: the sock_ops program's own context
 *
 * Call from BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB and
 * BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB.  Returns 0 when the socket was taken
 * (parked until its peer arrives, or paired), a negative errno otherwise; the
 * socket then simply stays plain TCP.
 */
__bpf_kfunc int bpf_tcp_splice_established(struct bpf_sock_ops *ctx)
{
	/*
	 * The context argument is matched by name, so the program passes its
	 * ctx as is; a struct argument would have to be the very BTF type of
	 * the running kernel, which module BTF does not always dedup to.
	 */
	struct bpf_sock_ops_kern *skops = (struct bpf_sock_ops_kern *)ctx;
	struct sock *sk = skops->sk;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return -EINVAL;
	/* sk_fullsock() reads only sock_common: safe before sk_protocol. */
	if (!sk || !sk_fullsock(sk))
		return -EINVAL;
	if (sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
		return -EPROTONOSUPPORT;
	return ts_establish(sk, skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB);
}

__bpf_kfunc_end_defs();

#ifdef KF_TRUSTED_ARGS
#define TS_KF_FLAGS	KF_TRUSTED_ARGS
#else
#define TS_KF_FLAGS	0	/* trusted arguments are the default (7.x) */
#endif

BTF_KFUNCS_START(ts_kfunc_ids)
BTF_ID_FLAGS(func, bpf_tcp_splice_established, TS_KF_FLAGS)
BTF_KFUNCS_END(ts_kfunc_ids)

/* The same id, resolved at build time: 0 means the module has no usable BTF. */
BTF_ID_LIST_SINGLE(ts_kfunc_btf_id, func, bpf_tcp_splice_established)

/*
 * The common (and the cgroup) hook is shared by many program types: admit
 * sock_ops programs only.  Filters are kept per BTF object, so this one is
 * asked about this module's kfuncs alone; the id it gets is relocated against
 * the running kernel and need not equal the one in ts_kfunc_ids.
 */
static int ts_kfunc_filter(const struct bpf_prog *prog, u32 kfunc_id)
{
	return prog->type == BPF_PROG_TYPE_SOCK_OPS ? 0 : -EACCES;
}

static const struct btf_kfunc_id_set ts_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &ts_kfunc_ids,
	.filter = ts_kfunc_filter,
};

static int __init ts_init(void)
{
	const char *hook = "sock_ops";
	int err;

	if (!ts_kfunc_btf_id[0]) {
		pr_err("tcp_splice: the kfunc has no BTF id (module built without BTF?)\n");
		return -ENOENT;
	}
	/* Unbound: a persist retry only wakes a writer, on no CPU in particular. */
	ts_wq = alloc_workqueue("tcp_splice", WQ_UNBOUND, 0);
	if (!ts_wq)
		return -ENOMEM;
	err = ts_pair_init();
	if (err)
		goto out_wq;
	err = ts_stats_init();
	if (err)
		goto out_pair;
	/* 6.15+ maps sock_ops programs to a kfunc hook; before, only the common one. */
	err = register_btf_kfunc_id_set(BPF_PROG_TYPE_SOCK_OPS, &ts_kfunc_set);
	if (err == -EINVAL) {
		hook = "common+filter";
		err = register_btf_kfunc_id_set(BPF_PROG_TYPE_UNSPEC, &ts_kfunc_set);
	}
	if (err) {
		pr_err("tcp_splice: registering the kfunc failed: %d\n", err);
		goto out_stats;
	}
	/* Last: sockets may be taken in as soon as the device is there. */
	err = ts_relay_init();
	if (err)
		goto out_stats;
	pr_info("tcp_splice: kfunc bpf_tcp_splice_established registered for sock_ops programs (%s hook)\n",
		hook);
	return 0;

out_stats:
	ts_stats_exit();
out_pair:
	ts_pair_exit();
out_wq:
	destroy_workqueue(ts_wq);
	return err;
}

static void __exit ts_exit(void)
{
	/*
	 * Every channel held a module reference: none is left but RCU frees,
	 * and work items that dropped their last channel reference may still
	 * be returning, which destroy_workqueue() waits for.
	 */
	destroy_workqueue(ts_wq);
	ts_pair_exit();
	ts_relay_exit();
	ts_proto_exit();
	ts_stats_exit();
	pr_info("tcp_splice: unloaded\n");
}

module_init(ts_init);
module_exit(ts_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Splice co-located TCP connections through in-kernel rings");
MODULE_AUTHOR("tcp-splice developers");
