// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: relay splicing of two sockets (OpenBSD's SO_SPLICE semantics)
 * through the ioctls of /dev/tcp-splice.
 *
 * A splice moves what a connected source socket receives to a connected
 * drain socket, one way, in a work item of the module: it peeks at the
 * source, sends what it found on the drain without blocking and only then
 * consumes what the drain took.  Bytes the drain did not take stay in the
 * source, so back-pressure is the source's own receive buffer, and ending a
 * splice at any moment loses nothing.  A TCP chunk is peeked as references
 * to the pages of the source's skbs and sent with MSG_SPLICE_PAGES (the
 * drain takes references of its own), else copied through a buffer.
 *
 * A socket that takes part in a splice gets a private copy of its struct
 * proto (close ends its splices; the application's reads of a spliced
 * source wait), its callbacks wrapped (they kick the work items) and, for
 * poll, a per-family copy of its proto_ops.  It keeps them until it is
 * closed, so the bytes moved by its last splice stay readable.
 *
 * A splice ends in two steps: detaching (under tr_lock: unlinked from its
 * sockets, so that nothing new reaches it) and destroying (outside the lock:
 * waiting for its work items, then freeing it).  Whoever detaches destroys;
 * a socket's close waits until every splice it took part in is destroyed.
 * The side effects of an end (the drain shut down on EOF, the error left on
 * the source) are done by the work item that found it, before it asks for
 * the end, while both sockets are certainly open.
 */
#include <linux/file.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/splice.h>
#include <linux/uaccess.h>
#include <net/inet_connection_sock.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "tcp_splice.h"
#include "uapi/tcp_splice_relay.h"

/* One chunk: the largest UDP datagram fits. */
#define TR_BUF		(64 * 1024)
/* Chunks per run of a splice's work item before it yields. */
#define TR_BUDGET	16
/* Retry delay when no buffer could be allocated or the drain had no memory. */
#define TR_RETRY	msecs_to_jiffies(10)
/* Retries for a drain without memory, before the splice ends (EPIPE). */
#define TR_NOBUFS_MAX	100

enum tr_end {
	TR_LIVE,
	TR_END_UNSPLICE,
	TR_END_CLOSE,
	TR_END_EOF,
	TR_END_ERROR,
	TR_END_DRAIN,
	TR_END_MAX,
	TR_END_IDLE,
};

static const enum ts_counter tr_end_counter[] = {
	[TR_END_UNSPLICE] = TS_C_RELAY_END_UNSPLICE,
	[TR_END_CLOSE] = TS_C_RELAY_END_CLOSE,
	[TR_END_EOF] = TS_C_RELAY_END_EOF,
	[TR_END_ERROR] = TS_C_RELAY_END_ERROR,
	[TR_END_DRAIN] = TS_C_RELAY_END_DRAIN,
	[TR_END_MAX] = TS_C_RELAY_END_MAX,
	[TR_END_IDLE] = TS_C_RELAY_END_IDLE,
};

struct tr_relay;

/* A socket that takes part in splices, from its first splice to its close. */
struct tr_sock {
	struct proto proto;
	const struct proto *base;
	const struct proto_ops *base_ops;
	struct sock *sk;
	/* The socket's callbacks before ours. */
	void (*data_ready)(struct sock *sk);
	void (*write_space)(struct sock *sk);
	void (*state_change)(struct sock *sk);
	void (*error_report)(struct sock *sk);
	/* Under tr_lock and the socket's sk_callback_lock to change. */
	struct tr_relay *as_src;
	struct tr_relay *as_drain;
	int nrelays;		/* splices not destroyed yet, under tr_lock */
	u64 moved;		/* by the current or last splice from here */
	struct rcu_head rcu;
};

struct tr_relay {
	struct tr_sock *src, *drain;
	struct ts_net *tn;	/* the source's namespace */
	u64 max;
	unsigned long idle;	/* jiffies, 0: none */
	unsigned long last_move;	/* jiffies */
	bool udp;
	bool want_space;	/* the last send found the drain full */
	bool linked;		/* not detached yet, under tr_lock */
	int end;		/* enum tr_end: the first reason wins (cmpxchg) */
	int nobufs;		/* sends in a row the drain had no buffer for */
	struct delayed_work move;
	struct delayed_work idle_work;
	struct work_struct end_work;
};

/*
 * Serializes linking and detaching splices, which change two sockets at
 * once, and taking sockets in; held only for that (no waiting inside), never
 * by the work items.
 */
static DEFINE_MUTEX(tr_lock);
/* A close waits here for the splices others detached to be destroyed. */
static DECLARE_WAIT_QUEUE_HEAD(tr_destroyed);
/* The splices' work items: their own, so the ring path's never wait behind. */
static struct workqueue_struct *tr_wq;

atomic_long_t ts_relay_live;

/* ---- chunk buffers: a small pool, so an idle splice holds none ---------- */

#define TR_POOL_MAX	16
static void *tr_pool[TR_POOL_MAX];
static int tr_pool_n;
static DEFINE_SPINLOCK(tr_pool_lock);	/* process context only */

static void *tr_buf_get(void)
{
	void *buf = NULL;

	spin_lock(&tr_pool_lock);
	if (tr_pool_n)
		buf = tr_pool[--tr_pool_n];
	spin_unlock(&tr_pool_lock);
	return buf ?: kvmalloc(TR_BUF, GFP_KERNEL | __GFP_NOWARN);
}

static void tr_buf_put(void *buf)
{
	spin_lock(&tr_pool_lock);
	if (tr_pool_n < TR_POOL_MAX) {
		tr_pool[tr_pool_n++] = buf;
		buf = NULL;
	}
	spin_unlock(&tr_pool_lock);
	kvfree(buf);
}

/* ---- which sockets are ours ---------------------------------------------- */

static void tr_close(struct sock *sk, long timeout);

static bool tr_is_ours(const struct sock *sk)
{
	return READ_ONCE(sk->sk_prot)->close == tr_close;
}

/* Only for a socket known to be ours (its file is held, or in its proto). */
static struct tr_sock *tr_of(const struct sock *sk)
{
	return container_of(READ_ONCE(sk->sk_prot), struct tr_sock, proto);
}

static bool tr_spliced(const struct sock *sk)
{
	return tr_is_ours(sk) && READ_ONCE(tr_of(sk)->as_src);
}

/* ---- callbacks: kick the work items of the splices of the socket --------- */

static void tr_kick(struct tr_relay *r)
{
	/* A no-op once the splice's end disabled it, or while it is pending. */
	queue_delayed_work(tr_wq, &r->move, 0);
}

/*
 * The callback lock keeps the splices linked while they are kicked (an end
 * unlinks under the write lock).  Returns the tr_sock, NULL if the callbacks
 * were given back meanwhile; the caller unlocks.
 */
static struct tr_sock *tr_cb_lock(struct sock *sk)
	__acquires(&sk->sk_callback_lock)
{
	read_lock_bh(&sk->sk_callback_lock);
	return __locked_read_sk_user_data_with_flags(sk, 0);
}

static void tr_cb_unlock(struct sock *sk)
	__releases(&sk->sk_callback_lock)
{
	read_unlock_bh(&sk->sk_callback_lock);
}

static void tr_data_ready(struct sock *sk)
{
	struct tr_sock *ts = tr_cb_lock(sk);
	void (*orig)(struct sock *sk) = ts ? ts->data_ready : sk->sk_data_ready;

	if (ts && ts->as_src)
		tr_kick(ts->as_src);
	tr_cb_unlock(sk);
	orig(sk);
}

static void tr_write_space(struct sock *sk)
{
	struct tr_sock *ts = tr_cb_lock(sk);
	void (*orig)(struct sock *sk) = ts ? ts->write_space : sk->sk_write_space;

	/* Pairs with the barrier after the flag is set in tr_move_chunk(). */
	if (ts && ts->as_drain && READ_ONCE(ts->as_drain->want_space))
		tr_kick(ts->as_drain);
	tr_cb_unlock(sk);
	orig(sk);
}

/* A state change or an error may end either splice: both look. */
static void tr_kick_both(struct tr_sock *ts)
{
	if (ts && ts->as_src)
		tr_kick(ts->as_src);
	if (ts && ts->as_drain)
		tr_kick(ts->as_drain);
}

static void tr_state_change(struct sock *sk)
{
	struct tr_sock *ts = tr_cb_lock(sk);
	void (*orig)(struct sock *sk) = ts ? ts->state_change : sk->sk_state_change;

	tr_kick_both(ts);
	tr_cb_unlock(sk);
	orig(sk);
}

static void tr_error_report(struct sock *sk)
{
	struct tr_sock *ts = tr_cb_lock(sk);
	void (*orig)(struct sock *sk) = ts ? ts->error_report : sk->sk_error_report;

	tr_kick_both(ts);
	tr_cb_unlock(sk);
	orig(sk);
}

/* ---- the application's view of a spliced source -------------------------- */

/* Reads wait while the socket is a source: the splice owns its data. */
static int tr_wait_unspliced(struct sock *sk, int flags)
{
	long timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);

	while (tr_spliced(sk)) {
		long left;

		if (!timeo)
			return -EAGAIN;
		left = wait_event_interruptible_timeout(*sk_sleep(sk),
							!tr_spliced(sk), timeo);
		if (left < 0)
			return sock_intr_errno(timeo);	/* restarts if no timeout */
		timeo = left;
	}
	return 0;
}

#ifdef TS_RECVMSG_ADDR_LEN
static int tr_recvmsg(struct sock *sk, struct msghdr *msg, size_t len,
		      int flags, int *addr_len)
#else
static int tr_recvmsg(struct sock *sk, struct msghdr *msg, size_t len,
		      int flags)
#endif
{
	struct tr_sock *ts = tr_of(sk);
	int err;

	if (!(flags & MSG_ERRQUEUE)) {
		err = tr_wait_unspliced(sk, flags);
		if (err)
			return err;
	}
#ifdef TS_RECVMSG_ADDR_LEN
	return ts->base->recvmsg(sk, msg, len, flags, addr_len);
#else
	return ts->base->recvmsg(sk, msg, len, flags);
#endif
}

/* ---- per-family proto_ops copies: poll and splice_read ------------------- */

struct tr_ops {
	const struct proto_ops *base;
	const struct proto_ops *ops;
};

/* Four families of socket, and the ring path's copies of the stream ones. */
static struct tr_ops tr_ops_tab[8];
static DEFINE_SPINLOCK(tr_ops_lock);	/* installs from any process */

static const struct proto_ops *tr_ops_base(const struct proto_ops *ops)
{
	int i;

	/* The table only grows, and an entry never changes once set. */
	for (i = 0; i < ARRAY_SIZE(tr_ops_tab); i++)
		if (READ_ONCE(tr_ops_tab[i].ops) == ops)
			return tr_ops_tab[i].base;
	return NULL;
}

/* Not readable while spliced: what arrives is the splice's (as OpenBSD). */
static __poll_t tr_poll(struct file *file, struct socket *sock,
			poll_table *wait)
{
	__poll_t mask = tr_ops_base(sock->ops)->poll(file, sock, wait);

	if (sock->sk && tr_spliced(sock->sk))
		mask &= ~(EPOLLIN | EPOLLRDNORM | EPOLLRDHUP);
	return mask;
}

static ssize_t tr_splice_read(struct socket *sock, loff_t *ppos,
			      struct pipe_inode_info *pipe, size_t len,
			      unsigned int flags)
{
	const struct proto_ops *base = tr_ops_base(sock->ops);

	if (sock->sk) {
		int err = tr_wait_unspliced(sock->sk,
					    (flags & SPLICE_F_NONBLOCK) ||
					    (sock->file->f_flags & O_NONBLOCK) ?
					    MSG_DONTWAIT : 0);
		if (err)
			return err;
	}
	return base->splice_read(sock, ppos, pipe, len, flags);
}

/* SO_PEEK_OFF and SO_RCVLOWAT would make the splice skip bytes or sleep. */
static int tr_set_peek_off(struct sock *sk, int val)
{
	if (tr_spliced(sk))
		return -EBUSY;
	return tr_ops_base(sk->sk_socket->ops)->set_peek_off(sk, val);
}

static int tr_set_rcvlowat(struct sock *sk, int val)
{
	if (tr_spliced(sk))
		return -EBUSY;
	return tr_ops_base(sk->sk_socket->ops)->set_rcvlowat(sk, val);
}

static const struct proto_ops *tr_ops_copy(const struct proto_ops *cur)
{
	/* Written here once, read-only after it is published. */
	struct proto_ops *copy = kmemdup(cur, sizeof(const struct proto_ops),
					 GFP_KERNEL);

	if (copy) {
		copy->poll = tr_poll;
		if (cur->splice_read)
			copy->splice_read = tr_splice_read;
		if (cur->set_peek_off)
			copy->set_peek_off = tr_set_peek_off;
		if (cur->set_rcvlowat)
			copy->set_rcvlowat = tr_set_rcvlowat;
	}
	return copy;
}

static const struct proto_ops *tr_ops_get(const struct proto_ops *cur)
{
	const struct proto_ops *fresh = tr_ops_copy(cur), *ops = NULL;
	int i;

	if (!fresh)
		return NULL;
	spin_lock(&tr_ops_lock);
	for (i = 0; i < ARRAY_SIZE(tr_ops_tab); i++) {
		if (tr_ops_tab[i].base == cur) {
			ops = tr_ops_tab[i].ops;
			break;
		}
		if (!tr_ops_tab[i].base) {
			tr_ops_tab[i].base = cur;
			WRITE_ONCE(tr_ops_tab[i].ops, fresh);
			ops = fresh;
			fresh = NULL;
			break;
		}
	}
	spin_unlock(&tr_ops_lock);
	kfree(fresh);
	return ops;
}

/* ---- the proto copy: what a taken socket may no longer do ----------------- */

/*
 * A ULP (kTLS) or repair mode builds on, or bypasses, sk_prot, and
 * IPV6_ADDRFORM replaces it: each would leave the copy behind.
 */
static int tr_setsockopt(struct sock *sk, int level, int optname,
			 sockptr_t optval, unsigned int optlen)
{
	if ((level == SOL_TCP && (optname == TCP_ULP || optname == TCP_REPAIR)) ||
	    (level == SOL_IPV6 && optname == IPV6_ADDRFORM))
		return -EBUSY;
	return tr_of(sk)->base->setsockopt(sk, level, optname, optval, optlen);
}

/* A zero-copy receive reads the source behind recvmsg. */
static int tr_getsockopt(struct sock *sk, int level, int optname,
			 char __user *optval, int __user *optlen)
{
	if (level == SOL_TCP && optname == TCP_ZEROCOPY_RECEIVE && tr_spliced(sk))
		return -EBUSY;
	return tr_of(sk)->base->getsockopt(sk, level, optname, optval, optlen);
}

/*
 * No bind, listen or autobind once taken (after a disconnect): children of a
 * listener would inherit the copy and the callbacks.
 */
static int tr_get_port(struct sock *sk, unsigned short snum)
{
	return -EADDRINUSE;
}

/* ---- taking a socket in and giving it back ------------------------------- */

static void tr_sock_free_rcu(struct rcu_head *head)
{
	kfree(container_of(head, struct tr_sock, rcu));
	/* Last statement: exit's rcu_barrier() waits for this callback. */
	module_put(THIS_MODULE);
}

/*
 * Under tr_lock and the socket lock (the checks and the install against
 * setsockopt); the caller holds the socket's file.
 */
static struct tr_sock *tr_sock_take(struct sock *sk)
{
	struct socket *sock = sk->sk_socket;
	const struct proto_ops *ops;
	struct tr_sock *ts;

	if (tr_is_ours(sk))
		return tr_of(sk);
	/* Another kernel user of the socket: sockmap, kTLS, the ring path. */
	if (ts_is_ours(sk) || READ_ONCE(sk->sk_user_data) ||
	    (sk->sk_protocol == IPPROTO_TCP && inet_csk(sk)->icsk_ulp_ops))
		return ERR_PTR(-EBUSY);
	ops = tr_ops_get(READ_ONCE(sock->ops));
	if (!ops)
		return ERR_PTR(-ENOMEM);
	/* Held until the socket's close lets its tr_sock go. */
	if (!try_module_get(THIS_MODULE))
		return ERR_PTR(-ENODEV);
	ts = kzalloc(sizeof(*ts), GFP_KERNEL_ACCOUNT);
	if (!ts) {
		module_put(THIS_MODULE);
		return ERR_PTR(-ENOMEM);
	}
	ts->sk = sk;
	ts->base = READ_ONCE(sk->sk_prot);
	ts->base_ops = READ_ONCE(sock->ops);
	ts->proto = *ts->base;
	ts->proto.close = tr_close;
	ts->proto.recvmsg = tr_recvmsg;
	ts->proto.setsockopt = tr_setsockopt;
	ts->proto.getsockopt = tr_getsockopt;
	ts->proto.get_port = tr_get_port;
	/* A sockmap would replace sk_prot behind our back: refuse insertion. */
	ts->proto.psock_update_sk_prot = NULL;

	/* The callback lock: callbacks see the tr_sock and ours together. */
	write_lock_bh(&sk->sk_callback_lock);
	ts->data_ready = sk->sk_data_ready;
	ts->write_space = sk->sk_write_space;
	ts->state_change = sk->sk_state_change;
	ts->error_report = sk->sk_error_report;
	__rcu_assign_sk_user_data_with_flags(sk, ts, SK_USER_DATA_NOCOPY);
	WRITE_ONCE(sk->sk_data_ready, tr_data_ready);
	WRITE_ONCE(sk->sk_write_space, tr_write_space);
	WRITE_ONCE(sk->sk_state_change, tr_state_change);
	WRITE_ONCE(sk->sk_error_report, tr_error_report);
	sock_replace_proto(sk, &ts->proto);
	write_unlock_bh(&sk->sk_callback_lock);
	WRITE_ONCE(sock->ops, ops);
	return ts;
}

/* At close, after its splices ended: the socket is plain again. */
static void tr_sock_give_back(struct tr_sock *ts)
{
	struct sock *sk = ts->sk;

	/* Callbacks running now finish with the tr_sock; later ones see none. */
	write_lock_bh(&sk->sk_callback_lock);
	WRITE_ONCE(sk->sk_data_ready, ts->data_ready);
	WRITE_ONCE(sk->sk_write_space, ts->write_space);
	WRITE_ONCE(sk->sk_state_change, ts->state_change);
	WRITE_ONCE(sk->sk_error_report, ts->error_report);
	rcu_assign_sk_user_data(sk, NULL);
	sock_replace_proto(sk, (struct proto *)ts->base);
	write_unlock_bh(&sk->sk_callback_lock);
	if (sk->sk_socket)
		WRITE_ONCE(sk->sk_socket->ops, ts->base_ops);
}

/* ---- moving data ---------------------------------------------------------- */

/* Through the source's own recvmsg: ours would wait for the splice to end. */
static int tr_recv(struct tr_relay *r, void *buf, size_t len, int flags,
		   int *msg_flags)
{
	struct sock *sk = r->src->sk;
	struct msghdr msg = {};
	struct kvec iov = { .iov_base = buf, .iov_len = len };
	int ret;
#ifdef TS_RECVMSG_ADDR_LEN
	int addr_len = 0;
#endif

	iov_iter_kvec(&msg.msg_iter, ITER_DEST, &iov, 1, len);
	flags |= MSG_DONTWAIT;
#ifdef TS_RECVMSG_ADDR_LEN
	ret = r->src->base->recvmsg(sk, &msg, len, flags, &addr_len);
#else
	ret = r->src->base->recvmsg(sk, &msg, len, flags);
#endif
	*msg_flags = msg.msg_flags;
	return ret;
}

/*
 * The pages of a TCP chunk, peeked without a copy: one reference each, held
 * from the peek until the drain's send (which takes its own) returned.
 */
#define TR_ZC_PAGES	(TR_BUF / PAGE_SIZE)

struct tr_zc {
	struct bio_vec bv[TR_ZC_PAGES];
	int n;
};

static void tr_zc_put(struct tr_zc *zc)
{
	while (zc->n)
		put_page(zc->bv[--zc->n].bv_page);
}

/*
 * A page a reference can be taken on and spliced: what get_page() and the
 * drain's send insist on, checked on the folio (slab and, on 7.x, large
 * kmalloc memory are refused there with a warning).
 */
static bool tr_page_ok(struct page *p)
{
	struct folio *folio = page_folio(p);

	if (folio_test_slab(folio) || folio_ref_count(folio) < 1)
		return false;
#ifdef TS_HAVE_LARGE_KMALLOC
	if (folio_test_large_kmalloc(folio))
		return false;
#endif
	return true;
}

/* Appends a piece of @p: onto the last vector if it continues it (no new reference). */
static bool tr_zc_add(struct tr_zc *zc, struct page *p, u32 len, u32 off)
{
	struct bio_vec *last = zc->n ? &zc->bv[zc->n - 1] : NULL;

	if (last && last->bv_page == p && last->bv_offset + last->bv_len == off) {
		last->bv_len += len;
		return true;
	}
	if (zc->n == TR_ZC_PAGES || !tr_page_ok(p))
		return false;
	get_page(p);
	bvec_set_page(&zc->bv[zc->n++], p, len, off);
	return true;
}

/*
 * Up to @want bytes at the head of a TCP source's receive queue, as page
 * references to its skbs' fragments; nothing is consumed.  Stops at what a
 * reference cannot carry (linear data, a frag_list, unreadable or slab
 * memory, urgent data); with nothing peeked the chunk is copied.  The
 * socket lock keeps the queue still while it walks (the softirq adds to
 * the backlog meanwhile); a read that takes bytes after it (one begun
 * before the splice) is found by the consume check.
 */
static size_t tr_peek_pages(struct sock *sk, size_t want, struct tr_zc *zc)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct sk_buff *skb;
	size_t len = 0;
	u32 seq;

	lock_sock(sk);
	seq = tp->copied_seq;
	if (tp->urg_data)
		goto out;
	skb_queue_walk(&sk->sk_receive_queue, skb) {
		const struct skb_shared_info *sh = skb_shinfo(skb);
		u32 off = seq - TCP_SKB_CB(skb)->seq;
		int i;

		if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_SYN)
			break;
		if (off >= skb->len) {
			if (TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN)
				break;
			continue;
		}
		if (off < skb_headlen(skb) || !skb_frags_readable(skb))
			break;
		off -= skb_headlen(skb);
		for (i = 0; i < sh->nr_frags && len < want; i++) {
			const skb_frag_t *f = &sh->frags[i];
			struct page *page = skb_frag_page(f);
			u32 fo, fl;

			if (off >= skb_frag_size(f)) {
				off -= skb_frag_size(f);
				continue;
			}
			if (!page)
				goto out;
			fo = skb_frag_off(f) + off;
			fl = min_t(size_t, skb_frag_size(f) - off, want - len);
			off = 0;
			while (fl) {
				/* A fragment is in one folio: its pages are contiguous. */
				struct page *p = page + (fo >> PAGE_SHIFT);
				u32 po = offset_in_page(fo);
				u32 pl = min_t(u32, fl, PAGE_SIZE - po);

				if (!tr_zc_add(zc, p, pl, po))
					goto out;
				fo += pl;
				fl -= pl;
				len += pl;
				seq += pl;
			}
		}
		/* Whatever is left of it is not in its fragments (or not wanted). */
		if (seq != TCP_SKB_CB(skb)->seq + skb->len ||
		    TCP_SKB_CB(skb)->tcp_flags & TCPHDR_FIN)
			break;
	}
out:
	release_sock(sk);
	return len;
}

/*
 * The drain is open: its close waits for this work item (see tr_close()).
 * With @zc, the peeked pages go by reference (MSG_SPLICE_PAGES).
 */
static int tr_send(struct tr_relay *r, void *buf, struct tr_zc *zc, size_t len)
{
	struct socket *sock = READ_ONCE(r->drain->sk->sk_socket);
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	struct kvec iov = { .iov_base = buf, .iov_len = len };

	if (!sock)
		return -EPIPE;
	if (zc->n) {
		msg.msg_flags |= MSG_SPLICE_PAGES;
		iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, zc->bv, zc->n, len);
	} else {
		iov_iter_kvec(&msg.msg_iter, ITER_SOURCE, &iov, 1, len);
	}
	return sock_sendmsg(sock, &msg);
}

/* Asks for the end: the first reason wins, the work items stop at once. */
static void tr_reap(struct tr_relay *r, enum tr_end end)
{
	if (cmpxchg(&r->end, TR_LIVE, end) == TR_LIVE)
		queue_work(tr_wq, &r->end_work);
}

/* The end's error, on the source, for SO_ERROR and its pollers. */
static void tr_set_error(struct sock *sk, int err)
{
	/* As the protocols' softirq paths do, without the owner's lock. */
	WRITE_ONCE(sk->sk_err, err);
	sk_error_report(sk);
}

/* Claims the end first: of two ends found at once, one error is left. */
static void tr_end_error(struct tr_relay *r, enum tr_end end, int err)
{
	if (cmpxchg(&r->end, TR_LIVE, end) != TR_LIVE)
		return;
	tr_set_error(r->src->sk, err);
	queue_work(tr_wq, &r->end_work);
}

static bool tr_drain_broken(const struct tr_relay *r)
{
	const struct sock *sk = r->drain->sk;
	int state = READ_ONCE(sk->sk_state);
	int err = READ_ONCE(sk->sk_err);

	/*
	 * EFBIG and ETIMEDOUT are what a splice from this socket ended with
	 * (as OpenBSD, they do not break it as a drain; a TCP timeout closes
	 * the connection too, which the state says).
	 */
	if ((err && err != EFBIG && err != ETIMEDOUT) ||
	    (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN))
		return true;
	if (r->udp)
		return false;
	return state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT;
}

/* The source's read position, to prove the consume took what was sent. */
static u32 tr_src_seq(const struct tr_relay *r)
{
	return r->udp ? 0 : READ_ONCE(tcp_sk(r->src->sk)->copied_seq);
}

/* The consume took exactly what was sent; a FIN read with it counts one. */
static bool tr_consumed(const struct tr_relay *r, u32 want)
{
	u32 seq = tr_src_seq(r);

	return seq == want ||
	       (seq == want + 1 &&
		(READ_ONCE(r->src->sk->sk_shutdown) & RCV_SHUTDOWN));
}

/*
 * One chunk: peek, send, consume what was sent.  Returns true to go on,
 * false when there is nothing to do until a callback kicks again (or the
 * splice ends).
 */
static bool tr_move_chunk(struct tr_relay *r, void *buf, struct tr_zc *zc)
{
	struct tr_sock *src = r->src;
	size_t want = TR_BUF;
	int n = 0, sent, got, mflags = 0;
	u32 seq;

	if (tr_drain_broken(r)) {
		tr_end_error(r, TR_END_DRAIN, EPIPE);
		return false;
	}
	if (READ_ONCE(r->drain->sk->sk_err)) {
		/*
		 * The end error of the drain's own splice, not read yet: a
		 * send would fail with it or take it.  Look again shortly.
		 */
		queue_delayed_work(tr_wq, &r->move, TR_RETRY);
		return false;
	}
	if (!r->udp && r->max)
		want = min_t(u64, want, r->max - src->moved);
	seq = tr_src_seq(r);
	/* A drain route without scatter-gather would copy the pages anyway. */
	if (!r->udp && READ_ONCE(ts_relay_zerocopy) &&
	    (READ_ONCE(r->drain->sk->sk_route_caps) & NETIF_F_SG))
		n = tr_peek_pages(src->sk, want, zc);
	if (!n)
		n = tr_recv(r, buf, want, MSG_PEEK, &mflags);
	if (n == -EAGAIN)
		return false;
	if (n < 0) {
		/*
		 * Its recvmsg took the source's error (its own, or the one an
		 * end just left there): it stays the source's.
		 */
		tr_set_error(r->src->sk, -n);
		tr_reap(r, TR_END_ERROR);
		return false;
	}
	if (!n && !r->udp) {
		/* The drain's peer sees EOF too; the drain is open (tr_close()). */
		kernel_sock_shutdown(r->drain->sk->sk_socket, SHUT_WR);
		tr_reap(r, TR_END_EOF);
		return false;
	}
	if (r->udp && (mflags & MSG_TRUNC)) {
		/* Larger than any datagram the source can receive. */
		tr_end_error(r, TR_END_ERROR, EMSGSIZE);
		return false;
	}
	if (r->udp && r->max && src->moved + n > r->max) {
		tr_end_error(r, TR_END_MAX, EFBIG);
		return false;
	}

	/* Before the send: a write_space while it runs must kick again. */
	WRITE_ONCE(r->want_space, true);
	smp_mb(); /* the flag before the send looks at the drain's space */
	sent = tr_send(r, buf, zc, n);
	if (sent > 0 && zc->n)
		ts_count(r->tn, TS_C_RELAY_ZC_BYTES, sent);
	/* The drain holds its own references to what it took. */
	tr_zc_put(zc);
	if (sent == -EAGAIN)
		return false;
	if ((sent == -ENOBUFS || sent == -ENOMEM) && ++r->nobufs < TR_NOBUFS_MAX) {
		queue_delayed_work(tr_wq, &r->move, TR_RETRY);
		return false;
	}
	if (sent < 0) {
		tr_end_error(r, TR_END_DRAIN, EPIPE);
		return false;
	}
	r->nobufs = 0;
	/* A short send leaves it set: the drain is full, its write_space kicks. */
	if (r->udp || sent == n)
		WRITE_ONCE(r->want_space, false);

	/* Consume what went out: TCP skips the copy with MSG_TRUNC. */
	got = tr_recv(r, buf, r->udp ? 0 : sent, MSG_TRUNC, &mflags);
	if (r->udp ? got != n : got != sent || !tr_consumed(r, seq + sent)) {
		/*
		 * Somebody else read the source (a zero-copy receive, a read
		 * begun before the splice) or urgent data was skipped: the
		 * stream is no longer whole, say so rather than go on.
		 */
		tr_end_error(r, TR_END_ERROR, EIO);
		return false;
	}
	WRITE_ONCE(src->moved, src->moved + sent);
	WRITE_ONCE(r->last_move, jiffies);
	ts_count(r->tn, TS_C_RELAY_BYTES, sent);
	if (r->udp)
		ts_count(r->tn, TS_C_RELAY_DATAGRAMS, 1);
	if (!r->udp && r->max && src->moved >= r->max) {
		tr_end_error(r, TR_END_MAX, EFBIG);
		return false;
	}
	return r->udp || sent == n;
}

static void tr_move_work(struct work_struct *work)
{
	struct tr_relay *r = container_of(to_delayed_work(work),
					  struct tr_relay, move);
	struct tr_zc zc = {};
	void *buf;
	int i;

	if (READ_ONCE(r->end))
		return;
	buf = tr_buf_get();
	if (!buf) {
		queue_delayed_work(tr_wq, &r->move, TR_RETRY);
		return;
	}
	for (i = 0; i < TR_BUDGET; i++) {
		if (!tr_move_chunk(r, buf, &zc))
			break;
		if (READ_ONCE(r->end))
			break;
	}
	tr_buf_put(buf);
	/* Out of budget with more to do: yield, then go on. */
	if (i == TR_BUDGET)
		mod_delayed_work(tr_wq, &r->move, 0);
}

static void tr_idle_work(struct work_struct *work)
{
	struct tr_relay *r = container_of(to_delayed_work(work),
					  struct tr_relay, idle_work);
	unsigned long due = READ_ONCE(r->last_move) + r->idle;

	if (time_before(jiffies, due)) {
		queue_delayed_work(tr_wq, &r->idle_work, due - jiffies);
		return;
	}
	tr_end_error(r, TR_END_IDLE, ETIMEDOUT);
}

/* ---- the end of a splice -------------------------------------------------- */

static void tr_unlink(struct tr_sock *ts, struct tr_relay **slot)
{
	/* The callbacks kick under the read lock: none holds the splice after. */
	write_lock_bh(&ts->sk->sk_callback_lock);
	WRITE_ONCE(*slot, NULL);
	write_unlock_bh(&ts->sk->sk_callback_lock);
}

/*
 * Under tr_lock: unlinks the splice from its sockets, so that no callback,
 * ioctl or close reaches it any more.  True for the one caller that then
 * destroys it.
 */
static bool tr_detach(struct tr_relay *r, enum tr_end end)
{
	lockdep_assert_held(&tr_lock);
	if (!r->linked)
		return false;
	r->linked = false;
	/* Stops a running move at its next chunk; an earlier reason stays. */
	cmpxchg(&r->end, TR_LIVE, end);
	tr_unlink(r->src, &r->src->as_src);
	tr_unlink(r->drain, &r->drain->as_drain);
	return true;
}

/* Outside tr_lock: the work items end, readers of the source look again. */
static void tr_destroy(struct tr_relay *r, bool from_end_work)
{
	struct sock *src = r->src->sk;
	int end = READ_ONCE(r->end);

	/* Waits for a running move: nothing touches the splice after these. */
	disable_delayed_work_sync(&r->move);
	disable_delayed_work_sync(&r->idle_work);
	if (!from_end_work)
		disable_work_sync(&r->end_work);
	/* Open: its close waits for this (nrelays). */
	src->sk_data_ready(src);
	ts_count(r->tn, tr_end_counter[end], 1);
	ts_count(r->tn, TS_C_RELAY_ACTIVE, -1);
	atomic_long_dec(&ts_relay_live);
	/* Under the lock that links; a close waits on them (tr_destroyed). */
	mutex_lock(&tr_lock);
	WRITE_ONCE(r->src->nrelays, r->src->nrelays - 1);
	WRITE_ONCE(r->drain->nrelays, r->drain->nrelays - 1);
	mutex_unlock(&tr_lock);
	wake_up_all(&tr_destroyed);
	kfree(r);
}

static void tr_end_work(struct work_struct *work)
{
	struct tr_relay *r = container_of(work, struct tr_relay, end_work);
	bool mine;

	/* Detaching changes both sockets: serialized with splices and closes. */
	mutex_lock(&tr_lock);
	mine = tr_detach(r, TR_LIVE);
	mutex_unlock(&tr_lock);
	/* Else the one that detached it destroys it, after this returns. */
	if (mine)
		tr_destroy(r, true);
}

/* The application closes a socket: its splices end first. */
static void tr_close(struct sock *sk, long timeout)
{
	struct tr_sock *ts = tr_of(sk);
	const struct proto *base = ts->base;
	struct tr_relay *rs, *rd;

	/* No splice may start or end with this socket meanwhile. */
	mutex_lock(&tr_lock);
	rs = ts->as_src;
	if (rs && !tr_detach(rs, TR_END_CLOSE))
		rs = NULL;
	rd = ts->as_drain;
	if (rd && !tr_detach(rd, TR_END_CLOSE))
		rd = NULL;
	mutex_unlock(&tr_lock);
	if (rs)
		tr_destroy(rs, false);
	if (rd)
		tr_destroy(rd, false);
	/* Splices that others detached: their work items use this socket. */
	wait_event(tr_destroyed, !READ_ONCE(ts->nrelays));
	tr_sock_give_back(ts);
	base->close(sk, timeout);
	/* Softirq paths may still be reading the proto copy inside ts. */
	call_rcu(&ts->rcu, tr_sock_free_rcu);
}

/* ---- the ioctls ----------------------------------------------------------- */

static int tr_check_sock(const struct sock *sk)
{
	if (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)
		return -EPROTONOSUPPORT;
	if (sk->sk_type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP)
		return 0;
	if (sk->sk_type == SOCK_DGRAM && sk->sk_protocol == IPPROTO_UDP)
		return 0;
	return -EPROTONOSUPPORT;
}

static bool tr_connected(const struct sock *sk)
{
	int state = READ_ONCE(sk->sk_state);

	if (sk->sk_protocol == IPPROTO_UDP)
		return state == TCP_ESTABLISHED;
	return state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT;
}

/*
 * The drain and the source are the two ends of one connection: all the
 * drain sends comes back to the source, for ever.  (Longer loops, through
 * other sockets, are not detected.)
 */
static bool tr_loop(const struct sock *src, const struct sock *drain)
{
	const struct inet_sock *a = inet_sk(src), *b = inet_sk(drain);

	if (!net_eq(sock_net(src), sock_net(drain)) ||
	    src->sk_family != drain->sk_family ||
	    a->inet_sport != b->inet_dport || a->inet_dport != b->inet_sport)
		return false;
#if IS_ENABLED(CONFIG_IPV6)
	if (src->sk_family == AF_INET6)
		return ipv6_addr_equal(&src->sk_v6_rcv_saddr, &drain->sk_v6_daddr) &&
		       ipv6_addr_equal(&src->sk_v6_daddr, &drain->sk_v6_rcv_saddr);
#endif
	return a->inet_rcv_saddr == b->inet_daddr &&
	       a->inet_daddr == b->inet_rcv_saddr;
}

static int tr_unsplice(struct sock *sk)
{
	struct tr_relay *r = NULL;

	/* The splice cannot end another way meanwhile (end work, close). */
	mutex_lock(&tr_lock);
	if (tr_is_ours(sk)) {
		r = tr_of(sk)->as_src;
		if (r && !tr_detach(r, TR_END_UNSPLICE))
			r = NULL;
	}
	mutex_unlock(&tr_lock);
	if (r)
		tr_destroy(r, false);
	return 0;
}

/* Under tr_lock; the socket lock orders it against setsockopt. */
static struct tr_sock *tr_take(struct sock *sk)
{
	struct tr_sock *ts;

	lock_sock(sk);
	ts = tr_sock_take(sk);
	release_sock(sk);
	return ts;
}

static int tr_splice(struct sock *src, struct sock *drain, u64 max,
		     u64 idle_us)
{
	struct tr_sock *ts, *td;
	struct tr_relay *r;
	int err;

	if (src == drain)
		return -EINVAL;
	err = tr_check_sock(src) ?: tr_check_sock(drain);
	if (err)
		return err;
	if (src->sk_protocol != drain->sk_protocol)
		return -EPROTONOSUPPORT;
	if (!tr_connected(src))
		return -ENOTCONN;
	/* Before the state: a TCP drain shut down for writing left ESTABLISHED. */
	if (READ_ONCE(drain->sk_shutdown) & SEND_SHUTDOWN)
		return -EPIPE;
	if (!tr_connected(drain))
		return -ENOTCONN;
	/* A peek offset would make the peeks skip bytes; a low-water mark, sleep. */
	if (READ_ONCE(src->sk_peek_off) >= 0 || READ_ONCE(src->sk_rcvlowat) > 1)
		return -EINVAL;
	if (tr_loop(src, drain))
		return -ELOOP;

	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return -ENOMEM;
	/* Both sockets' links change together, and neither may be closing. */
	mutex_lock(&tr_lock);
	ts = tr_take(src);
	if (IS_ERR(ts)) {
		err = PTR_ERR(ts);
		goto out;
	}
	td = tr_take(drain);
	if (IS_ERR(td)) {
		err = PTR_ERR(td);
		goto out;
	}
	err = -EBUSY;
	if (ts->as_src || td->as_drain)
		goto out;

	r->src = ts;
	r->drain = td;
	r->tn = ts_net(sock_net(src));
	r->max = max;
	r->udp = src->sk_protocol == IPPROTO_UDP;
	r->last_move = jiffies;
	r->linked = true;
	if (idle_us)
		r->idle = max(usecs_to_jiffies(min_t(u64, idle_us, UINT_MAX)), 1UL);
	INIT_DELAYED_WORK(&r->move, tr_move_work);
	INIT_DELAYED_WORK(&r->idle_work, tr_idle_work);
	INIT_WORK(&r->end_work, tr_end_work);
	WRITE_ONCE(ts->moved, 0);
	WRITE_ONCE(ts->nrelays, ts->nrelays + 1);
	WRITE_ONCE(td->nrelays, td->nrelays + 1);
	/* Under the callback locks: callbacks kick only linked splices. */
	write_lock_bh(&src->sk_callback_lock);
	WRITE_ONCE(ts->as_src, r);
	write_unlock_bh(&src->sk_callback_lock);
	write_lock_bh(&drain->sk_callback_lock);
	WRITE_ONCE(td->as_drain, r);
	write_unlock_bh(&drain->sk_callback_lock);
	atomic_long_inc(&ts_relay_live);
	ts_count(r->tn, TS_C_RELAY_TOTAL, 1);
	ts_count(r->tn, TS_C_RELAY_ACTIVE, 1);
	/* What the source holds already moves first. */
	queue_delayed_work(tr_wq, &r->move, 0);
	if (r->idle)
		queue_delayed_work(tr_wq, &r->idle_work, r->idle);
	r = NULL;
	err = 0;
out:
	mutex_unlock(&tr_lock);
	kfree(r);
	return err;
}

static long tr_ioctl_splice(void __user *arg)
{
	struct tcp_splice_relay req;
	struct socket *src, *drain;
	int err;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved)
		return -EINVAL;
	src = sockfd_lookup(req.source, &err);
	if (!src)
		return err;
	if (req.drain == -1) {
		err = tr_unsplice(src->sk);
		sockfd_put(src);
		return err;
	}
	drain = sockfd_lookup(req.drain, &err);
	if (drain) {
		err = tr_splice(src->sk, drain->sk, req.max, req.idle_us);
		sockfd_put(drain);
	}
	sockfd_put(src);
	return err;
}

static long tr_ioctl_info(void __user *arg)
{
	struct tcp_splice_relay_info info;
	struct socket *sock;
	int err;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	sock = sockfd_lookup(info.source, &err);
	if (!sock)
		return err;
	info.flags = 0;
	info.moved = 0;
	/* The file we hold keeps the socket ours; the lock, as_src stable. */
	mutex_lock(&tr_lock);
	if (tr_is_ours(sock->sk)) {
		struct tr_sock *ts = tr_of(sock->sk);

		info.moved = READ_ONCE(ts->moved);
		if (ts->as_src)
			info.flags |= TCP_SPLICE_INFO_ACTIVE;
	}
	mutex_unlock(&tr_lock);
	sockfd_put(sock);
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long tr_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case TCP_SPLICE_IOC_SPLICE:
		return tr_ioctl_splice((void __user *)arg);
	case TCP_SPLICE_IOC_INFO:
		return tr_ioctl_info((void __user *)arg);
	}
	return -ENOTTY;
}

static const struct file_operations tr_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = tr_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/* Anyone may open it: the ioctls act on the caller's own sockets only. */
static struct miscdevice tr_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tcp-splice",
	.fops = &tr_fops,
	.mode = 0666,
};

/* Last in the module's init: nothing may fail after the device is there. */
int ts_relay_init(void)
{
	int err;

	/* Unbound: a splice's moves follow no CPU in particular. */
	tr_wq = alloc_workqueue("tcp_splice_relay", WQ_UNBOUND, 0);
	if (!tr_wq)
		return -ENOMEM;
	err = misc_register(&tr_dev);
	if (err)
		destroy_workqueue(tr_wq);
	return err;
}

/* Every socket we took was closed (each held a module reference). */
void ts_relay_exit(void)
{
	int i;

	misc_deregister(&tr_dev);
	destroy_workqueue(tr_wq);
	for (i = 0; i < tr_pool_n; i++)
		kvfree(tr_pool[i]);
	for (i = 0; i < ARRAY_SIZE(tr_ops_tab); i++)
		kfree(tr_ops_tab[i].ops);
}
