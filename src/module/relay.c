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
 * splice at any moment loses nothing.
 *
 * A socket that takes part in a splice gets a private copy of its struct
 * proto (close ends its splices; the application's reads of a spliced
 * source wait), its callbacks wrapped (they kick the work items) and, for
 * poll, a per-family copy of its proto_ops.  It keeps them until it is
 * closed, so the bytes moved by its last splice stay readable.
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
	u8 end;			/* enum tr_end asked by the work items */
	int end_err;
	struct delayed_work move;
	struct delayed_work idle_work;
	struct list_head reap_node;
};

/*
 * Serializes splicing, unsplicing and the end of splices, which link and
 * unlink two sockets at once; never taken by the work items that move data,
 * so that ending a splice can wait for them.
 */
static DEFINE_MUTEX(tr_lock);

/* Splices whose work items asked for their end; the reaper ends them. */
static LIST_HEAD(tr_reap_list);
static DEFINE_SPINLOCK(tr_reap_lock);	/* BH: the idle work may run anywhere */
static void tr_reap_work_fn(struct work_struct *work);
static DECLARE_WORK(tr_reap_work, tr_reap_work_fn);

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
	queue_delayed_work(ts_wq, &r->move, 0);
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
static void tr_state_change(struct sock *sk)
{
	struct tr_sock *ts = tr_cb_lock(sk);
	void (*orig)(struct sock *sk) = ts ? ts->state_change : sk->sk_state_change;

	if (ts && ts->as_src)
		tr_kick(ts->as_src);
	if (ts && ts->as_drain)
		tr_kick(ts->as_drain);
	tr_cb_unlock(sk);
	orig(sk);
}

static void tr_error_report(struct sock *sk)
{
	struct tr_sock *ts = tr_cb_lock(sk);
	void (*orig)(struct sock *sk) = ts ? ts->error_report : sk->sk_error_report;

	if (ts && ts->as_src)
		tr_kick(ts->as_src);
	if (ts && ts->as_drain)
		tr_kick(ts->as_drain);
	tr_cb_unlock(sk);
	orig(sk);
}

/* ---- the application's view of a spliced source -------------------------- */

/* Reads wait while the socket is a source: the splice owns its data. */
static int tr_wait_unspliced(struct sock *sk, int flags)
{
	long timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);

	while (tr_spliced(sk)) {
		if (!timeo)
			return -EAGAIN;
		timeo = wait_event_interruptible_timeout(*sk_sleep(sk),
							 !tr_spliced(sk), timeo);
		if (timeo < 0)
			return sock_intr_errno(timeo);
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

static const struct proto_ops *tr_ops_copy(const struct proto_ops *cur)
{
	/* Written here once, read-only after it is published. */
	struct proto_ops *copy = kmemdup(cur, sizeof(const struct proto_ops),
					 GFP_KERNEL);

	if (copy) {
		copy->poll = tr_poll;
		if (cur->splice_read)
			copy->splice_read = tr_splice_read;
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

/* ---- taking a socket in and giving it back ------------------------------- */

static void tr_sock_free_rcu(struct rcu_head *head)
{
	kfree(container_of(head, struct tr_sock, rcu));
	/* Last statement: exit's rcu_barrier() waits for this callback. */
	module_put(THIS_MODULE);
}

/* Under tr_lock; the caller holds the socket's file. */
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
	ts = kzalloc(sizeof(*ts), GFP_KERNEL);
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

static int tr_send(struct tr_relay *r, void *buf, size_t len)
{
	struct socket *sock = READ_ONCE(r->drain->sk->sk_socket);
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	struct kvec iov = { .iov_base = buf, .iov_len = len };

	if (!sock)
		return -EPIPE;
	iov_iter_kvec(&msg.msg_iter, ITER_SOURCE, &iov, 1, len);
	return sock_sendmsg(sock, &msg);
}

/* Asks the reaper to end the splice; the work items stop at once. */
static void tr_reap(struct tr_relay *r, enum tr_end end, int err)
{
	spin_lock_bh(&tr_reap_lock);
	if (!r->end) {
		WRITE_ONCE(r->end, end);
		r->end_err = err;
		list_add_tail(&r->reap_node, &tr_reap_list);
	}
	spin_unlock_bh(&tr_reap_lock);
	queue_work(ts_wq, &tr_reap_work);
}

static bool tr_drain_broken(const struct tr_relay *r)
{
	const struct sock *sk = r->drain->sk;
	int state = READ_ONCE(sk->sk_state);

	if (READ_ONCE(sk->sk_err) || (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN))
		return true;
	if (r->udp)
		return false;
	return state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT;
}

/*
 * One chunk: peek, send, consume what was sent.  Returns true to go on,
 * false when there is nothing to do until a callback kicks again (or the
 * splice ends).
 */
static bool tr_move_chunk(struct tr_relay *r, void *buf)
{
	struct tr_sock *src = r->src;
	size_t want = TR_BUF;
	int n, sent, got, mflags;

	if (tr_drain_broken(r)) {
		tr_reap(r, TR_END_DRAIN, EPIPE);
		return false;
	}
	if (!r->udp && r->max)
		want = min_t(u64, want, r->max - src->moved);
	n = tr_recv(r, buf, want, MSG_PEEK, &mflags);
	if (n == -EAGAIN)
		return false;
	if (n < 0) {
		tr_reap(r, TR_END_ERROR, -n);
		return false;
	}
	if (!n && !r->udp) {
		tr_reap(r, TR_END_EOF, 0);
		return false;
	}
	if (r->udp && (mflags & MSG_TRUNC)) {
		/* Larger than any datagram the source can receive. */
		tr_reap(r, TR_END_ERROR, EMSGSIZE);
		return false;
	}
	if (r->udp && r->max && src->moved + n > r->max) {
		tr_reap(r, TR_END_MAX, EFBIG);
		return false;
	}

	/* Before the send: a write_space while it runs must kick again. */
	WRITE_ONCE(r->want_space, true);
	smp_mb(); /* the flag before the send looks at the drain's space */
	sent = tr_send(r, buf, n);
	if (sent == -EAGAIN)
		return false;
	if (sent == -ENOBUFS || sent == -ENOMEM) {
		queue_delayed_work(ts_wq, &r->move, TR_RETRY);
		return false;
	}
	if (sent < 0) {
		tr_reap(r, TR_END_DRAIN, EPIPE);
		return false;
	}
	/* A short send leaves it set: the drain is full, its write_space kicks. */
	if (r->udp || sent == n)
		WRITE_ONCE(r->want_space, false);

	/* Consume what went out: TCP skips the copy with MSG_TRUNC. */
	got = tr_recv(r, buf, r->udp ? 0 : sent, MSG_TRUNC, &mflags);
	if (got < 0 || (!r->udp && got != sent)) {
		/* Somebody else read the source: the stream is not ours. */
		tr_reap(r, TR_END_ERROR, EIO);
		return false;
	}
	WRITE_ONCE(src->moved, src->moved + sent);
	WRITE_ONCE(r->last_move, jiffies);
	ts_count(r->tn, TS_C_RELAY_BYTES, sent);
	if (r->udp)
		ts_count(r->tn, TS_C_RELAY_DATAGRAMS, 1);
	if (!r->udp && r->max && src->moved >= r->max) {
		tr_reap(r, TR_END_MAX, EFBIG);
		return false;
	}
	return r->udp || sent == n;
}

static void tr_move_work(struct work_struct *work)
{
	struct tr_relay *r = container_of(to_delayed_work(work),
					  struct tr_relay, move);
	void *buf;
	int i;

	if (READ_ONCE(r->end))
		return;
	buf = tr_buf_get();
	if (!buf) {
		queue_delayed_work(ts_wq, &r->move, TR_RETRY);
		return;
	}
	for (i = 0; i < TR_BUDGET; i++) {
		if (!tr_move_chunk(r, buf))
			break;
		if (READ_ONCE(r->end))
			break;
	}
	tr_buf_put(buf);
	/* Out of budget with more to do: yield, then go on. */
	if (i == TR_BUDGET)
		mod_delayed_work(ts_wq, &r->move, 0);
}

static void tr_idle_work(struct work_struct *work)
{
	struct tr_relay *r = container_of(to_delayed_work(work),
					  struct tr_relay, idle_work);
	unsigned long due = READ_ONCE(r->last_move) + r->idle;

	if (time_before(jiffies, due)) {
		queue_delayed_work(ts_wq, &r->idle_work, due - jiffies);
		return;
	}
	tr_reap(r, TR_END_IDLE, ETIMEDOUT);
}

/* ---- the end of a splice -------------------------------------------------- */

static void tr_unlink(struct tr_sock *ts, struct tr_relay **slot)
{
	/* The callbacks kick under the read lock: none holds the splice after. */
	write_lock_bh(&ts->sk->sk_callback_lock);
	WRITE_ONCE(*slot, NULL);
	write_unlock_bh(&ts->sk->sk_callback_lock);
}

/* Under tr_lock, in process context. */
static void tr_end(struct tr_relay *r, enum tr_end end, int err)
{
	struct sock *src = r->src->sk, *drain = r->drain->sk;

	lockdep_assert_held(&tr_lock);
	tr_unlink(r->src, &r->src->as_src);
	tr_unlink(r->drain, &r->drain->as_drain);
	/* Waits for a running move: nothing touches the splice after these. */
	disable_delayed_work_sync(&r->move);
	disable_delayed_work_sync(&r->idle_work);
	spin_lock_bh(&tr_reap_lock);
	list_del_init(&r->reap_node);
	spin_unlock_bh(&tr_reap_lock);

	if (end == TR_END_EOF && drain->sk_socket)
		kernel_sock_shutdown(drain->sk_socket, SHUT_WR);
	if (err) {
		/* Under the socket lock, as the protocols set their errors. */
		lock_sock(src);
		WRITE_ONCE(src->sk_err, err);
		release_sock(src);
		sk_error_report(src);
	} else {
		/* Readers and pollers of the source look again. */
		src->sk_data_ready(src);
	}
	ts_count(r->tn, tr_end_counter[end], 1);
	ts_count(r->tn, TS_C_RELAY_ACTIVE, -1);
	atomic_long_dec(&ts_relay_live);
	kfree(r);
}

static void tr_reap_work_fn(struct work_struct *work)
{
	struct tr_relay *r;

	/* Ends unlink two sockets: serialized with splicing and closing. */
	mutex_lock(&tr_lock);
	for (;;) {
		spin_lock_bh(&tr_reap_lock);
		r = list_first_entry_or_null(&tr_reap_list, struct tr_relay,
					     reap_node);
		if (r)
			list_del_init(&r->reap_node);
		spin_unlock_bh(&tr_reap_lock);
		if (!r)
			break;
		tr_end(r, r->end, r->end_err);
	}
	mutex_unlock(&tr_lock);
}

/* The application closes a socket: its splices end first. */
static void tr_close(struct sock *sk, long timeout)
{
	struct tr_sock *ts = tr_of(sk);
	const struct proto *base = ts->base;

	/* No splice may start or end with this socket meanwhile. */
	mutex_lock(&tr_lock);
	if (ts->as_src)
		tr_end(ts->as_src, TR_END_CLOSE, 0);
	if (ts->as_drain)
		tr_end(ts->as_drain, TR_END_CLOSE, 0);
	mutex_unlock(&tr_lock);
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

static int tr_unsplice(struct sock *sk)
{
	/* The splice cannot end another way meanwhile (reaper, close). */
	mutex_lock(&tr_lock);
	if (tr_is_ours(sk) && tr_of(sk)->as_src)
		tr_end(tr_of(sk)->as_src, TR_END_UNSPLICE, 0);
	mutex_unlock(&tr_lock);
	return 0;
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
	/* A peek offset would make the splice's peeks skip bytes. */
	if (READ_ONCE(src->sk_peek_off) >= 0)
		return -EINVAL;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	/* Both sockets' links change together, and neither may be closing. */
	mutex_lock(&tr_lock);
	ts = tr_sock_take(src);
	if (IS_ERR(ts)) {
		err = PTR_ERR(ts);
		goto out;
	}
	td = tr_sock_take(drain);
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
	if (idle_us)
		r->idle = max(usecs_to_jiffies(min_t(u64, idle_us, UINT_MAX)), 1UL);
	INIT_DELAYED_WORK(&r->move, tr_move_work);
	INIT_DELAYED_WORK(&r->idle_work, tr_idle_work);
	INIT_LIST_HEAD(&r->reap_node);
	WRITE_ONCE(ts->moved, 0);
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
	queue_delayed_work(ts_wq, &r->move, 0);
	if (r->idle)
		queue_delayed_work(ts_wq, &r->idle_work, r->idle);
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

int ts_relay_init(void)
{
	return misc_register(&tr_dev);
}

/* Every socket we took was closed (each held a module reference). */
void ts_relay_exit(void)
{
	int i;

	misc_deregister(&tr_dev);
	for (i = 0; i < tr_pool_n; i++)
		kvfree(tr_pool[i]);
	for (i = 0; i < ARRAY_SIZE(tr_ops_tab); i++)
		kfree(tr_ops_tab[i].ops);
}
