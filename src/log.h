/* SPDX-License-Identifier: MIT */
/*
 * Logging for veild: stderr in the foreground, syslog in the background.
 * Level from LOG_LEVEL as wireguard-go reads it. Never pass key material.
 */
#ifndef VEIL_LOG_H
#define VEIL_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_SILENT = 0,
	LOG_LEVEL_ERROR = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

void log_init(const char *ident, bool use_syslog);
/* error (default), verbose/info, debug, silent; unknown names mean error. */
enum log_level log_level_parse(const char *s);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Audit records: shown at every level but silent, tagged AUDIT, with a precise time. */
void log_audit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
