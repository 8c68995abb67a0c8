/*
 * scrub.h - what a service says goes through here before it is logged, printed or stored.
 *
 * A service's message may quote what the client sent: SignatureDoesNotMatch quotes the
 * server's string-to-sign, which carries the SecurityToken, and a misbehaving server may echo
 * anything.  Every message from a service is scrubbed once, where it is parsed, so no later
 * path (log, stderr, snapshots.error_message, metrics) can leak it.
 */
#ifndef CREDSYNC_SCRUB_H
#define CREDSYNC_SCRUB_H

#include <stddef.h>

/*
 * Scrubs text (NUL-terminated, in a buffer of cap bytes) in place: drops a quoted string to
 * sign, replaces every occurrence of each of secrets[0..n) (NULL or short entries skipped)
 * raw, percent-encoded once or twice, with "***", and masks Signature= values.
 */
void scrub_text(char *text, size_t cap, const char *const *secrets, size_t n);

#endif
