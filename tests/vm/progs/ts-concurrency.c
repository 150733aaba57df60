// SPDX-License-Identifier: GPL-2.0
/*
 * ts-concurrency: one spliced socket used by several writers (threads, or
 * processes sharing it after fork()) or several readers at once.  Nothing may
 * be lost, duplicated or overwritten, and each send() of a record arrives as a
 * whole record.
 *
 * Writer w sends bytes whose top bit is w: the reader splits the stream back
 * into each writer's own sequence, which must be exact whatever the
 * interleaving, and checks that writers alternate only at record boundaries.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tsutil.h"

#define RECORD	100
#define RECORDS 5000

static unsigned char writer_byte(uint64_t seed, int w, uint64_t pos)
{
	unsigned char b;

	ts_fill(seed ^ (uint64_t)(w + 1), pos, &b, 1);
	return (unsigned char)((w << 7) | (b & 0x7f));
}

struct writer {
	int fd, w;
	uint64_t seed;
};

static void *write_records(void *arg)
{
	struct writer *a = arg;
	unsigned char rec[RECORD];

	for (uint64_t i = 0; i < RECORDS; i++) {
		if (i % 64 == 0)
			sched_yield(); /* let the other writer in */
		for (int j = 0; j < RECORD; j++)
			rec[j] = writer_byte(a->seed, a->w, i * RECORD + j);
		ssize_t n = send(a->fd, rec, RECORD, MSG_NOSIGNAL);

		if (n != RECORD)
			ts_fail("writer %d: send of record %llu returned %zd: %m", a->w,
				(unsigned long long)i, n);
	}
	return NULL;
}

/* Reads to EOF, demultiplexing the two writers. */
static void check_records(int fd, uint64_t seed)
{
	uint64_t count[2] = {0, 0}, total = 0;
	int cur = -1, switches = 0;
	unsigned char *buf = malloc(65536);

	for (;;) {
		ssize_t n = recv(fd, buf, 65536, 0);

		if (n < 0)
			ts_fail("recv after %llu bytes: %m", (unsigned long long)total);
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			int w = buf[i] >> 7;

			if (w != cur) {
				if (cur >= 0 && count[cur] % RECORD)
					ts_fail("writer %d's record %llu cut after %llu bytes by "
						"writer "
						"%d (stream byte %llu)",
						cur, (unsigned long long)(count[cur] / RECORD),
						(unsigned long long)(count[cur] % RECORD), w,
						(unsigned long long)(total + i));
				cur = w;
				switches++;
			}
			if (count[w] >= (uint64_t)RECORDS * RECORD)
				ts_fail("writer %d: more bytes than it sent (stream byte %llu)", w,
					(unsigned long long)(total + i));
			if (buf[i] != writer_byte(seed, w, count[w]))
				ts_fail("writer %d: byte %llu (record %llu) corrupt at stream byte "
					"%llu",
					w, (unsigned long long)count[w],
					(unsigned long long)(count[w] / RECORD),
					(unsigned long long)(total + i));
			count[w]++;
		}
		total += n;
	}
	for (int w = 0; w < 2; w++)
		TS_ASSERT(count[w] == (uint64_t)RECORDS * RECORD,
			  "writer %d: %llu of %llu bytes arrived", w, (unsigned long long)count[w],
			  (unsigned long long)RECORDS * RECORD);
	ts_log("%d switches between writers", switches);
	ts_note("2 x %d records intact", RECORDS);
	free(buf);
}

static void scen_fork_writers(struct ts_run *r)
{
	pid_t pid[2];
	int c, s, st;

	ts_pair(&c, &s);
	/* The writers also race for the handoff to the ring. */
	for (int w = 0; w < 2; w++) {
		pid[w] = fork();
		if (pid[w] == 0) {
			struct writer a = {c, w, r->seed};

			close(s);
			write_records(&a);
			_exit(0);
		}
	}
	close(c); /* EOF once both writers exited */
	check_records(s, r->seed);
	for (int w = 0; w < 2; w++) {
		TS_SYS(waitpid(pid[w], &st, 0));
		TS_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer process %d failed", w);
	}
	close(s);
}

static void t_fork_writers(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_fork_writers});
}

struct closer {
	unsigned long *t;
	int fd;
};

static void *join_and_shut(void *arg)
{
	struct closer *k = arg;

	ts_join(k->t[0]);
	ts_join(k->t[1]);
	shutdown(k->fd, SHUT_WR);
	return NULL;
}

static void scen_thread_writers(struct ts_run *r)
{
	struct writer a[2];
	unsigned long t[2];
	int c, s;

	ts_pair(&c, &s);
	for (int w = 0; w < 2; w++) {
		a[w] = (struct writer){c, w, r->seed};
		t[w] = ts_spawn(write_records, &a[w]);
	}
	/* The last writer to finish shuts down: EOF for the reader. */
	struct closer k = {t, c};
	unsigned long tk = ts_spawn(join_and_shut, &k);

	check_records(s, r->seed);
	ts_join(tk);
	close(c);
	close(s);
}

static void t_thread_writers(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_thread_writers});
}

/*
 * Two readers: each recv() must return a contiguous slice of the stream.
 * Word k of the stream carries k in its low 40 bits, so a slice of 16 bytes
 * or more tells where it starts; the slices must tile the stream exactly.
 */
static uint64_t pos_word(uint64_t seed, uint64_t k)
{
	return k | (ts_mix64(seed ^ k) << 40);
}

static unsigned char pos_byte(uint64_t seed, uint64_t off)
{
	return (unsigned char)(pos_word(seed, off / 8) >> (8 * (off % 8)));
}

struct slice {
	uint64_t start, len; /* start UINT64_MAX: too short to place */
};

struct readers {
	int fd;
	uint64_t seed, len;
	pthread_mutex_t lock;
	struct slice *sl;
	size_t n, cap;
};

static uint64_t place(uint64_t seed, const unsigned char *b, size_t n)
{
	for (size_t shift = 0; shift < 8 && shift + 8 <= n; shift++) {
		uint64_t w = 0;

		for (int i = 7; i >= 0; i--)
			w = (w << 8) | b[shift + i];
		uint64_t k = w & ((1ULL << 40) - 1);

		if (pos_word(seed, k) != w || k * 8 < shift)
			continue;
		uint64_t start = k * 8 - shift;
		size_t i = 0;

		while (i < n && b[i] == pos_byte(seed, start + i))
			i++;
		if (i == n)
			return start;
	}
	return UINT64_MAX;
}

static void *reader_thread(void *arg)
{
	struct readers *a = arg;
	unsigned char buf[3000];

	for (;;) {
		ssize_t n = recv(a->fd, buf, sizeof(buf), 0);

		if (n < 0)
			ts_fail("reader: recv: %m");
		if (n == 0)
			return NULL;
		uint64_t start = n >= 16 ? place(a->seed, buf, n) : UINT64_MAX;

		if (n >= 16 && start == UINT64_MAX)
			ts_fail("reader: a slice of %zd bytes is not a contiguous piece of the "
				"stream",
				n);
		pthread_mutex_lock(&a->lock);
		if (a->n == a->cap) {
			a->cap = a->cap ? 2 * a->cap : 4096;
			a->sl = realloc(a->sl, a->cap * sizeof(*a->sl));
		}
		a->sl[a->n++] = (struct slice){start, (uint64_t)n};
		pthread_mutex_unlock(&a->lock);
	}
}

static int slice_cmp(const void *x, const void *y)
{
	const struct slice *a = x, *b = y;

	return a->start < b->start ? -1 : a->start > b->start;
}

static void *stream_writer(void *arg)
{
	struct readers *a = arg;
	unsigned char *buf = malloc(50000);
	struct ts_rng g = {a->seed};
	uint64_t off = 0;
	int fd = a->fd;

	while (off < a->len) {
		size_t n = ts_rand_range(&g, 1, 50000);

		if (n > a->len - off)
			n = a->len - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pos_byte(a->seed, off + i);
		ts_write_all(fd, buf, n);
		off += n;
	}
	shutdown(fd, SHUT_WR);
	free(buf);
	return NULL;
}

static void scen_two_readers(struct ts_run *r)
{
	struct readers a = {.seed = r->seed, .len = 3u << 20};
	struct readers wr;
	unsigned long t[3];
	uint64_t at = 0, unplaced = 0, gaps = 0;
	int c, s;

	pthread_mutex_init(&a.lock, NULL);
	ts_pair(&c, &s);
	a.fd = s;
	wr = a;
	wr.fd = c;
	t[0] = ts_spawn(stream_writer, &wr);
	t[1] = ts_spawn(reader_thread, &a);
	t[2] = ts_spawn(reader_thread, &a);
	for (int i = 0; i < 3; i++)
		ts_join(t[i]);
	qsort(a.sl, a.n, sizeof(*a.sl), slice_cmp);
	for (size_t i = 0; i < a.n; i++) {
		if (a.sl[i].start == UINT64_MAX) {
			unplaced += a.sl[i].len;
			continue;
		}
		if (a.sl[i].start < at)
			ts_fail("bytes %llu.. delivered twice", (unsigned long long)a.sl[i].start);
		gaps += a.sl[i].start - at;
		at = a.sl[i].start + a.sl[i].len;
	}
	gaps += a.len - at;
	TS_ASSERT(at <= a.len, "more bytes than sent");
	TS_ASSERT(gaps == unplaced, "%llu bytes missing", (unsigned long long)(gaps - unplaced));
	ts_note("two readers got %llu bytes as contiguous slices", (unsigned long long)a.len);
	free(a.sl);
	close(c);
	close(s);
}

static void t_two_readers(void)
{
	ts_differential(&(struct ts_diff){.fn = scen_two_readers});
}

static const struct ts_test tests[] = {
	{"fork-writers", t_fork_writers, 0},
	{"thread-writers", t_thread_writers, 0},
	{"two-readers", t_two_readers, 0},
};

int main(int argc, char **argv)
{
	return ts_main(argc, argv, 800, tests, sizeof(tests) / sizeof(tests[0]));
}
