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

/* HMAC-SHA256 of data under key into out (32 bytes). */
void pt_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    unsigned char out[32]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void pt_hex(const unsigned char *in, size_t n, char *out);

/* AES-256-GCM with a random 96-bit nonce. pt_seal writes nonce | ciphertext
 * | 16-byte tag into a new buffer (*out, *outlen; caller frees); aad (may be
 * NULL) is authenticated, not stored: the same aad must be given to open.
 * pt_open returns a new NUL-terminated plaintext, or -1 if the key, aad or
 * bytes are wrong (nothing is returned then). */
#define PT_SEAL_OVERHEAD 28
int pt_seal(const unsigned char key[32], const char *aad, const void *plain, size_t len,
            unsigned char **out, size_t *outlen);
int pt_open(const unsigned char key[32], const char *aad, const unsigned char *in, size_t len,
            char **plain, size_t *plainlen);

/* AES-256-CTR as a stream, for bytes that pass through a file only while
 * a request lasts (the upload spool): a fresh random key per stream, held
 * in memory only. pt_stream_new: NULL if out of memory. pt_stream_xor
 * enciphers or deciphers n bytes in place, continuing where the last call
 * ended; pt_stream_rewind starts a second pass (to read back) with the
 * same key. 0 or -1. */
typedef struct pt_stream pt_stream;
pt_stream *pt_stream_new(void);
int pt_stream_xor(pt_stream *s, void *data, size_t n);
int pt_stream_rewind(pt_stream *s);
void pt_stream_free(pt_stream *s);

#endif
