// SPDX-License-Identifier: GPL-2.0
/*
 * tcp-splice: the per-direction byte ring.
 *
 * Single producer (the peer's sender, under its tx_lock), single consumer
 * (the owner's receiver, under its rx_lock).  Cursors run freely and are
 * masked on use, so the whole buffer is usable.  Rings start small and grow
 * (x4, up to ring_max_kb) while the consumer is idle, so an idle connection
 * costs little and a bulk stream still gets a large ring.
 */
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/memcontrol.h>
#include <linux/page_counter.h>
#include <linux/sizes.h>

#include "tcp_splice.h"

#define TS_RING_MIN	4096U
#define TS_RING_LIMIT	(64U << 20)	/* ring_max_kb's top, 65536 KiB */
#define TS_RING_GFP	(GFP_KERNEL_ACCOUNT | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

atomic_long_t ts_ring_live;
atomic_long_t ts_ring_bytes;

static u32 ts_ring_max(void)
{
	u32 max = clamp_t(u32, READ_ONCE(ts_ring_max_kb), 4, TS_RING_LIMIT / 1024) * 1024;

	return rounddown_pow_of_two(max);
}

static unsigned long ts_ring_cap(void)
{
	unsigned long cap = READ_ONCE(ts_ring_mem_max_kb);

	if (!cap)	/* default: an eighth of memory */
		return (totalram_pages() << PAGE_SHIFT) >> 3;
	return cap * 1024;
}

/* Consumer side: bytes readable.  Acquire pairs with the producer's release. */
unsigned long ts_ring_used(const struct ts_inbound *in)
{
	/* Acquire head: the bytes it covers are visible after it. */
	return smp_load_acquire(&in->head) - READ_ONCE(in->tail);
}

/*
 * Any side: is at least 1/@div of the ring free (@div 0: at least one byte)?
 * Poll paths call this concurrently with ts_ring_grow(): RCU keeps the
 * buffer they look at alive.
 */
bool ts_ring_has_space(const struct ts_inbound *in, u32 div)
{
	const struct ts_buf *b;
	unsigned long used;
	bool ret = true;

	rcu_read_lock();
	b = rcu_dereference(in->buf);
	if (b) {
		/* Acquire tail: the consumer is done with the bytes before it. */
		used = READ_ONCE(in->head) - smp_load_acquire(&in->tail);
		ret = b->size - used >= (div ? max(b->size / div, 1U) : 1U);
	}
	rcu_read_unlock();
	return ret;
}

/* Any side, for listings: the current buffer size. */
u32 ts_ring_size(const struct ts_inbound *in)
{
	const struct ts_buf *b;
	u32 size;

	rcu_read_lock();
	b = rcu_dereference(in->buf);
	size = b ? b->size : 0;
	rcu_read_unlock();
	return size;
}

/*
 * A ring may not take the last of its cgroup's memory: past a limit, the
 * cgroup's own TCP buffers would find none and its OOM killer would run.
 * Each limited level up to the root keeps max(1/16 of its limit, 1 MiB) free.
 */
static bool ts_memcg_room(struct mem_cgroup *memcg, u32 size)
{
#ifdef CONFIG_MEMCG
	unsigned long pages = size >> PAGE_SHIFT, max, keep;

	/* sk_memcg holds a css reference for the socket's lifetime. */
	for (; memcg; memcg = parent_mem_cgroup(memcg)) {
		max = READ_ONCE(memcg->memory.max);
		if (max == PAGE_COUNTER_MAX)
			continue;
		keep = max_t(unsigned long, max / 16, SZ_1M >> PAGE_SHIFT);
		if (page_counter_read(&memcg->memory) + pages + keep > max)
			return false;
	}
#endif
	return true;
}

/* @limits: a shrink, which frees more than it takes, skips the caps. */
static struct ts_buf *ts_buf_alloc(struct ts_chan *dst, u32 size, bool limits)
{
	struct mem_cgroup *memcg = READ_ONCE(dst->sk->sk_memcg), *old;
	struct ts_buf *b;

	if (limits && !ts_memcg_room(memcg, size)) {
		ts_count(dst->tn, TS_C_RING_ALLOC_FAIL, 1);
		return NULL;
	}
	if (atomic_long_add_return(size, &ts_ring_bytes) > ts_ring_cap() && limits) {
		atomic_long_sub(size, &ts_ring_bytes);
		ts_count(dst->tn, TS_C_RING_CAP_HITS, 1);
		return NULL;
	}
	/*
	 * Charge the ring to the memory cgroup of the socket that owns it.
	 * RETRY_MAYFAIL: at the cgroup's limit the ring fails (TCP carries on)
	 * instead of the OOM killer picking one of its tasks.
	 */
	old = set_active_memcg(memcg);
	b = kmalloc(sizeof(*b), TS_RING_GFP);
	if (b)
		b->data = kvmalloc(size, TS_RING_GFP);
	set_active_memcg(old);
	if (!b || !b->data) {
		kfree(b);
		atomic_long_sub(size, &ts_ring_bytes);
		ts_count(dst->tn, TS_C_RING_ALLOC_FAIL, 1);
		return NULL;
	}
	b->size = size;
	atomic_long_inc(&ts_ring_live);
	return b;
}

static void ts_buf_free_now(struct ts_buf *b)
{
	atomic_long_sub(b->size, &ts_ring_bytes);
	atomic_long_dec(&ts_ring_live);
	/* kvfree() defers a vfree() itself when called in softirq. */
	kvfree(b->data);
	kfree(b);
}

static void ts_buf_free_rcu(struct rcu_head *head)
{
	/* Queued before the channel's own free: exit's rcu_barrier() waits. */
	ts_buf_free_now(container_of(head, struct ts_buf, rcu));
}

/* Producer, process context, before the first ring byte: the first buffer. */
int ts_ring_alloc(struct ts_chan *dst, size_t hint)
{
	u32 size = clamp_t(size_t, hint, TS_RING_MIN, ts_ring_max());
	struct ts_buf *b;

	b = ts_buf_alloc(dst, roundup_pow_of_two(size), true);
	if (!b)
		return -ENOMEM;
	/* Published before the handoff's store-release of the state. */
	rcu_assign_pointer(dst->in.buf, b);
	return 0;
}

/*
 * Any side: would the producer's next attempt on a full ring grow it?  Poll
 * and the producer's waits count that as space, since a send makes it: else
 * a writer that waits for EPOLLOUT would wait for good on a small ring whose
 * reader has stopped, where a TCP sender still has its buffer to fill.
 */
bool ts_ring_may_grow(const struct ts_inbound *in)
{
	return ts_ring_size(in) < ts_ring_max() &&
	       !READ_ONCE(in->grow_failed) && !READ_ONCE(in->grow_blocked);
}

/* Any side: poll's writability, a quarter free or a grow to come. */
bool ts_ring_writable(const struct ts_inbound *in)
{
	return ts_ring_has_space(in, 4) || ts_ring_may_grow(in);
}

/*
 * Any side: could the ring grow at all, with ring_max_kb raised to its top?
 * A full ring below that is looked at again later (see ts_persist_work()).
 */
bool ts_ring_below_limit(const struct ts_inbound *in)
{
	return ts_ring_size(in) < TS_RING_LIMIT;
}

/*
 * Producer, with its tx_lock, when the ring is full: if the consumer is not
 * inside a receive call right now (trylock of its rx_lock), move the unread
 * bytes into a buffer four times the size.  Both ends are excluded, so a plain
 * pointer swap is safe; the mutex orders it for the consumer's next call.
 * A consumer in the way is told (grow_blocked) and wakes us when it leaves.
 */
bool ts_ring_grow(struct ts_chan *dst)
{
	struct ts_inbound *in = &dst->in;
	/* Only the producer (us) writes the pointer, or a shrink, with our lock. */
	struct ts_buf *old = rcu_dereference_protected(in->buf, 1), *new;
	unsigned long pos;
	u32 size;

	if (!old || old->size >= ts_ring_max())
		return false;
	if (!mutex_trylock(&dst->rx_lock)) {
		WRITE_ONCE(in->grow_blocked, true);
		/* Flag before the second look: pairs with ts_rx_unlock()'s mb. */
		smp_mb();
		if (!mutex_trylock(&dst->rx_lock))
			return false;
	}
	WRITE_ONCE(in->grow_blocked, false);
	size = min(old->size * 4, ts_ring_max());
	new = ts_buf_alloc(dst, size, true);
	WRITE_ONCE(in->grow_failed, !new);
	if (!new) {
		mutex_unlock(&dst->rx_lock);
		return false;
	}
	for (pos = in->tail; pos != in->head;) {
		u32 o = pos & (old->size - 1), n = pos & (new->size - 1);
		u32 len = min3((unsigned long)(old->size - o),
			       (unsigned long)(new->size - n), in->head - pos);

		memcpy(new->data + n, old->data + o, len);
		pos += len;
	}
	rcu_assign_pointer(in->buf, new);
	mutex_unlock(&dst->rx_lock);
	/* After a grace period: poll paths may still read the old one. */
	call_rcu(&old->rcu, ts_buf_free_rcu);
	ts_count(dst->tn, TS_C_RING_GROWS, 1);
	return true;
}

/* Any side: has the ring grown beyond its first size? */
bool ts_ring_shrinkable(const struct ts_inbound *in)
{
	return ts_ring_size(in) > TS_RING_MIN;
}

/*
 * Work item of the consumer (@dst), process context: a ring found empty,
 * which held less than TS_RING_MIN at every read since the last look (peak),
 * goes back to that size.  Both ends must be out of the way, in the
 * producer-then-consumer order of ts_ring_grow(): a trylock that fails means
 * that end is in a call right now, and the item looks again later.
 */
enum ts_shrink ts_ring_shrink(struct ts_chan *dst, struct ts_chan *src)
{
	struct ts_inbound *in = &dst->in;
	struct ts_buf *old, *new;
	bool swapped = false;

	/* Not empty (a writer may be blocked on it): the next drain asks. */
	if (READ_ONCE(in->head) != READ_ONCE(in->tail))
		return TS_SHRINK_BUSY;
	if (READ_ONCE(in->peak) >= TS_RING_MIN) {
		/* Busy lately: measure afresh (the consumer's field). */
		if (mutex_trylock(&dst->rx_lock)) {
			WRITE_ONCE(in->peak, 0);
			mutex_unlock(&dst->rx_lock);
		}
		return TS_SHRINK_AGAIN;
	}
	/* Allocated before the locks: reclaim must not stall both ends. */
	new = ts_buf_alloc(dst, TS_RING_MIN, false);
	if (!new)
		return TS_SHRINK_AGAIN;
	if (!mutex_trylock(&src->tx_lock)) {
		ts_buf_free_now(new);
		return TS_SHRINK_AGAIN;
	}
	if (!mutex_trylock(&dst->rx_lock)) {
		mutex_unlock(&src->tx_lock);
		ts_buf_free_now(new);
		return TS_SHRINK_AGAIN;
	}
	/* Both locks held: neither end can touch the pointer or the cursors. */
	old = rcu_dereference_protected(in->buf, 1);
	if (old && old->size > TS_RING_MIN && in->state == TS_RING &&
	    in->head == in->tail && in->peak < TS_RING_MIN) {
		/* The producer's cached tail must not lag by more than 4 KiB. */
		in->tail_seen = in->tail;
		WRITE_ONCE(in->grow_failed, false);
		rcu_assign_pointer(in->buf, new);
		swapped = true;
	}
	mutex_unlock(&dst->rx_lock);
	mutex_unlock(&src->tx_lock);
	if (!swapped) {
		ts_buf_free_now(new);
		return TS_SHRINK_BUSY;
	}
	/* After a grace period: poll paths may still read the old one. */
	call_rcu(&old->rcu, ts_buf_free_rcu);
	ts_count(dst->tn, TS_C_RING_SHRINKS, 1);
	return TS_SHRINK_DONE;
}

/* Producer: copy up to @len bytes in; 0 when full, -EFAULT on a fault at 0. */
ssize_t ts_ring_write(struct ts_inbound *in, struct iov_iter *from, size_t len)
{
	/* The producer owns the pointer (tx_lock). */
	struct ts_buf *b = rcu_dereference_protected(in->buf, 1);
	unsigned long head = in->head;
	size_t space, n, off, first, c;

	space = b->size - (head - in->tail_seen);
	if (space < len) {
		/* Refresh the cached tail only when it looks full. */
		in->tail_seen = smp_load_acquire(&in->tail);
		space = b->size - (head - in->tail_seen);
	}
	n = min(len, space);
	if (!n)
		return 0;
	off = head & (b->size - 1);
	first = min_t(size_t, n, b->size - off);
	c = copy_from_iter(b->data + off, first, from);
	if (c == first && n > first)
		c += copy_from_iter(b->data, n - first, from);
	if (!c)
		return -EFAULT;
	/* Payload before head: pairs with the consumer's acquire of head. */
	smp_store_release(&in->head, head + c);
	in->bytes_in += c;
	return c;
}

/*
 * Consumer: copy (or peek, or discard with MSG_TRUNC) up to @len bytes; a
 * peek may start @skip bytes in.
 */
ssize_t ts_ring_read(struct ts_inbound *in, struct iov_iter *to, size_t len,
		     int flags, size_t skip)
{
	unsigned long tail = in->tail;
	/* Acquire head before reading the payload it covers. */
	unsigned long avail = smp_load_acquire(&in->head) - tail;
	/* Stable under rx_lock: a grow takes it, a first buffer precedes head. */
	struct ts_buf *b = rcu_dereference_protected(in->buf, 1);
	size_t n, off, first, c;

	if (skip >= avail)
		return 0;
	avail -= skip;
	tail += skip;
	n = min_t(size_t, len, avail);
	if (!n)
		return 0;
	if (flags & MSG_TRUNC) {
		c = n;
	} else {
		off = tail & (b->size - 1);
		first = min_t(size_t, n, b->size - off);
		c = copy_to_iter(b->data + off, first, to);
		if (c == first && n > first)
			c += copy_to_iter(b->data, n - first, to);
		if (!c)
			return -EFAULT;
	}
	if (!(flags & MSG_PEEK)) {
		/* For the shrink: the fill is highest just before a read. */
		if (avail > in->peak)
			WRITE_ONCE(in->peak, min_t(unsigned long, avail, U32_MAX));
		/* Read before release: the producer may reuse the bytes after it. */
		smp_store_release(&in->tail, tail + c);
		/* Also read, as hints, by the peer's early wake-up. */
		WRITE_ONCE(in->bytes_out, in->bytes_out + c);
		if (unlikely(in->reader != task_pid_nr(current)))
			WRITE_ONCE(in->reader, task_pid_nr(current));
	}
	return c;
}

/* Final free, after the channel's grace period: nobody can reach the ring. */
void ts_ring_free(struct ts_inbound *in)
{
	struct ts_buf *b = rcu_dereference_protected(in->buf, 1);

	if (b)
		ts_buf_free_now(b);
	RCU_INIT_POINTER(in->buf, NULL);
}
