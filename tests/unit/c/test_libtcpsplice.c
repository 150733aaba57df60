// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of libtcpsplice's error paths (src/libtcpsplice/tcpsplice.c),
 * without the tcp_splice module: the library's test hook points it at a
 * device path of the test's own.
 *
 *   test_libtcpsplice
 *
 * - no device: every call fails with ENODEV, leaves its outputs alone, and
 *   the next call tries the open again;
 * - a regular file as the device: the ioctl's ENOTTY is what the calls return;
 * - other open errors (a directory: EISDIR) are passed through;
 * - a drain that is no descriptor is EBADF (never the ioctl's unsplice);
 * - threads racing on the first call leave one descriptor open, close on exec.
 * The library keeps the device open for the life of the process, so each case
 * runs in a child of its own.  Prints one "PASS name" or "FAIL name: why" line
 * per case; exits 1 on a failure.
 */
#define _GNU_SOURCE /* asprintf */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../../src/libtcpsplice/internal.h"
#include "../../../src/libtcpsplice/tcpsplice.h"

#define NTHREADS 16

static char tmpdir[] = "/tmp/test_libtcpsplice.XXXXXX";
/* The first failure of the running case (in the child). */
static char why[512];

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok || why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
}

/* rc, errno of a call against the expected -1 and errno @want. */
static void check_err(const char *call, int rc, int err, int want)
{
	check(rc == -1 && err == want, "%s: returned %d, errno %s, expected -1 with %s", call, rc,
	      strerrorname_np(err) ? strerrorname_np(err) : "?", strerrorname_np(want));
}

/* A connected pair of sockets to splice: what they are does not matter here. */
static void sockets(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(2);
	}
}

/* Every call fails with @want; outputs of tcpsplice_moved() are left alone. */
static void all_calls_fail(int want)
{
	uint64_t bytes = 42;
	bool active = true;
	int sv[2], rc;

	sockets(sv);
	errno = 0;
	rc = tcpsplice(sv[0], sv[1], 0, 0);
	check_err("tcpsplice", rc, errno, want);
	errno = 0;
	rc = tcpsplice(sv[0], sv[1], 1 << 20, 5000000);
	check_err("tcpsplice with max and idle", rc, errno, want);
	errno = 0;
	rc = tcpunsplice(sv[0]);
	check_err("tcpunsplice", rc, errno, want);
	errno = 0;
	rc = tcpsplice_moved(sv[0], &bytes, &active);
	check_err("tcpsplice_moved", rc, errno, want);
	check(bytes == 42 && active, "tcpsplice_moved changed its outputs on failure");
	errno = 0;
	rc = tcpsplice_moved(sv[0], &bytes, NULL);
	check_err("tcpsplice_moved(active NULL)", rc, errno, want);
	errno = 0;
	rc = tcpsplice_moved(sv[0], NULL, NULL);
	check_err("tcpsplice_moved(NULL, NULL)", rc, errno, want);
	/* Descriptors that are none: the device's error still comes first. */
	errno = 0;
	rc = tcpunsplice(-1);
	check_err("tcpunsplice(-1)", rc, errno, want);
	close(sv[0]);
	close(sv[1]);
}

static char *path_in_tmp(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", tmpdir, name) < 0) {
		perror("asprintf");
		exit(2);
	}
	return p;
}

static void make_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
}

/* The descriptors of this process that are open on @path. */
static int fds_on(const char *path, int *cloexec)
{
	char link[PATH_MAX], target[PATH_MAX];
	struct dirent *d;
	int n = 0;
	DIR *dir = opendir("/proc/self/fd");

	*cloexec = 0;
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		ssize_t len;

		if (d->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", d->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, path) == 0) {
			int flags = fcntl(atoi(d->d_name), F_GETFD);

			n++;
			if (flags >= 0 && (flags & FD_CLOEXEC))
				(*cloexec)++;
		}
	}
	closedir(dir);
	return n;
}

/* ---- the cases, each run in a child ---- */

static void case_no_device(void)
{
	char *dev = path_in_tmp("missing");

	tcpsplice__device_path = dev;
	all_calls_fail(ENODEV);
	/* Still none: the failure is not sticky, nor does it change. */
	all_calls_fail(ENODEV);
	free(dev);
}

static void case_device_appears(void)
{
	char *dev = path_in_tmp("later");
	int sv[2], rc;

	tcpsplice__device_path = dev;
	sockets(sv);
	errno = 0;
	rc = tcpunsplice(sv[0]);
	check_err("tcpunsplice before the device exists", rc, errno, ENODEV);
	/* The "module" is loaded: the next call opens it and gets to the ioctl. */
	make_file(dev);
	errno = 0;
	rc = tcpunsplice(sv[0]);
	check_err("tcpunsplice once the device exists", rc, errno, ENOTTY);
	close(sv[0]);
	close(sv[1]);
	free(dev);
}

static void case_regular_file(void)
{
	char *dev = path_in_tmp("regular");

	make_file(dev);
	tcpsplice__device_path = dev;
	all_calls_fail(ENOTTY);
	free(dev);
}

static void case_open_error_passed_through(void)
{
	char *dev = path_in_tmp("directory");

	if (mkdir(dev, 0700) < 0) {
		perror("mkdir");
		exit(2);
	}
	tcpsplice__device_path = dev;
	all_calls_fail(EISDIR);
	rmdir(dev);
	free(dev);
}

static void case_bad_drain(void)
{
	char *dev = path_in_tmp("drain");
	int sv[2], rc;

	make_file(dev);
	tcpsplice__device_path = dev;
	sockets(sv);
	errno = 0;
	rc = tcpsplice(sv[0], -1, 0, 0);
	check_err("tcpsplice(source, -1)", rc, errno, EBADF);
	errno = 0;
	rc = tcpsplice(sv[0], INT_MIN, 0, 0);
	check_err("tcpsplice(source, INT_MIN)", rc, errno, EBADF);
	close(sv[0]);
	close(sv[1]);
	free(dev);
}

static void *racer(void *arg)
{
	int *err = arg;
	int sv[2];

	sockets(sv);
	errno = 0;
	if (tcpsplice(sv[0], sv[1], 0, 0) == 0)
		*err = 0;
	else
		*err = errno;
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void case_threads_one_descriptor(void)
{
	char *dev = path_in_tmp("threads");
	pthread_t t[NTHREADS];
	int err[NTHREADS], n, cloexec;

	make_file(dev);
	tcpsplice__device_path = dev;
	for (int i = 0; i < NTHREADS; i++) {
		err[i] = -1;
		if (pthread_create(&t[i], NULL, racer, &err[i])) {
			fprintf(stderr, "pthread_create failed\n");
			exit(2);
		}
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		check(err[i] == ENOTTY, "thread %d: errno %s, expected ENOTTY", i,
		      strerrorname_np(err[i]) ? strerrorname_np(err[i]) : "?");
	}
	n = fds_on(dev, &cloexec);
	check(n == 1, "%d descriptors open on the device after %d threads, expected 1", n,
	      NTHREADS);
	check(cloexec == n, "the device's descriptor is not close-on-exec");
	free(dev);
}

/* ---- driver ---- */

static int failures;

/* Runs @fn in a child; its verdict comes back through a pipe. */
static void run(const char *name, void (*fn)(void))
{
	char buf[sizeof(why)] = "";
	int p[2], status;
	ssize_t len;
	pid_t pid;

	fflush(stdout);
	if (pipe(p) < 0) {
		perror("pipe");
		exit(2);
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		close(p[0]);
		why[0] = '\0';
		fn();
		if (why[0] && write(p[1], why, strlen(why)) < 0)
			_exit(3);
		close(p[1]);
		exit(why[0] ? 1 : 0);
	}
	close(p[1]);
	len = read(p[0], buf, sizeof(buf) - 1);
	buf[len > 0 ? len : 0] = '\0';
	close(p[0]);
	if (waitpid(pid, &status, 0) < 0) {
		perror("waitpid");
		exit(2);
	}
	if (buf[0]) {
		printf("FAIL libtcpsplice-%s: %s\n", name, buf);
		failures++;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status))
			printf("FAIL libtcpsplice-%s: killed by signal %d\n", name,
			       WTERMSIG(status));
		else
			printf("FAIL libtcpsplice-%s: exit status %d\n", name, WEXITSTATUS(status));
		failures++;
	} else {
		printf("PASS libtcpsplice-%s\n", name);
	}
}

static void remove_tmpdir(void)
{
	const char *names[] = {"later", "regular", "drain", "threads"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p = path_in_tmp(names[i]);

		unlink(p);
		free(p);
	}
	rmdir(tmpdir);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	run("no-device-enodev", case_no_device);
	run("device-loaded-later", case_device_appears);
	run("regular-file-enotty", case_regular_file);
	run("open-error-passed-through", case_open_error_passed_through);
	run("bad-drain-ebadf", case_bad_drain);
	run("threads-one-cloexec-descriptor", case_threads_one_descriptor);
	remove_tmpdir();
	return failures ? 1 : 0;
}
