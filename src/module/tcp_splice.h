/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-splice: internal interfaces of the module.
 *
 * Data flows one way: kfunc (kfunc.c) -> pairing (pair.c) -> the proto
 * overrides of the data path (proto.c) -> the ring (ring.c); counters and
 * listings live in stats.c.
 */
#ifndef TCP_SPLICE_H
#define TCP_SPLICE_H

#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <net/sock.h>

/*
 * One buffer generation of a ring; rings grow on demand (ring.c).  The data is
 * a separate allocation of exactly @size bytes: with the header in front, a
 * power-of-two ring would take the next power of two.
 */
struct ts_buf {
	struct rcu_head rcu;
	u32 size;		/* power of two */
	u8 *data;
};

enum ts_dir_state {
	TS_STARTUP,		/* the peer still sends over TCP */
	TS_RING,		/* the peer sends through the ring, beyond seq h */
	TS_NEVER,		/* the peer will never use the ring */
	TS_DONE,		/* the ring is closed: TCP again from seq h on */
};

/* The peer has handed off: ring bytes come after the TCP bytes below h. */
static inline bool ts_started(int state)
{
	return state == TS_RING || state == TS_DONE;
}

/*
 * The inbound direction of a socket (peer -> owner).  The peer's sender is the
 * only producer, the owner's receiver the only consumer; both are serialized
 * by their socket's tx_lock / rx_lock.
 */
struct ts_inbound {
	/* Written by the producer only (and a shrink, holding its lock). */
	unsigned long head ____cacheline_aligned_in_smp;
	unsigned long tail_seen;	/* producer's cached copy of tail */
	u64 bytes_in;
	/* Written by the consumer only (and a shrink, holding its lock). */
	unsigned long tail ____cacheline_aligned_in_smp;
	u64 bytes_out;
	pid_t reader;		/* thread of the last read: an early-wake hint */
	u32 peak;		/* most bytes found by a read since the last shrink look */
	/* Rarely written. */
	struct ts_buf __rcu *buf ____cacheline_aligned_in_smp;
	u32 h;			/* peer's write_seq at its handoff */
	u8 state;		/* enum ts_dir_state, published by the producer */
	bool writer_done;	/* no more ring bytes will come */
	bool reader_gone;	/* the owner will never read again */
	bool grow_failed;	/* the last grow found no memory; persist clears it */
	bool grow_blocked;	/* a grow met the consumer inside recv */
};

/* One endpoint of a connection in a pairing key; no padding anywhere. */
struct ts_ep {
	__be32 addr[4];		/* IPv4 in addr[0], v4-mapped IPv6 normalized */
	u32 port;		/* host order */
};

struct ts_key {
	struct ts_ep lo, hi;	/* sorted so that both ends build the same key */
	u64 net;		/* netns cookie for loopback, 0 for routable */
	u32 family;
	u32 zero;
};

enum ts_status {
	TS_ALONE,		/* installed, not in the registry, no peer */
	TS_PARKED,		/* in the registry, waiting for its peer */
	TS_PAIRED,		/* linked with its peer */
};

struct ts_net;

/*
 * A socket's channel.  It embeds the socket's private copy of its struct
 * proto, so the data path finds it from sk->sk_prot without any lookup.  It
 * lives from the kfunc until the socket is destroyed and the peer has dropped
 * its link (refcount), and is freed after an RCU grace period.
 */
struct ts_chan {
	struct proto proto;
	const struct proto *base;
	struct sock *sk;
	struct ts_chan *peer;	/* set once at pairing, store-release */
	struct ts_net *tn;
	refcount_t ref;		/* the owner socket, plus the peer's link */
	struct mutex tx_lock;	/* one producer into the peer's ring */
	struct mutex rx_lock;	/* one consumer of our ring */
	u8 status;		/* enum ts_status, under the registry lock */
	bool rx_ready;		/* our receiver reads through the module */
	bool retired;		/* disconnected or detached: plain TCP only */
	bool pair_ended;	/* counters: see ts_pair_ended() */
	bool stopped;		/* ts_stop() ran */
	bool rx_waiting;	/* a receiver sleeps in ts_wait_data(): a hint */
	u8 persist_backoff;	/* next persist delay: TS_PERSIST_MIN << this */
	struct delayed_work persist;	/* producer: a full ring that did not grow */
	struct delayed_work shrink;	/* consumer: a grown ring left empty */
	struct hlist_node park_node;
	struct list_head list_node;	/* per-netns listing */
	struct ts_key key;
	struct ts_ep local, remote;
	u32 snd_first, rcv_first;	/* first data sequence each way */
	u32 hash;
	struct ts_inbound in;
	struct rcu_head rcu;
};

/* A direction's state; h is valid once it reads TS_RING. */
static inline int ts_in_state(const struct ts_inbound *in)
{
	/* Pairs with the store-release of the state in ts_handoff(). */
	return smp_load_acquire(&in->state);
}

static inline struct ts_chan *ts_chan_of(const struct sock *sk)
{
	return container_of(READ_ONCE(sk->sk_prot), struct ts_chan, proto);
}

/* Counters, per network namespace (stats.c). */
enum ts_counter {
	TS_C_PAIRS_ACTIVE,
	TS_C_PAIRS_TOTAL,
	TS_C_PARKED,
	TS_C_RING_BYTES_TX,
	TS_C_RING_BYTES_RX,
	TS_C_STARTUP_BYTES,
	TS_C_HANDOFFS,
	TS_C_REFUSED_STATE,
	TS_C_REFUSED_REPAIR,
	TS_C_REFUSED_MPTCP,
	TS_C_REFUSED_ULP,
	TS_C_REFUSED_URGENT,
	TS_C_REFUSED_ZEROCOPY,
	TS_C_REFUSED_KERNEL,
	TS_C_REFUSED_USER_DATA,
	TS_C_REFUSED_ALREADY,
	TS_C_REFUSED_NOMEM,
	TS_C_REFUSED_FAMILY,
	TS_C_TX_NEVER_OOB,
	TS_C_TX_NEVER_ZEROCOPY,
	TS_C_TX_NEVER_BUSY,
	TS_C_RING_CAP_HITS,
	TS_C_RING_ALLOC_FAIL,
	TS_C_RING_GROWS,
	TS_C_UNPAIRED_CLOSE,
	TS_C_ULP_REFUSED,
	TS_C_ISN_MISMATCH,
	TS_C_RING_CLOSED_PEER_GONE,
	TS_C_REFUSED_FILTER,
	TS_C_RING_CLOSED_FILTER,
	TS_C_EARLY_WAKES,
	TS_C_RING_PERSIST_WAKES,
	TS_C_RING_SHRINKS,
	TS_C_RELAY_ACTIVE,
	TS_C_RELAY_TOTAL,
	TS_C_RELAY_BYTES,
	TS_C_RELAY_DATAGRAMS,
	TS_C_RELAY_ZC_BYTES,
	TS_C_RELAY_END_UNSPLICE,
	TS_C_RELAY_END_CLOSE,
	TS_C_RELAY_END_EOF,
	TS_C_RELAY_END_ERROR,
	TS_C_RELAY_END_DRAIN,
	TS_C_RELAY_END_MAX,
	TS_C_RELAY_END_IDLE,
	TS_C_MAX
};

struct ts_net {
	u64 __percpu *c;
	spinlock_t list_lock;	/* BH: channels are added in softirq */
	struct list_head chans;
};

struct ts_net *ts_net(const struct net *net);
void ts_count(struct ts_net *tn, enum ts_counter c, s64 n);
void ts_net_add(struct ts_chan *ch);
void ts_net_del(struct ts_chan *ch);
int ts_stats_init(void);
void ts_stats_exit(void);

/* Global accounting (checked at unload by the tests). */
extern atomic_long_t ts_chan_live;
extern atomic_long_t ts_ring_live;
extern atomic_long_t ts_ring_bytes;
extern atomic_long_t ts_relay_live;

/* Module parameters (main.c). */
extern unsigned int ts_ring_max_kb;
extern unsigned long ts_ring_mem_max_kb;
extern unsigned int ts_busy_poll_us;
extern bool ts_early_wake;
extern bool ts_early_wake_poll;
extern bool ts_relay_zerocopy;

/* The module's own workqueue (main.c): exit waits for its work items. */
extern struct workqueue_struct *ts_wq;

/* The kfunc (main.c), global for BTF. */
struct bpf_sock_ops;
int bpf_tcp_splice_established(struct bpf_sock_ops *ctx);

/* Pairing (pair.c). */
int ts_establish(struct sock *sk, bool active);
void ts_unpark(struct ts_chan *ch);
bool ts_try_detach(struct ts_chan *ch);
void ts_pair_ended(struct ts_chan *ch, struct ts_chan *peer);
void ts_chan_put(struct ts_chan *ch);
int ts_pair_init(void);
void ts_pair_exit(void);

/* Ring (ring.c). */
unsigned long ts_ring_used(const struct ts_inbound *in);
bool ts_ring_has_space(const struct ts_inbound *in, u32 div);
u32 ts_ring_size(const struct ts_inbound *in);
int ts_ring_alloc(struct ts_chan *dst, size_t hint);
bool ts_ring_grow(struct ts_chan *dst);
bool ts_ring_may_grow(const struct ts_inbound *in);
bool ts_ring_writable(const struct ts_inbound *in);
bool ts_ring_below_limit(const struct ts_inbound *in);
bool ts_ring_shrinkable(const struct ts_inbound *in);
enum ts_shrink {
	TS_SHRINK_BUSY,		/* not empty: the next read that empties it asks */
	TS_SHRINK_AGAIN,	/* an end was in a call, or the ring held more lately */
	TS_SHRINK_DONE,
};

enum ts_shrink ts_ring_shrink(struct ts_chan *dst, struct ts_chan *src);
ssize_t ts_ring_write(struct ts_inbound *in, struct iov_iter *from, size_t len);
ssize_t ts_ring_read(struct ts_inbound *in, struct iov_iter *to, size_t len,
		     int flags, size_t skip);
void ts_ring_free(struct ts_inbound *in);

/* Data path (proto.c). */
bool ts_is_ours(const struct sock *sk);
void ts_ops_install(struct socket *sock);
void ts_proto_init(struct ts_chan *ch);
void ts_persist_work(struct work_struct *work);
void ts_shrink_work(struct work_struct *work);
void ts_proto_exit(void);

/* Relay splicing of two sockets, /dev/tcp-splice (relay.c). */
int ts_relay_init(void);
void ts_relay_exit(void);

#endif
