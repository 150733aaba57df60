// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: pairing the two ends of a local connection, and the lifetime of
 * a channel.
 *
 * The registry holds only *parked* channels (waiting for their peer).  A match
 * needs the same direction-independent key (addresses and ports; the netns for
 * loopback), the mirrored tuple, and the same handshake: one end's first send
 * sequence must be the other's first receive sequence, both ways, so two
 * unrelated connections with equal tuples in different namespaces never pair.
 */
#include <linux/jhash.h>
#include <linux/random.h>
#include <net/inet_connection_sock.h>
#include <net/ipv6.h>
#include <net/tcp.h>

#include "tcp_splice.h"

#define TS_HASH_BITS	12

struct ts_bucket {
	spinlock_t lock;	/* BH: taken from the softirq kfunc and teardown */
	struct hlist_head head;
};

static struct ts_bucket ts_table[1 << TS_HASH_BITS];
static u32 ts_seed;
static struct kmem_cache *ts_chan_cache;
atomic_long_t ts_chan_live;

static bool ts_ep_loopback(const struct ts_ep *ep, u32 family)
{
	if (family == AF_INET)
		return ipv4_is_loopback(ep->addr[0]);
	return ipv6_addr_loopback((const struct in6_addr *)ep->addr);
}

/* Endpoints of @sk, IPv4-mapped IPv6 normalized to IPv4. */
static int ts_fill_eps(struct sock *sk, struct ts_chan *ch)
{
	u32 family = AF_INET;

	if (sk->sk_family == AF_INET) {
		ch->local.addr[0] = sk->sk_rcv_saddr;
		ch->remote.addr[0] = sk->sk_daddr;
#if IS_ENABLED(CONFIG_IPV6)
	} else if (sk->sk_family == AF_INET6) {
		const struct in6_addr *l = &sk->sk_v6_rcv_saddr;
		const struct in6_addr *r = &sk->sk_v6_daddr;

		if (ipv6_addr_v4mapped(l) && ipv6_addr_v4mapped(r)) {
			ch->local.addr[0] = l->s6_addr32[3];
			ch->remote.addr[0] = r->s6_addr32[3];
		} else {
			memcpy(ch->local.addr, l, sizeof(*l));
			memcpy(ch->remote.addr, r, sizeof(*r));
			family = AF_INET6;
		}
#endif
	} else {
		return -EAFNOSUPPORT;
	}
	ch->local.port = sk->sk_num;
	ch->remote.port = ntohs(sk->sk_dport);
	ch->key.family = family;
	if (memcmp(&ch->local, &ch->remote, sizeof(ch->local)) < 0) {
		ch->key.lo = ch->local;
		ch->key.hi = ch->remote;
	} else {
		ch->key.lo = ch->remote;
		ch->key.hi = ch->local;
	}
	/* Every namespace has its own loopback: key it per namespace. */
	if (ts_ep_loopback(&ch->local, family) ||
	    ts_ep_loopback(&ch->remote, family))
		ch->key.net = sock_net(sk)->net_cookie;
	ch->hash = jhash2((const u32 *)&ch->key, sizeof(ch->key) / sizeof(u32),
			  ts_seed);
	return 0;
}

/*
 * First data sequence number each way, taken at the ESTABLISHED callback.
 * bytes_acked of the active end includes its SYN; the passive child starts
 * with snd_una past its SYN-ACK.  TFO data is in bytes_acked/bytes_received.
 */
static void ts_fill_isn(struct sock *sk, struct ts_chan *ch, bool active)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	ch->snd_first = tp->snd_una - (u32)tp->bytes_acked + (active ? 1 : 0);
	ch->rcv_first = tp->rcv_nxt - (u32)tp->bytes_received;
}

static struct ts_bucket *ts_bucket(u32 hash)
{
	return &ts_table[hash >> (32 - TS_HASH_BITS)];
}

static bool ts_same_connection(const struct ts_chan *a, const struct ts_chan *b)
{
	return !memcmp(&a->key, &b->key, sizeof(a->key)) &&
	       !memcmp(&a->local, &b->remote, sizeof(a->local)) &&
	       !memcmp(&a->remote, &b->local, sizeof(a->remote));
}

static void ts_link(struct ts_chan *a, struct ts_chan *b)
{
	/* Each end holds the other's channel and socket until it is destroyed. */
	refcount_inc(&a->ref);
	sock_hold(a->sk);
	refcount_inc(&b->ref);
	sock_hold(b->sk);
	a->status = TS_PAIRED;
	b->status = TS_PAIRED;
	/* Publish the peer after its fields: pairs with smp_load_acquire(peer). */
	smp_store_release(&a->peer, b);
	/* Likewise for the other end. */
	smp_store_release(&b->peer, a);
}

static void ts_pair(struct ts_chan *ch)
{
	struct ts_bucket *b = ts_bucket(ch->hash);
	struct ts_chan *c, *found = NULL;

	spin_lock_bh(&b->lock);
	hlist_for_each_entry(c, &b->head, park_node) {
		if (c->hash != ch->hash || !ts_same_connection(c, ch))
			continue;
		if (c->snd_first != ch->rcv_first ||
		    c->rcv_first != ch->snd_first) {
			ts_count(ch->tn, TS_C_ISN_MISMATCH, 1);
			continue;
		}
		found = c;
		break;
	}
	if (found) {
		hlist_del_init(&found->park_node);
		ts_link(found, ch);
	} else {
		hlist_add_head(&ch->park_node, &b->head);
		ch->status = TS_PARKED;
	}
	spin_unlock_bh(&b->lock);

	if (!found) {
		ts_count(ch->tn, TS_C_PARKED, 1);
		return;
	}
	ts_count(found->tn, TS_C_PARKED, -1);
	ts_count(ch->tn, TS_C_PAIRS_ACTIVE, 1);
	ts_count(ch->tn, TS_C_PAIRS_TOTAL, 1);
	if (found->tn != ch->tn) {
		ts_count(found->tn, TS_C_PAIRS_ACTIVE, 1);
		ts_count(found->tn, TS_C_PAIRS_TOTAL, 1);
	}
}

/*
 * The first end destroyed ends the pair for the counters; the flag lives in
 * one agreed channel of the two so that exactly one end wins the exchange.
 */
void ts_pair_ended(struct ts_chan *ch, struct ts_chan *peer)
{
	struct ts_chan *owner = ch < peer ? ch : peer;

	if (xchg(&owner->pair_ended, true))
		return;
	ts_count(ch->tn, TS_C_PAIRS_ACTIVE, -1);
	if (peer->tn != ch->tn)
		ts_count(peer->tn, TS_C_PAIRS_ACTIVE, -1);
}

/* Out of the registry; a parked end that leaves never pairs.  Idempotent. */
void ts_unpark(struct ts_chan *ch)
{
	struct ts_bucket *b = ts_bucket(ch->hash);
	bool was_parked;

	spin_lock_bh(&b->lock);
	was_parked = ch->status == TS_PARKED;
	if (was_parked) {
		hlist_del_init(&ch->park_node);
		ch->status = TS_ALONE;
	}
	spin_unlock_bh(&b->lock);
	if (was_parked) {
		ts_count(ch->tn, TS_C_PARKED, -1);
		ts_count(ch->tn, TS_C_UNPAIRED_CLOSE, 1);
	}
}

/*
 * A socket that was never paired gives its channel up (before a ULP or repair
 * mode takes the socket over): plain TCP from here on.  Fails once paired.
 */
bool ts_try_detach(struct ts_chan *ch)
{
	struct ts_bucket *b = ts_bucket(ch->hash);
	struct sock *sk = ch->sk;
	bool ok;

	spin_lock_bh(&b->lock);
	ok = ch->status != TS_PAIRED;
	if (ch->status == TS_PARKED) {
		hlist_del_init(&ch->park_node);
		ts_count(ch->tn, TS_C_PARKED, -1);
	}
	if (ok)
		ch->status = TS_ALONE;
	spin_unlock_bh(&b->lock);
	if (!ok)
		return false;
	WRITE_ONCE(ch->retired, true);
	ts_net_del(ch);
	sock_replace_proto(sk, (struct proto *)ch->base);
	ts_chan_put(ch);
	return true;
}

static void ts_chan_free_rcu(struct rcu_head *head)
{
	struct ts_chan *ch = container_of(head, struct ts_chan, rcu);

	ts_ring_free(&ch->in);
	atomic_long_dec(&ts_chan_live);
	kmem_cache_free(ts_chan_cache, ch);
	/* Last statement: exit's rcu_barrier() waits for this callback. */
	module_put(THIS_MODULE);
}

void ts_chan_put(struct ts_chan *ch)
{
	/* RCU: lockless readers of sk->sk_prot may still see the embedded proto. */
	if (refcount_dec_and_test(&ch->ref))
		call_rcu(&ch->rcu, ts_chan_free_rcu);
}

static int ts_refuse(struct ts_net *tn, enum ts_counter c, int err)
{
	ts_count(tn, c, 1);
	return err;
}

/*
 * The kfunc's work, in softirq (or in release_sock's backlog processing) with
 * the socket locked: no sleeping, atomic allocations only.
 */
int ts_establish(struct sock *sk, bool active)
{
	struct ts_net *tn = ts_net(sock_net(sk));
	const struct tcp_sock *tp = tcp_sk(sk);
	struct ts_chan *ch;

	if (ts_is_ours(sk))
		return ts_refuse(tn, TS_C_REFUSED_ALREADY, -EALREADY);
	if (sk->sk_state != TCP_ESTABLISHED && sk->sk_state != TCP_SYN_RECV)
		return ts_refuse(tn, TS_C_REFUSED_STATE, -EINVAL);
	if (tp->repair)
		return ts_refuse(tn, TS_C_REFUSED_REPAIR, -EPERM);
	if (sk_is_mptcp(sk))
		return ts_refuse(tn, TS_C_REFUSED_MPTCP, -EPROTONOSUPPORT);
	if (inet_csk(sk)->icsk_ulp_ops)
		return ts_refuse(tn, TS_C_REFUSED_ULP, -EBUSY);
	if (tp->urg_data)
		return ts_refuse(tn, TS_C_REFUSED_URGENT, -EBUSY);
	if (sock_flag(sk, SOCK_ZEROCOPY))
		return ts_refuse(tn, TS_C_REFUSED_ZEROCOPY, -EOPNOTSUPP);
	if (sk->sk_kern_sock)
		return ts_refuse(tn, TS_C_REFUSED_KERNEL, -EPERM);
	if (READ_ONCE(sk->sk_user_data))
		return ts_refuse(tn, TS_C_REFUSED_USER_DATA, -EBUSY);
	/* A socket filter (SO_ATTACH_FILTER) would never see ring bytes. */
	if (rcu_access_pointer(sk->sk_filter))
		return ts_refuse(tn, TS_C_REFUSED_FILTER, -EPERM);
	if (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)
		return ts_refuse(tn, TS_C_REFUSED_FAMILY, -EAFNOSUPPORT);

	/* Held by the channel, dropped by its final free. */
	if (!try_module_get(THIS_MODULE))
		return -ENODEV;
	ch = kmem_cache_zalloc(ts_chan_cache, GFP_ATOMIC | __GFP_NOWARN);
	if (!ch) {
		module_put(THIS_MODULE);
		return ts_refuse(tn, TS_C_REFUSED_NOMEM, -ENOMEM);
	}
	ch->sk = sk;
	ch->tn = tn;
	ch->base = READ_ONCE(sk->sk_prot);
	refcount_set(&ch->ref, 1);
	mutex_init(&ch->tx_lock);
	mutex_init(&ch->rx_lock);
	INIT_HLIST_NODE(&ch->park_node);
	INIT_DELAYED_WORK(&ch->persist, ts_persist_work);
	INIT_DELAYED_WORK(&ch->shrink, ts_shrink_work);
	if (ts_fill_eps(sk, ch)) {
		kmem_cache_free(ts_chan_cache, ch);
		module_put(THIS_MODULE);
		return ts_refuse(tn, TS_C_REFUSED_FAMILY, -EAFNOSUPPORT);
	}
	ts_fill_isn(sk, ch, active);
	ts_proto_init(ch);
	atomic_long_inc(&ts_chan_live);

	/*
	 * Install before registering: nothing can fail after this point, and
	 * the peer cannot use our ring before our receiver has entered the
	 * module (rx_ready), so the order of the two is otherwise free.
	 */
	sock_replace_proto(sk, &ch->proto);
	ts_net_add(ch);
	ts_pair(ch);
	return 0;
}

int ts_pair_init(void)
{
	int i;

	ts_chan_cache = kmem_cache_create("tcp_splice_chan", sizeof(struct ts_chan),
					  0, SLAB_HWCACHE_ALIGN, NULL);
	if (!ts_chan_cache)
		return -ENOMEM;
	for (i = 0; i < ARRAY_SIZE(ts_table); i++) {
		spin_lock_init(&ts_table[i].lock);
		INIT_HLIST_HEAD(&ts_table[i].head);
	}
	ts_seed = get_random_u32();
	return 0;
}

void ts_pair_exit(void)
{
	/* No channel is left (each holds a module reference); wait for frees. */
	rcu_barrier();
	kmem_cache_destroy(ts_chan_cache);
}
