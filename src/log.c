// SPDX-License-Identifier: MIT
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static enum log_level level = LOG_LEVEL_ERROR;
static bool to_syslog;
static const char *prefix = "veild";

void log_init(const char *ident, bool use_syslog)
{
	prefix = ident;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

enum log_level log_level_parse(const char *s)
{
	if (!s || !*s)
		return LOG_LEVEL_ERROR;
	if (!strcmp(s, "silent"))
		return LOG_LEVEL_SILENT;
	if (!strcmp(s, "verbose") || !strcmp(s, "info"))
		return LOG_LEVEL_INFO;
	if (!strcmp(s, "debug"))
		return LOG_LEVEL_DEBUG;
	return LOG_LEVEL_ERROR;
}

void log_set_level(enum log_level l)
{
	level = l;
}

enum log_level log_get_level(void)
{
	return level;
}

static void vlog(enum log_level l, int prio, const char *tag, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;

	if (l > level)
		return;
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): ap is the caller's, started there (clang-tidy 14 false positive). */
	vsnprintf(line, sizeof(line), fmt, ap);
	if (to_syslog) {
		syslog(prio, "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%s: %s: %04d-%02d-%02dT%02d:%02d:%02dZ %s\n", prefix, tag,
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, line);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, LOG_ERR, "ERROR", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, LOG_INFO, "INFO", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, LOG_DEBUG, "DEBUG", fmt, ap);
	va_end(ap);
}

void log_audit(const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level == LOG_LEVEL_SILENT)
		return;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (to_syslog) {
		syslog(LOG_NOTICE | LOG_AUTHPRIV, "AUDIT: time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		       tm.tm_sec, ts.tv_nsec / 1000000, line);
		return;
	}
	fprintf(stderr, "%s: AUDIT: time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s\n", prefix,
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, line);
}
