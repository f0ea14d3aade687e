/*
 * crypto.h - hashing and one-time codes shared by the agent (TOTP for MFA),
 * the sandbox portal (verifying them, hashing uploads) and the server.
 * Built on OpenSSL's libcrypto.
 */
#ifndef PT_CRYPTO_H
#define PT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of data as 64 lowercase hex digits plus NUL. */
void pt_sha256_hex(const void *data, size_t len, char out[65]);

/* Decodes RFC 4648 base32 (case-insensitive; spaces, dashes and '=' padding
 * ignored), the form authenticator apps take seeds in. Returns the number of
 * bytes written, or -1 if invalid or longer than outsz. */
int pt_base32_decode(const char *s, unsigned char *out, size_t outsz);

/* RFC 6238 TOTP: HMAC-SHA1, 30-second steps, 6 digits, for unix time `now`
 * (seconds) and a base32 seed. Writes 6 digits plus NUL. Returns 0, or -1
 * if the seed is not base32. */
int pt_totp(const char *seed_base32, int64_t now, char out[7]);

/* Fills buf with cryptographically strong random bytes. Returns 0 or -1. */
int pt_random(void *buf, size_t len);
/* A random token of n hex digits (n <= 128) into out (n+1 bytes). */
int pt_random_hex(char *out, size_t n);

/* Compares in time that does not depend on where they differ. */
int pt_equal_ct(const void *a, const void *b, size_t len);

#endif
