// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: per-namespace counters (/proc/net/tcp_splice) and the listing
 * of the sockets the module tracks (/proc/net/tcp_splice_conns).  A process
 * sees only its own network namespace.
 */
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include "tcp_splice.h"

struct ts_counters {
	u64 v[TS_C_MAX];
};

static const char *const ts_counter_names[TS_C_MAX] = {
	[TS_C_PAIRS_ACTIVE] = "pairs_active",
	[TS_C_PAIRS_TOTAL] = "pairs_total",
	[TS_C_PARKED] = "parked",
	[TS_C_RING_BYTES_TX] = "ring_bytes_tx",
	[TS_C_RING_BYTES_RX] = "ring_bytes_rx",
	[TS_C_STARTUP_BYTES] = "startup_bytes",
	[TS_C_HANDOFFS] = "handoffs",
	[TS_C_REFUSED_STATE] = "refused_state",
	[TS_C_REFUSED_REPAIR] = "refused_repair",
	[TS_C_REFUSED_MPTCP] = "refused_mptcp",
	[TS_C_REFUSED_ULP] = "refused_ulp",
	[TS_C_REFUSED_URGENT] = "refused_urgent",
	[TS_C_REFUSED_ZEROCOPY] = "refused_zerocopy",
	[TS_C_REFUSED_KERNEL] = "refused_kernel",
	[TS_C_REFUSED_USER_DATA] = "refused_user_data",
	[TS_C_REFUSED_ALREADY] = "refused_already",
	[TS_C_REFUSED_NOMEM] = "refused_nomem",
	[TS_C_REFUSED_FAMILY] = "refused_family",
	[TS_C_TX_NEVER_OOB] = "tx_never_oob",
	[TS_C_TX_NEVER_ZEROCOPY] = "tx_never_zerocopy",
	[TS_C_TX_NEVER_BUSY] = "tx_never_busy",
	[TS_C_RING_CAP_HITS] = "ring_cap_hits",
	[TS_C_RING_ALLOC_FAIL] = "ring_alloc_fail",
	[TS_C_RING_GROWS] = "ring_grows",
	[TS_C_UNPAIRED_CLOSE] = "unpaired_close",
	[TS_C_ULP_REFUSED] = "ulp_refused",
	[TS_C_ISN_MISMATCH] = "isn_mismatch",
	[TS_C_RING_CLOSED_PEER_GONE] = "ring_closed_peer_gone",
	[TS_C_REFUSED_FILTER] = "refused_filter",
	[TS_C_RING_CLOSED_FILTER] = "ring_closed_filter",
	[TS_C_EARLY_WAKES] = "early_wakes",
	[TS_C_RING_PERSIST_WAKES] = "ring_persist_wakes",
	[TS_C_RING_SHRINKS] = "ring_shrinks",
	[TS_C_RELAY_ACTIVE] = "relay_active",
	[TS_C_RELAY_TOTAL] = "relay_total",
	[TS_C_RELAY_BYTES] = "relay_bytes",
	[TS_C_RELAY_DATAGRAMS] = "relay_datagrams",
	[TS_C_RELAY_ZC_BYTES] = "relay_zc_bytes",
	[TS_C_RELAY_END_UNSPLICE] = "relay_end_unsplice",
	[TS_C_RELAY_END_CLOSE] = "relay_end_close",
	[TS_C_RELAY_END_EOF] = "relay_end_eof",
	[TS_C_RELAY_END_ERROR] = "relay_end_error",
	[TS_C_RELAY_END_DRAIN] = "relay_end_drain",
	[TS_C_RELAY_END_MAX] = "relay_end_max",
	[TS_C_RELAY_END_IDLE] = "relay_end_idle",
};

struct ts_pernet {
	struct ts_net tn;
	struct ts_counters __percpu *pc;
};

static unsigned int ts_net_id __read_mostly;

struct ts_net *ts_net(const struct net *net)
{
	return &((struct ts_pernet *)net_generic(net, ts_net_id))->tn;
}

void ts_count(struct ts_net *tn, enum ts_counter c, s64 n)
{
	struct ts_pernet *pn = container_of(tn, struct ts_pernet, tn);

	/* Per CPU: the data path counts on both CPUs of a pair. */
	this_cpu_add(pn->pc->v[c], n);
}

void ts_net_add(struct ts_chan *ch)
{
	spin_lock_bh(&ch->tn->list_lock);
	list_add_tail(&ch->list_node, &ch->tn->chans);
	spin_unlock_bh(&ch->tn->list_lock);
}

/* Idempotent: detach and destroy may both come here. */
void ts_net_del(struct ts_chan *ch)
{
	spin_lock_bh(&ch->tn->list_lock);
	if (!list_empty(&ch->list_node))
		list_del_init(&ch->list_node);
	spin_unlock_bh(&ch->tn->list_lock);
}

static int ts_stats_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);
	struct ts_pernet *pn = net_generic(net, ts_net_id);
	int c, cpu;

	for (c = 0; c < TS_C_MAX; c++) {
		u64 sum = 0;

		for_each_possible_cpu(cpu)
			sum += per_cpu_ptr(pn->pc, cpu)->v[c];
		seq_printf(seq, "%s %lld\n", ts_counter_names[c], (s64)sum);
	}
	if (net_eq(net, &init_net)) {
		seq_printf(seq, "global_chan_live %ld\n", atomic_long_read(&ts_chan_live));
		seq_printf(seq, "global_ring_live %ld\n", atomic_long_read(&ts_ring_live));
		seq_printf(seq, "global_ring_bytes %ld\n", atomic_long_read(&ts_ring_bytes));
		seq_printf(seq, "global_relay_live %ld\n", atomic_long_read(&ts_relay_live));
	}
	return 0;
}

static void ts_show_ep(struct seq_file *seq, const struct ts_ep *ep, u32 family)
{
	if (family == AF_INET)
		seq_printf(seq, " %pI4:%u", &ep->addr[0], ep->port);
	else
		seq_printf(seq, " [%pI6c]:%u", ep->addr, ep->port);
}

static const char *ts_state_name(const struct ts_chan *ch)
{
	if (READ_ONCE(ch->retired) || READ_ONCE(ch->in.reader_gone))
		return "closed";
	return ch->status == TS_PAIRED ? "paired" :
	       ch->status == TS_PARKED ? "parked" : "alone";
}

static int ts_conns_show(struct seq_file *seq, void *v)
{
	struct ts_net *tn = ts_net(seq_file_single_net(seq));
	struct ts_chan *ch;

	seq_puts(seq, "state local remote inode ring_tx ring_rx rx_fill rx_size\n");
	/* The list lock keeps every listed channel's socket alive. */
	spin_lock_bh(&tn->list_lock);
	list_for_each_entry(ch, &tn->chans, list_node) {
		/* Pairs with the store-release of the link in ts_link(). */
		struct ts_chan *peer = smp_load_acquire(&ch->peer);
		struct socket *sock = READ_ONCE(ch->sk->sk_socket);

		seq_printf(seq, "%s", ts_state_name(ch));
		ts_show_ep(seq, &ch->local, ch->key.family);
		ts_show_ep(seq, &ch->remote, ch->key.family);
		seq_printf(seq, " %llu %llu %llu %lu %u\n",
			   sock ? (u64)SOCK_INODE(sock)->i_ino : 0ULL,
			   peer ? READ_ONCE(peer->in.bytes_in) : 0ULL,
			   READ_ONCE(ch->in.bytes_out),
			   READ_ONCE(ch->in.head) - READ_ONCE(ch->in.tail),
			   ts_ring_size(&ch->in));
	}
	spin_unlock_bh(&tn->list_lock);
	return 0;
}

static int __net_init ts_net_init(struct net *net)
{
	struct ts_pernet *pn = net_generic(net, ts_net_id);

	pn->pc = alloc_percpu(struct ts_counters);
	if (!pn->pc)
		return -ENOMEM;
	spin_lock_init(&pn->tn.list_lock);
	INIT_LIST_HEAD(&pn->tn.chans);
	if (!proc_create_net_single("tcp_splice", 0444, net->proc_net,
				    ts_stats_show, NULL) ||
	    !proc_create_net_single("tcp_splice_conns", 0444, net->proc_net,
				    ts_conns_show, NULL)) {
		remove_proc_entry("tcp_splice", net->proc_net);
		free_percpu(pn->pc);
		return -ENOMEM;
	}
	return 0;
}

static void __net_exit ts_net_exit(struct net *net)
{
	struct ts_pernet *pn = net_generic(net, ts_net_id);

	remove_proc_entry("tcp_splice_conns", net->proc_net);
	remove_proc_entry("tcp_splice", net->proc_net);
	/* Every socket of the namespace is gone, and with it every channel. */
	WARN_ON_ONCE(!list_empty(&pn->tn.chans));
	free_percpu(pn->pc);
}

static struct pernet_operations ts_net_ops = {
	.init = ts_net_init,
	.exit = ts_net_exit,
	.id = &ts_net_id,
	.size = sizeof(struct ts_pernet),
};

int ts_stats_init(void)
{
	return register_pernet_subsys(&ts_net_ops);
}

void ts_stats_exit(void)
{
	unregister_pernet_subsys(&ts_net_ops);
}
