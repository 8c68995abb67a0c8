/*
 * util.h - small helpers with no state: durations, UTC times, clocks, UTF-8, loopback hosts.
 */
#ifndef CREDSYNC_UTIL_H
#define CREDSYNC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses "250ms", "5s", "10m", "1h", "30d" and sums like "1h30m" into milliseconds.
 * Returns 0, or -1 when s is not such a duration or overflows. */
int util_parse_duration(const char *s, int64_t *out_ms);

/* Formats ms as the largest exact unit ("90s" stays "90s", "3600000" -> "1h"). */
void util_format_duration(int64_t ms, char *out, size_t outlen);

/* Parses "2026-11-27" (midnight UTC) or "2026-11-27T02:00:00Z" into seconds since the
 * epoch.  Returns 0, or -1 when s is neither or names no real date. */
int util_parse_utc(const char *s, int64_t *out_epoch);

/* Writes "YYYY-MM-DDThh:mm:ssZ" (21 bytes with the NUL). */
void util_format_utc(int64_t epoch, char out[21]);

/* The clocks: wall time in epoch seconds, and monotonic milliseconds. */
int64_t util_now_epoch(void);   /* wall clock, seconds */
int64_t util_mono_ms(void);     /* monotonic clock, milliseconds */

/* 1 when [s, s+len) is valid UTF-8 without NUL bytes, overlongs or surrogates. */
int util_utf8_valid(const char *s, size_t len);

/* 1 when host (as found in a URL, brackets allowed for IPv6) is a loopback name or address. */
int util_host_is_loopback(const char *host);

/* Writes at most outlen-1 bytes of s with non-printable bytes as \xNN, for messages that
 * quote untrusted input; adds "..." when cut. */
void util_quote_bytes(const char *s, size_t len, char *out, size_t outlen);

#endif
