// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: the socket's private struct proto, i.e. the data path and the
 * teardown hooks.
 *
 * Ordering rule (one boundary per direction): a sender hands off once,
 * recording its write_seq as h in the peer's inbound state; every byte after
 * that goes into the peer's ring.  The receiver delivers TCP bytes first and
 * ring bytes only once its copied_seq has reached h, so the stream is never
 * reordered and needs no per-chunk bookkeeping.
 */
#include <linux/fs.h>
#include <asm/ioctls.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/splice.h>
#include <linux/sched/clock.h>
#include <net/tcp.h>

#include "tcp_splice.h"

#ifdef TS_RECVMSG_ADDR_LEN
#define TS_RECV_ARGS	struct sock *sk, struct msghdr *msg, size_t len, \
			int flags, int *addr_len
#define ts_base_recv(ch, sk, msg, len, flags) \
	((ch)->base->recvmsg(sk, msg, len, flags, addr_len))
#define ts_peek_recv(ch, sk, msg, len, flags) \
	ts_peek(ch, sk, msg, len, flags, addr_len)
#else
#define TS_RECV_ARGS	struct sock *sk, struct msghdr *msg, size_t len, int flags
#define ts_base_recv(ch, sk, msg, len, flags) \
	((ch)->base->recvmsg(sk, msg, len, flags))
#define ts_peek_recv(ch, sk, msg, len, flags) ts_peek(ch, sk, msg, len, flags)
#endif

static int ts_recvmsg(TS_RECV_ARGS);

bool ts_is_ours(const struct sock *sk)
{
	return READ_ONCE(sk->sk_prot)->recvmsg == ts_recvmsg;
}

static struct ts_chan *ts_peer(const struct ts_chan *ch)
{
	/* Pairs with the store-release in ts_link(). */
	return smp_load_acquire(&ch->peer);
}

/* sock_def_readable: RCU-safe, wakes pollers and readers, raises SIGIO. */
static void ts_wake_reader(struct ts_chan *ch)
{
	ch->sk->sk_data_ready(ch->sk);
}

/*
 * sk_stream_write_space: wakes writers once ts_stream_memory_free() agrees.
 * It reads sk_socket outside RCU, and the caller (the peer, a work item) may
 * race with this socket's close: RCU keeps struct socket (freed with its
 * inode after a grace period) alive across it.
 */
static void ts_wake_writer(struct ts_chan *ch)
{
	rcu_read_lock();
	ch->sk->sk_write_space(ch->sk);
	rcu_read_unlock();
}

/*
 * Is the thread that read last from @in asleep (in epoll_wait, poll, or
 * anywhere else)?  A busy event loop is running or runnable: it will look
 * at its sockets again without our help, and an early wake-up would only
 * cost it a spurious pass.  The thread id is a hint: if it went away or was
 * reused, one wake-up is spent or skipped, nothing more.
 */
static bool ts_reader_sleeps(const struct ts_inbound *in)
{
	pid_t nr = READ_ONCE(in->reader);
	struct task_struct *t;
	bool sleeps;

	if (!nr)
		return false;
	/* RCU: the pid lookup needs it, and tasks are freed after a grace period. */
	rcu_read_lock();
	t = pid_task(find_pid_ns(nr, &init_pid_ns), PIDTYPE_PID);
	sleeps = t && !task_is_running(t);
	rcu_read_unlock();
	return sleeps;
}

/* The last thread whose ring read on a CPU took an early-wake decision. */
struct ts_waker {
	const struct task_struct *task;	/* compared, never dereferenced */
	unsigned long nvcsw;		/* its voluntary switches then */
};

static DEFINE_PER_CPU(struct ts_waker, ts_waker);

/*
 * Did the current thread sleep since its last such read?  One that did not
 * is an event loop working through a batch of ready connections: it will
 * not reply before the batch is done, and an early wake-up per request costs
 * it a wake-up of the peer's CPU each time (Redis at 50 connections).  One
 * that slept serves one request at a time.  Records this read.
 */
static bool ts_waker_slept(void)
{
	/* get_cpu_ptr() disables preemption: one thread updates a CPU's slot. */
	struct ts_waker *w = get_cpu_ptr(&ts_waker);
	unsigned long nvcsw = READ_ONCE(current->nvcsw);
	bool slept = w->task != current || w->nvcsw != nvcsw;

	w->task = current;
	w->nvcsw = nvcsw;
	put_cpu_ptr(&ts_waker);
	return slept;
}

/*
 * An event loop (poll, select, epoll) that has read replies before, has
 * none unread and sleeps is likely waiting for the next one, if we serve one
 * request at a time: hints, read unlocked.
 */
static bool ts_awaits_reply(const struct ts_chan *ch)
{
	if (!READ_ONCE(ts_early_wake_poll) || !ts_waker_slept())
		return false;
	return READ_ONCE(ch->in.bytes_out) && !ts_ring_used(&ch->in) &&
	       ts_reader_sleeps(&ch->in);
}

/*
 * The early wake-up (RCU held): a wake-up without a key and without SIGIO.
 * With no key, every waiter looks again for itself: a blocking receiver,
 * poll and select, epoll (which reports only what its own poll finds),
 * io_uring and AIO poll (which would trust a key's EPOLLIN); each finds
 * nothing and waits on, so the application sees nothing of it.
 */
static bool ts_wake_early(struct ts_chan *ch)
{
	struct socket_wq *wq = rcu_dereference(ch->sk->sk_wq);

	if (!skwq_has_sleeper(wq))
		return false;
	wake_up_interruptible(&wq->wait);
	return true;
}

/*
 * After a ring read: wake the peer's writers only if one asked for space
 * (SOCK_NOSPACE, set by ts_wait_space() and by tcp_poll()), as TCP does.
 * An unconditional wake-up would also rouse a peer blocked in recv (waiters
 * share one queue and wait_woken() ignores the key) after every read.
 *
 * The one exception is the early wake-up (parameters early_wake and
 * early_wake_poll): when the read took the last ring byte and the peer
 * sleeps in recv, or is an event loop waiting for a reply, it most likely
 * waits for our reply to what it just sent.  Waking it now lets its CPU
 * leave idle while we work on the request, rather than after the reply is
 * written; it finds no data and sleeps again, and the reply's wake-up then
 * finds it running or cheap to wake.  AF_UNIX wakes a blocking receiver the
 * same way whenever a read consumes one of the sender's skbs (sock_wfree()
 * -> unix_write_space()).
 */
static void ts_wake_writer_space(struct ts_chan *ch, bool drained)
{
	struct socket *sock;
	bool early;

	/* Tail stored before NOSPACE is read: pairs with the writer's mb. */
	smp_mb();
	early = drained && READ_ONCE(ts_early_wake) &&
		(READ_ONCE(ch->rx_waiting) || ts_awaits_reply(ch));
	/* struct socket is RCU-freed with its inode: safe to look at here. */
	rcu_read_lock();
	sock = READ_ONCE(ch->sk->sk_socket);
	/* NOSPACE is set by any poll that found TCP's queue full, too. */
	if (sock && test_bit(SOCK_NOSPACE, &sock->flags))
		ts_wake_writer(ch);
	if (sock && early && ts_wake_early(ch))
		ts_count(ch->tn, TS_C_EARLY_WAKES, 1);
	rcu_read_unlock();
}

/*
 * ---- work items of a channel: persist and shrink ----
 *
 * A queued item holds the channel, its socket and the peer's channel: it
 * may run after the socket was closed and after the peer was destroyed.
 * ts_stop() cancels pending ones; exit's destroy_workqueue() waits for a
 * running one.
 */
static void ts_work_drop(struct ts_chan *ch)
{
	struct ts_chan *peer = ts_peer(ch);

	sock_put(ch->sk);
	ts_chan_put(peer);
	ts_chan_put(ch);
}

/* Any context. */
static void ts_work_cancel(struct ts_chan *ch, struct delayed_work *dw)
{
	if (cancel_delayed_work(dw))
		ts_work_drop(ch);
}

/*
 * From a system call on the socket (so the socket and the peer link are
 * held) or from a running item (which holds them): queue @dw, once.
 */
static void ts_work_queue(struct ts_chan *ch, struct delayed_work *dw,
			  unsigned long delay)
{
	if (delayed_work_pending(dw))
		return;
	/* The caller holds all three, so none of these is a first reference. */
	refcount_inc(&ch->ref);
	sock_hold(ch->sk);
	refcount_inc(&ts_peer(ch)->ref);
	if (!queue_delayed_work(ts_wq, dw, delay)) {
		ts_work_drop(ch);
		return;
	}
	/* Queued before stopped is read: pairs with ts_stop()'s xchg. */
	smp_mb();
	if (READ_ONCE(ch->stopped))
		ts_work_cancel(ch, dw);
}

/*
 * Persist: a writer on a full ring sleeps until the reader makes room.  If
 * the ring could not grow (ring memory cap, the cgroup's room, a failed
 * allocation, or ring_max_kb lowered for a while), a reader that waits for
 * the writer to finish first would never make room, where TCP still had
 * buffer to fill: both ends would hang for good once the limit is gone.
 * Like TCP's persist timer, the producer's item looks again, backing off,
 * and wakes the writer once the ring may grow.
 */
#define TS_PERSIST_MIN		(HZ / 5)
#define TS_PERSIST_MAX_SHIFT	5	/* 6.4 s */

/*
 * Producer (tx_lock held) or the item itself.  A failed grow is tried again
 * after 0.2 s, backing off; a ring at ring_max_kb only every 6.4 s, in case
 * the limit was raised: a bulk stream against a slower reader sits there
 * all the time.
 */
static void ts_persist_arm(struct ts_chan *ch, bool failed)
{
	u8 shift = failed ? READ_ONCE(ch->persist_backoff) : TS_PERSIST_MAX_SHIFT;

	ts_work_queue(ch, &ch->persist, TS_PERSIST_MIN << shift);
}

/*
 * Producer (tx_lock held), when its writer may stop: a ring that poll calls
 * unwritable and that could not grow gets the item, whether the send filled
 * it or stopped short (an epoll writer stops once less than a quarter is
 * free, and never sees a full ring).
 */
static void ts_persist_check(struct ts_chan *ch, struct ts_inbound *in)
{
	if (!ts_ring_writable(in) && ts_ring_below_limit(in))
		ts_persist_arm(ch, READ_ONCE(in->grow_failed));
}

void ts_persist_work(struct work_struct *work)
{
	struct ts_chan *ch = container_of(to_delayed_work(work), struct ts_chan,
					  persist);
	struct ts_inbound *in = &ts_peer(ch)->in;
	u8 backoff = READ_ONCE(ch->persist_backoff);

	/*
	 * Not writable by poll's measure (a quarter free): a ring that its
	 * reader left short of that sends no write-space wake-up either.
	 */
	if (!READ_ONCE(ch->stopped) && !READ_ONCE(ch->retired) &&
	    !READ_ONCE(in->reader_gone) && ts_in_state(in) == TS_RING &&
	    !ts_ring_has_space(in, 4)) {
		if (backoff < TS_PERSIST_MAX_SHIFT)
			WRITE_ONCE(ch->persist_backoff, backoff + 1);
		/*
		 * Memory may be back: let the producer try again.  A race with
		 * its own store of the flag is benign either way: it either
		 * fails again and re-arms us, or it tries once more.
		 */
		WRITE_ONCE(in->grow_failed, false);
		if (ts_ring_may_grow(in)) {
			ts_wake_writer(ch);
			ts_count(ch->tn, TS_C_RING_PERSIST_WAKES, 1);
		} else if (ts_ring_below_limit(in)) {
			ts_persist_arm(ch, false);
		}
	}
	ts_work_drop(ch);
}

/*
 * Shrink: TCP frees a receive buffer's memory once it is read; a ring that
 * grew for a backlog would keep it until the connection closes.  A read that
 * empties a grown ring queues the consumer's item; it puts the ring back to
 * 4 KiB once the ring is empty and no read since its last look found 4 KiB
 * or more in it, so an idle or light connection gives the memory back within
 * about two delays and a busy stream keeps its ring.
 */
#define TS_SHRINK_DELAY		HZ

/* Consumer (rx_lock held) after a read that emptied the ring, or the item. */
static void ts_shrink_arm(struct ts_chan *ch)
{
	if (ts_ring_shrinkable(&ch->in))
		ts_work_queue(ch, &ch->shrink, TS_SHRINK_DELAY);
}

void ts_shrink_work(struct work_struct *work)
{
	struct ts_chan *ch = container_of(to_delayed_work(work), struct ts_chan,
					  shrink);

	if (!READ_ONCE(ch->stopped) && !READ_ONCE(ch->retired) &&
	    ts_ring_shrink(ch, ts_peer(ch)) == TS_SHRINK_AGAIN)
		ts_shrink_arm(ch);
	ts_work_drop(ch);
}

/*
 * No more ring bytes for us, and none from us: both ends stop, rings stay.
 * Once only.  @wake: wake the peer now; not when a reset is on its way,
 * whose arrival wakes it with the error TCP would give.
 */
static void ts_stop(struct ts_chan *ch, bool wake)
{
	struct ts_chan *peer = ts_peer(ch);

	if (xchg(&ch->stopped, true))
		return;
	if (peer) {
		ts_work_cancel(ch, &ch->persist);
		ts_work_cancel(ch, &ch->shrink);
	}
	WRITE_ONCE(ch->in.reader_gone, true);
	if (peer) {
		WRITE_ONCE(peer->in.writer_done, true);
		if (wake) {
			ts_wake_reader(peer);
			ts_wake_writer(peer);
		}
	}
}

/* ---- send ---------------------------------------------------------------- */

static void ts_never(struct ts_chan *ch, struct ts_chan *peer, enum ts_counter c)
{
	WRITE_ONCE(peer->in.state, TS_NEVER);
	ts_count(ch->tn, c, 1);
}

static bool ts_zerocopy(const struct sock *sk, const struct msghdr *msg)
{
	return msg->msg_ubuf ||
	       ((msg->msg_flags & MSG_ZEROCOPY) && sock_flag(sk, SOCK_ZEROCOPY));
}

/*
 * Decide the single TCP->ring boundary of this direction (tx_lock held).
 * Returns true when the ring is in use from now on.
 */
static bool ts_handoff(struct ts_chan *ch, struct ts_chan *peer,
		       struct sock *sk, struct msghdr *msg, size_t size)
{
	u32 h;

	if (msg->msg_flags & MSG_OOB) {
		ts_never(ch, peer, TS_C_TX_NEVER_OOB);
		return false;
	}
	if (ts_zerocopy(sk, msg)) {
		ts_never(ch, peer, TS_C_TX_NEVER_ZEROCOPY);
		return false;
	}
	if (!READ_ONCE(peer->rx_ready) || READ_ONCE(peer->in.reader_gone) ||
	    READ_ONCE(peer->retired))
		return false;
	if (!rcu_access_pointer(peer->in.buf) && ts_ring_alloc(peer, size)) {
		WRITE_ONCE(peer->in.state, TS_NEVER);
		return false;
	}
	/*
	 * The socket lock excludes TCP senders of the old proto; one asleep in
	 * tcp_sendmsg (sk_write_pending) would append after h, so wait for it.
	 */
	lock_sock(sk);
	if (sk->sk_write_pending || (sk->sk_state != TCP_ESTABLISHED &&
				     sk->sk_state != TCP_CLOSE_WAIT)) {
		release_sock(sk);
		return false;
	}
	h = tcp_sk(sk)->write_seq;
	release_sock(sk);
	peer->in.h = h;
	/* h before the state: pairs with the receiver's acquire of state. */
	smp_store_release(&peer->in.state, TS_RING);
	ts_count(ch->tn, TS_C_HANDOFFS, 1);
	return true;
}

/* ts_send_ring(): nothing sent, the rest must go to TCP (not an errno). */
#define TS_SEND_TCP	(-MAX_ERRNO - 1)

/*
 * The ring is full: ask the reader for a write-space wake-up (see
 * ts_wake_writer_space()), as TCP does on a full send buffer, blocking or not
 * (an edge-triggered EPOLLOUT depends on it).
 */
static void ts_want_space(struct sock *sk)
{
	sk_set_bit(SOCKWQ_ASYNC_NOSPACE, sk);
	set_bit(SOCK_NOSPACE, &sk->sk_socket->flags);
	/* NOSPACE set before the ring is looked at again: pairs with its mb. */
	smp_mb__after_atomic();
}

static long ts_wait_space(struct sock *sk, struct ts_chan *peer, long timeo)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);

	add_wait_queue(sk_sleep(sk), &wait);
	for (;;) {
		ts_want_space(sk);
		if (!timeo || signal_pending(current) ||
		    ts_ring_has_space(&peer->in, 0) ||
		    ts_ring_may_grow(&peer->in) || READ_ONCE(sk->sk_err) ||
		    (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN) ||
		    READ_ONCE(peer->in.reader_gone))
			break;
		timeo = wait_woken(&wait, TASK_INTERRUPTIBLE, timeo);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	return timeo;
}

static int ts_send_ring(struct ts_chan *ch, struct ts_chan *peer,
			struct sock *sk, struct msghdr *msg)
{
	long timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);
	const long timeo0 = timeo;
	size_t copied = 0;
	int err = 0;

	while (msg_data_left(msg)) {
		ssize_t n;

		if (READ_ONCE(sk->sk_err)) {
			err = sock_error(sk);
			break;
		}
		if (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN) {
			err = -EPIPE;
			break;
		}
		/* The peer reads no more: TCP tells how (reset, EPIPE). */
		if (READ_ONCE(peer->in.reader_gone)) {
			if (!copied)
				return TS_SEND_TCP;
			break;
		}
		n = ts_ring_write(&peer->in, &msg->msg_iter, msg_data_left(msg));
		if (n > 0) {
			copied += n;
			ts_wake_reader(peer);
			if (unlikely(READ_ONCE(ch->persist_backoff)))
				WRITE_ONCE(ch->persist_backoff, 0);
			continue;
		}
		if (n < 0) {
			err = n;
			break;
		}
		if (ts_ring_grow(peer))
			continue;
		ts_want_space(sk);
		if (ts_ring_has_space(&peer->in, 0))
			continue;
		ts_persist_check(ch, &peer->in);
		if (!timeo) {
			err = -EAGAIN;
			break;
		}
		if (signal_pending(current)) {
			err = sock_intr_errno(timeo0);
			break;
		}
		timeo = ts_wait_space(sk, peer, timeo);
	}
	if (copied) {
		ts_count(ch->tn, TS_C_RING_BYTES_TX, copied);
		ts_persist_check(ch, &peer->in);
		return copied;
	}
	if (err == -EPIPE && !(msg->msg_flags & MSG_NOSIGNAL))
		send_sig(SIGPIPE, current, 0);
	return err;
}

/*
 * Close the ring of this direction for good (tx_lock held, so every ring byte
 * is written): TCP resumes at h, where its write_seq has stayed, and the
 * receiver reads it once the ring is empty.  Used for what only TCP can carry
 * (urgent data, zero-copy completions), for a peer that reads no more, whose
 * kernel then answers the TCP bytes with a reset, as it would have, and for a
 * receiver that attached a socket filter, which only sees TCP's segments.
 */
static bool ts_leave_ring(struct ts_chan *ch, struct ts_chan *peer,
			  struct sock *sk, struct msghdr *msg)
{
	enum ts_counter c;

	if (msg->msg_flags & MSG_OOB)
		c = TS_C_TX_NEVER_OOB;
	else if (ts_zerocopy(sk, msg))
		c = TS_C_TX_NEVER_ZEROCOPY;
	else if (READ_ONCE(peer->in.reader_gone))
		c = TS_C_RING_CLOSED_PEER_GONE;
	else if (rcu_access_pointer(peer->sk->sk_filter))
		c = TS_C_RING_CLOSED_FILTER;
	else
		return false;
	/* Ring bytes before the state: pairs with the receiver's acquire. */
	smp_store_release(&peer->in.state, TS_DONE);
	ts_count(ch->tn, c, 1);
	ts_wake_reader(peer);
	return true;
}

static int ts_sendmsg(struct sock *sk, struct msghdr *msg, size_t size)
{
	struct ts_chan *ch = ts_chan_of(sk);
	struct ts_chan *peer = ts_peer(ch);
	int state, ret;

	if (!peer || READ_ONCE(ch->retired))
		return ch->base->sendmsg(sk, msg, size);
	state = READ_ONCE(peer->in.state);
	if (state == TS_NEVER || state == TS_DONE)
		return ch->base->sendmsg(sk, msg, size);

	/* One sender at a time: one producer, and one boundary. */
	mutex_lock(&ch->tx_lock);
	state = peer->in.state;
	if (state == TS_STARTUP && ts_handoff(ch, peer, sk, msg, size))
		state = TS_RING;
	if (state == TS_RING && ts_leave_ring(ch, peer, sk, msg))
		state = TS_DONE;
	if (state == TS_RING) {
		ret = ts_send_ring(ch, peer, sk, msg);
		if (ret == TS_SEND_TCP && ts_leave_ring(ch, peer, sk, msg))
			ret = ch->base->sendmsg(sk, msg, msg_data_left(msg));
	} else {
		ret = ch->base->sendmsg(sk, msg, size);
		if (ret > 0 && state == TS_STARTUP)
			ts_count(ch->tn, TS_C_STARTUP_BYTES, ret);
	}
	mutex_unlock(&ch->tx_lock);
	return ret;
}

/* ---- receive ------------------------------------------------------------- */

static bool ts_tcp_has_data(const struct sock *sk)
{
	return !skb_queue_empty_lockless(&sk->sk_receive_queue);
}

/* Ring bytes are next in stream order: the peer's boundary h is reached. */
static bool ts_gate_open(const struct ts_chan *ch, const struct sock *sk)
{
	return ts_started(ts_in_state(&ch->in)) &&
	       !before(READ_ONCE(tcp_sk(sk)->copied_seq), READ_ONCE(ch->in.h));
}

static bool ts_rcv_done(const struct sock *sk)
{
	return (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN) ||
	       sock_flag(sk, SOCK_DONE);
}

/*
 * What a peek found before it came up empty: it waits for a change, since
 * the bytes already there may all lie before its SO_PEEK_OFF offset.
 */
struct ts_seen {
	u32 rcv_nxt;
	unsigned long ring_used;
};

static void ts_seen_now(const struct ts_chan *ch, const struct sock *sk,
			struct ts_seen *seen)
{
	seen->rcv_nxt = READ_ONCE(tcp_sk(sk)->rcv_nxt);
	seen->ring_used = ts_ring_used(&ch->in);
}

/* Something for the receive loop to look at (new bytes only for a peek). */
static bool ts_recv_event(const struct ts_chan *ch, const struct sock *sk,
			  const struct ts_seen *seen)
{
	if (READ_ONCE(sk->sk_err) || ts_rcv_done(sk) || READ_ONCE(ch->retired))
		return true;
	if (seen)
		return READ_ONCE(tcp_sk(sk)->rcv_nxt) != seen->rcv_nxt ||
		       ts_ring_used(&ch->in) != seen->ring_used;
	return ts_tcp_has_data(sk) ||
	       (ts_gate_open(ch, sk) && ts_ring_used(&ch->in));
}

/* The socket's SO_BUSY_POLL / net.core.busy_read, else the module's default. */
static u64 ts_busy_budget_ns(const struct sock *sk)
{
	u32 us = 0;

#ifdef CONFIG_NET_RX_BUSY_POLL
	us = READ_ONCE(sk->sk_ll_usec);
#endif
	if (!us)
		us = READ_ONCE(ts_busy_poll_us);
	return (u64)min(us, 1000000U) * NSEC_PER_USEC;
}

static long ts_wait_data(struct ts_chan *ch, struct sock *sk, long timeo,
			 const struct ts_seen *seen)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);

	u64 budget = ts_busy_budget_ns(sk);

	if (budget) {
		u64 start = local_clock();

		/* Poll the ring directly: loopback and veth have no NAPI id. */
		while (!ts_recv_event(ch, sk, seen) && !need_resched() &&
		       !signal_pending(current) && local_clock() - start < budget)
			cpu_relax();
	}
	add_wait_queue(sk_sleep(sk), &wait);
	/* A hint for the peer's early wake-up: a stale value costs only time. */
	WRITE_ONCE(ch->rx_waiting, true);
	while (timeo && !signal_pending(current) &&
	       !ts_recv_event(ch, sk, seen))
		timeo = wait_woken(&wait, TASK_INTERRUPTIBLE, timeo);
	WRITE_ONCE(ch->rx_waiting, false);
	remove_wait_queue(sk_sleep(sk), &wait);
	return timeo;
}

static bool ts_at_urg_mark(const struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	return READ_ONCE(tp->urg_data) &&
	       READ_ONCE(tp->urg_seq) == READ_ONCE(tp->copied_seq);
}

/* Bytes TCP holds for us; a received FIN takes a sequence number, no byte. */
static u32 ts_tcp_unread(const struct sock *sk)
{
	u32 n = READ_ONCE(tcp_sk(sk)->rcv_nxt) - READ_ONCE(tcp_sk(sk)->copied_seq);

	if (n && (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN))
		n--;
	return n;
}

/*
 * MSG_PEEK (rx_lock held): TCP bytes below h, then ring bytes once every one
 * of those has been peeked, from the SO_PEEK_OFF offset when it is enabled.
 * Returns the bytes peeked, 0 when none is there yet, or an error.
 */
static int ts_peek(struct ts_chan *ch, TS_RECV_ARGS)
{
	struct ts_inbound *in = &ch->in;
	bool started = ts_started(ts_in_state(in));
	s32 below = INT_MAX, off = max(sk_peek_offset(sk, MSG_PEEK), 0);
	int n = 0, r;

	if (started)
		below = max_t(s32, READ_ONCE(in->h) - tcp_sk(sk)->copied_seq, 0);
	if (off < below) {
		if (!ts_tcp_has_data(sk))
			return 0;
		n = ts_base_recv(ch, sk, msg, min_t(size_t, len, below - off), flags);
		if (n <= 0)
			return n == -EAGAIN ? 0 : n;
		if (!started || off + n < below)
			return n;
	}
	r = ts_ring_read(in, &msg->msg_iter, len - n, MSG_PEEK, off + n - below);
	if (r > 0) {
		sk_peek_offset_fwd(sk, r);
		n += r;
	} else if (r < 0 && !n) {
		return r;
	}
	return n;
}

/*
 * Leave the consumer's lock; if a grow of our ring met us inside, wake the
 * producer to try again (it may be asleep, or polling for EPOLLOUT).
 */
static void ts_rx_unlock(struct ts_chan *ch)
{
	mutex_unlock(&ch->rx_lock);
	/* Unlock before the flag is read: pairs with ts_ring_grow()'s mb. */
	smp_mb();
	if (READ_ONCE(ch->in.grow_blocked)) {
		WRITE_ONCE(ch->in.grow_blocked, false);
		ts_wake_writer(ts_peer(ch));
	}
}

static int ts_recv_merge(struct ts_chan *ch, TS_RECV_ARGS)
{
	struct ts_inbound *in = &ch->in;
	long timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	const long timeo0 = timeo;
	int target = sock_rcvlowat(sk, flags & MSG_WAITALL, len);
	int tflags = (flags & ~MSG_WAITALL) | MSG_DONTWAIT;
	int copied = 0, err = 0;
	bool tcp_read = false, peek_last = false, drained;
	struct ts_seen seen;

	/* One consumer of the ring at a time; held only between waits. */
	mutex_lock(&ch->rx_lock);
	while (copied < len) {
		bool gate = ts_gate_open(ch, sk);
		bool tcp = ts_tcp_has_data(sk);
		int n;

		/* Before the look: what arrives after it counts as new. */
		if (flags & MSG_PEEK)
			ts_seen_now(ch, sk, &seen);

		/* An skb queued behind ring bytes (the FIN) shows them all. */
		smp_rmb();
		if (flags & MSG_PEEK) {
			n = ts_peek_recv(ch, sk, msg, len, tflags);
			if (n > 0) {
				copied = n;
				break;
			}
			if (n < 0) {
				err = n;
				break;
			}
		} else if (tcp && (!gate || !ts_ring_used(in))) {
			size_t want = len - copied;

			/*
			 * Below h: TCP bytes, never read past h.  At h: only the
			 * FIN can be queued, and it follows every ring byte.
			 */
			if (!gate && ts_started(ts_in_state(in)))
				want = min_t(size_t, want,
					     READ_ONCE(in->h) - tcp_sk(sk)->copied_seq);
			n = ts_base_recv(ch, sk, msg, want, tflags);
			tcp_read = true;
			if (n > 0) {
				copied += n;
				/* TCP stops at the urgent mark: so do we. */
				if (ts_at_urg_mark(sk))
					break;
				continue;
			}
			if (n < 0 && n != -EAGAIN) {
				if (!copied)
					err = n;
				break;
			}
		} else if (gate) {
			n = ts_ring_read(in, &msg->msg_iter, len - copied, flags, 0);
			if (n > 0) {
				copied += n;
				sk_peek_offset_bwd(sk, n);
				ts_count(ch->tn, TS_C_RING_BYTES_RX, n);
				drained = !ts_ring_used(in);
				ts_wake_writer_space(ts_peer(ch), drained);
				if (drained)
					ts_shrink_arm(ch);
				continue;
			}
			if (n < 0) {
				if (!copied)
					err = n;
				break;
			}
		}
		if (copied >= target)
			break;
		if (copied && (READ_ONCE(sk->sk_err) || ts_rcv_done(sk) ||
			       signal_pending(current)))
			break;
		if (READ_ONCE(sk->sk_err)) {
			err = sock_error(sk);
			break;
		}
		if (ts_rcv_done(sk)) {
			/* Shutdown seen before the ring is checked again. */
			smp_rmb();
			/*
			 * A peek looks once more now that every byte is
			 * visible, then ends: bytes it cannot reach (before
			 * SO_PEEK_OFF) make no progress, so retrying them
			 * would spin.
			 */
			if (flags & MSG_PEEK) {
				if (peek_last)
					break;
				peek_last = true;
				continue;
			}
			if (!ts_tcp_has_data(sk) &&
			    !(ts_gate_open(ch, sk) && ts_ring_used(in)))
				break;
			continue;
		}
		if (READ_ONCE(ch->retired))
			break;
		if (!timeo) {
			err = -EAGAIN;
			break;
		}
		if (signal_pending(current)) {
			err = sock_intr_errno(timeo0);
			break;
		}
		ts_rx_unlock(ch);
		timeo = ts_wait_data(ch, sk, timeo,
				     (flags & MSG_PEEK) ? &seen : NULL);
		mutex_lock(&ch->rx_lock);
	}
	/* TCP_INQ: TCP adds its cmsg when it was called; else ours counts all. */
	if (!tcp_read && tcp_sk(sk)->recvmsg_inq) {
		int inq = min_t(unsigned long, ts_tcp_unread(sk) + ts_ring_used(in),
				INT_MAX);

		put_cmsg(msg, SOL_TCP, TCP_CM_INQ, sizeof(inq), &inq);
	}
	ts_rx_unlock(ch);
	return copied ?: err;
}

/* Our receiver goes through the module from now on: the peer may hand off. */
static void ts_set_rx_ready(struct ts_chan *ch, struct sock *sk)
{
	if (sk->sk_socket)
		ts_ops_install(sk->sk_socket);
	WRITE_ONCE(ch->rx_ready, true);
}

static int ts_recvmsg(TS_RECV_ARGS)
{
	struct ts_chan *ch = ts_chan_of(sk);
	int state;

	/* Error queue and urgent data are TCP's alone. */
	if ((flags & (MSG_ERRQUEUE | MSG_OOB)) || READ_ONCE(ch->retired) ||
	    !ts_peer(ch))
		return ts_base_recv(ch, sk, msg, len, flags);
	if (!READ_ONCE(ch->rx_ready))
		ts_set_rx_ready(ch, sk);
	state = ts_in_state(&ch->in);
	/* The ring will never carry anything: exactly TCP. */
	if (state == TS_NEVER ||
	    (state == TS_STARTUP && READ_ONCE(ch->in.writer_done)))
		return ts_base_recv(ch, sk, msg, len, flags);
#ifdef TS_RECVMSG_ADDR_LEN
	return ts_recv_merge(ch, sk, msg, len, flags, addr_len);
#else
	return ts_recv_merge(ch, sk, msg, len, flags);
#endif
}

/* ---- poll, ioctl, options ------------------------------------------------- */

static bool ts_sock_is_readable(struct sock *sk)
{
	struct ts_chan *ch = ts_chan_of(sk);

	if (!READ_ONCE(ch->retired) && ts_gate_open(ch, sk) &&
	    ts_ring_used(&ch->in) >= max(READ_ONCE(sk->sk_rcvlowat), 1))
		return true;
	return ch->base->sock_is_readable ? ch->base->sock_is_readable(sk) : false;
}

/* Writability for poll and write-space wake-ups: ring space once handed off. */
static bool ts_stream_memory_free(const struct sock *sk, int wake)
{
	/*
	 * The peer's wake-ups reach here without our socket's lock, so a
	 * concurrent destroy may have put the base proto back: use what is
	 * there now.  Our channel itself stays (the peer's link holds it).
	 */
	const struct proto *prot = READ_ONCE(sk->sk_prot);
	struct ts_chan *ch, *peer;

	if (prot->stream_memory_free != ts_stream_memory_free)
		return prot->stream_memory_free ?
		       prot->stream_memory_free(sk, wake) : true;
	ch = container_of(prot, struct ts_chan, proto);
	peer = ts_peer(ch);

	if (peer && !READ_ONCE(ch->retired) &&
	    ts_in_state(&peer->in) == TS_RING &&
	    !READ_ONCE(peer->in.reader_gone))
		return ts_ring_writable(&peer->in);
	return ch->base->stream_memory_free ?
	       ch->base->stream_memory_free(sk, wake) : true;
}

static int ts_ioctl(struct sock *sk, int cmd, int *karg)
{
	struct ts_chan *ch = ts_chan_of(sk);
	struct ts_chan *peer = ts_peer(ch);
	int ret = ch->base->ioctl(sk, cmd, karg);
	unsigned long n = 0;

	if (ret || READ_ONCE(ch->retired) || !peer)
		return ret;
	if (cmd == SIOCINQ && ts_started(ts_in_state(&ch->in)))
		n = ts_ring_used(&ch->in);
	else if (cmd == SIOCOUTQ && ts_started(ts_in_state(&peer->in)))
		n = READ_ONCE(peer->in.head) - READ_ONCE(peer->in.tail);
	if (n)
		*karg = min_t(unsigned long, (unsigned long)*karg + n, INT_MAX);
	return ret;
}

static int ts_setsockopt(struct sock *sk, int level, int optname,
			 sockptr_t optval, unsigned int optlen)
{
	struct ts_chan *ch = ts_chan_of(sk);
	const struct proto *base = ch->base;

	/*
	 * A ULP (kTLS) or repair mode builds on, or bypasses, sk_prot.  A
	 * never-paired socket gives the module up first; a paired one refuses.
	 */
	if (level == SOL_TCP && (optname == TCP_ULP || optname == TCP_REPAIR) &&
	    !READ_ONCE(ch->retired) && !ts_try_detach(ch)) {
		ts_count(ch->tn, TS_C_ULP_REFUSED, 1);
		return -EOPNOTSUPP;
	}
	return base->setsockopt(sk, level, optname, optval, optlen);
}

/* ---- teardown ------------------------------------------------------------ */

static void ts_close(struct sock *sk, long timeout)
{
	struct ts_chan *ch = ts_chan_of(sk);

	ts_unpark(ch);
	/*
	 * Unread ring bytes count as unread data: TCP answers with a reset.
	 * That close goes through ts_disconnect(), which stops the pair
	 * without waking the peer: the reset does, with TCP's error.
	 */
	if (!READ_ONCE(ch->retired) && ts_ring_used(&ch->in)) {
		sock_set_flag(sk, SOCK_LINGER);
		WRITE_ONCE(sk->sk_lingertime, 0);
		ch->base->close(sk, timeout);
		return;
	}
	ts_stop(ch, true);
	ch->base->close(sk, timeout);
}

static int ts_disconnect(struct sock *sk, int flags)
{
	struct ts_chan *ch = ts_chan_of(sk);

	/* The connection is reset; a reconnect of this socket is plain TCP. */
	ts_unpark(ch);
	ts_stop(ch, false);
	WRITE_ONCE(ch->retired, true);
	return ch->base->disconnect(sk, flags);
}

static void ts_unhash(struct sock *sk)
{
	struct ts_chan *ch = ts_chan_of(sk);

	/* TCP_CLOSE: no new ring bytes either way; unread ones stay readable. */
	ts_unpark(ch);
	ts_stop(ch, true);
	ch->base->unhash(sk);
}

/*
 * No bind or listen after a disconnect: a listener's children would inherit
 * sk_prot, i.e. this channel's copy.
 */
static int ts_get_port(struct sock *sk, unsigned short snum)
{
	return -EADDRINUSE;
}

static void ts_destroy(struct sock *sk)
{
	struct ts_chan *ch = ts_chan_of(sk);
	struct ts_chan *peer = ts_peer(ch);

	ts_unpark(ch);
	ts_stop(ch, true);
	ts_net_del(ch);
	if (peer)
		ts_pair_ended(ch, peer);
	/* The base from here on: inet_csk_destroy_sock() reads sk_prot after. */
	sock_replace_proto(sk, (struct proto *)ch->base);
	ch->base->destroy(sk);
	if (peer) {
		sock_put(peer->sk);
		ts_chan_put(peer);
	}
	ts_chan_put(ch);
}

/* ---- splice_read through a per-family copy of the socket's proto_ops ------ */

/* A copy of a socket family's proto_ops with splice_read replaced. */
struct ts_ops {
	const struct proto_ops *base;
	const struct proto_ops *ops;
};

static struct ts_ops ts_ops_tab[4];
static DEFINE_SPINLOCK(ts_ops_lock);	/* installs may come from any socket */

static ssize_t ts_splice_read(struct socket *sock, loff_t *ppos,
			      struct pipe_inode_info *pipe, size_t len,
			      unsigned int flags)
{
	const struct proto_ops *base = NULL;
	struct sock *sk = sock->sk;
	int i;

	/* Through read_iter, i.e. our recvmsg, so ring bytes come in order. */
	if (sk && ts_is_ours(sk) && !READ_ONCE(ts_chan_of(sk)->retired))
		return copy_splice_read(sock->file, ppos, pipe, len, flags);
	/* The table only grows, and an entry never changes once set. */
	for (i = 0; i < ARRAY_SIZE(ts_ops_tab); i++)
		if (READ_ONCE(ts_ops_tab[i].ops) == sock->ops)
			base = ts_ops_tab[i].base;
	return base->splice_read(sock, ppos, pipe, len, flags);
}

static const struct proto_ops *ts_ops_copy(const struct proto_ops *cur)
{
	/* Written here once, read-only after it is published. */
	struct proto_ops *copy = kmemdup(cur, sizeof(const struct proto_ops),
					 GFP_KERNEL);

	if (copy)
		copy->splice_read = ts_splice_read;
	return copy;
}

void ts_ops_install(struct socket *sock)
{
	const struct proto_ops *cur = READ_ONCE(sock->ops), *ops = NULL;
	const struct proto_ops *fresh;
	int i;

	if (!cur || cur->splice_read == ts_splice_read)
		return;
	fresh = ts_ops_copy(cur);
	spin_lock(&ts_ops_lock);
	for (i = 0; i < ARRAY_SIZE(ts_ops_tab); i++) {
		if (ts_ops_tab[i].base == cur) {
			ops = ts_ops_tab[i].ops;
			break;
		}
		if (!ts_ops_tab[i].base && fresh) {
			ts_ops_tab[i].base = cur;
			WRITE_ONCE(ts_ops_tab[i].ops, fresh);
			ops = fresh;
			fresh = NULL;
			break;
		}
	}
	spin_unlock(&ts_ops_lock);
	kfree(fresh);
	/* Without a slot, splice() stays TCP's and never sees ring bytes. */
	if (ops)
		WRITE_ONCE(sock->ops, ops);
}

void ts_proto_init(struct ts_chan *ch)
{
	struct proto *p = &ch->proto;

	*p = *ch->base;
	p->sendmsg = ts_sendmsg;
	p->recvmsg = ts_recvmsg;
	p->sock_is_readable = ts_sock_is_readable;
	p->stream_memory_free = ts_stream_memory_free;
	p->ioctl = ts_ioctl;
	p->setsockopt = ts_setsockopt;
	p->close = ts_close;
	p->disconnect = ts_disconnect;
	p->unhash = ts_unhash;
	p->get_port = ts_get_port;
	p->destroy = ts_destroy;
	/* A sockmap would replace sk_prot behind our back: refuse insertion. */
	p->psock_update_sk_prot = NULL;
}

void ts_proto_exit(void)
{
	int i;

	/* Only at module exit: no socket can point at a copy any more. */
	for (i = 0; i < ARRAY_SIZE(ts_ops_tab); i++)
		kfree(ts_ops_tab[i].ops);
}
