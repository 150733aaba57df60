/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tcp-spliced: logging to the journal with structured fields.
 *
 * Events an admin filters on carry a MESSAGE_ID (journalctl MESSAGE_ID=...);
 * they are listed in tcp-spliced(8).  Without a journal (run by hand in a
 * shell), messages go to stderr.
 */
#ifndef TSD_LOG_H
#define TSD_LOG_H

#include <stdint.h>
#include <syslog.h>

#define TSD_MID_POLICY_APPLIED	"8f665637b718433aa223415ed259b38f"
#define TSD_MID_CGROUP_ATTACHED "961f0b5c67154b4f8e0bdf5eb66ee3d0"
#define TSD_MID_CGROUP_DETACHED "0fceab3d7a0b48a4ae8de3d6f4231273"
#define TSD_MID_CONFIG_REJECTED "6c1ba5f1d2b243ef90f526ab06fe4d58"
#define TSD_MID_MODULE_MISSING	"e31f5f14b10142b39660d2d3fc9dac03"
#define TSD_MID_STARTED		"2760062f9ea1400fb35e5951bbfc94b2"
#define TSD_MID_STOPPED		"f232a7264f444f4788ee20bfd0f9608e"

/* Optional fields of an entry; unset ones (NULL, 0) are left out. */
struct tsd_fields {
	const char *policy;	 /* TS_POLICY= */
	const char *cgroup;	 /* TS_CGROUP= (relative path, "" is the root) */
	uint64_t cgroup_id;	 /* TS_CGROUP_ID= */
	const char *config_file; /* CONFIG_FILE= */
	int config_line;	 /* CONFIG_LINE= */
	int error;		 /* ERRNO= (positive errno) */
};

void tsd_log_set_level(int level);
/* Send libbpf's messages through tsd_log (warnings as warnings). */
void tsd_log_setup_libbpf(void);

void tsd_log_at(const char *file, int line, const char *func, int prio, const char *message_id,
		const struct tsd_fields *fields, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

#define tsd_event(prio, mid, fields, ...)                                                          \
	tsd_log_at(__FILE__, __LINE__, __func__, prio, mid, fields, __VA_ARGS__)
#define tsd_log(prio, ...) tsd_log_at(__FILE__, __LINE__, __func__, prio, NULL, NULL, __VA_ARGS__)

#endif /* TSD_LOG_H */
