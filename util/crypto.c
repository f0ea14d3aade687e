/*
 * crypto.c - hashing, TOTP, randomness. See crypto.h.
 */
#include "util/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pt_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void pt_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    pt_hex(md, 32, out);
}

int pt_base32_decode(const char *s, unsigned char *out, size_t outsz)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        char c = *s;
        int v;
        if (c == ' ' || c == '-' || c == '=')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return -1;
        acc = (acc << 5 | (unsigned)v) & 0xffff;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (n >= outsz)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)n;
}

int pt_totp(const char *seed_base32, int64_t now, char out[7])
{
    unsigned char key[128], msg[8], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int klen = pt_base32_decode(seed_base32, key, sizeof(key));
    if (klen <= 0)
        return -1;
    uint64_t counter = (uint64_t)(now / 30);
    for (int i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(counter & 0xff);
        counter >>= 8;
    }
    if (!HMAC(EVP_sha1(), key, klen, msg, sizeof(msg), md, &mdlen))
        return -1;
    int off = md[mdlen - 1] & 0x0f;
    uint32_t bin = (uint32_t)(md[off] & 0x7f) << 24 | (uint32_t)md[off + 1] << 16 |
                   (uint32_t)md[off + 2] << 8 | md[off + 3];
    snprintf(out, 7, "%06u", bin % 1000000u);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

int pt_random(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

int pt_random_hex(char *out, size_t n)
{
    unsigned char raw[64];
    if (n > 128 || pt_random(raw, (n + 1) / 2) < 0)
        return -1;
    char hex[129];
    pt_hex(raw, (n + 1) / 2, hex);
    memcpy(out, hex, n);
    out[n] = '\0';
    return 0;
}

int pt_equal_ct(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void pt_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n);
}

int pt_seal(const unsigned char key[32], const char *aad, const void *plain, size_t len,
            unsigned char **out, size_t *outlen)
{
    *out = NULL;
    unsigned char *b = malloc(len + PT_SEAL_OVERHEAD);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, f = 0,
        ok = b && c && RAND_bytes(b, 12) == 1 &&
             EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, b) == 1;
    if (ok && aad)
        ok = EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    ok = ok && EVP_EncryptUpdate(c, b + 12, &n, plain, (int)len) == 1 &&
         EVP_EncryptFinal_ex(c, b + 12 + n, &f) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, b + 12 + n + f) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        free(b);
        return -1;
    }
    *out = b;
    *outlen = 12 + (size_t)n + (size_t)f + 16;
    return 0;
}

int pt_open(const unsigned char key[32], const char *aad, const unsigned char *in, size_t len,
            char **plain, size_t *plainlen)
{
    *plain = NULL;
    if (len < PT_SEAL_OVERHEAD)
        return -1;
    size_t clen = len - PT_SEAL_OVERHEAD;
    unsigned char *p = malloc(clen + 1), tag[16];
    memcpy(tag, in + len - 16, 16);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, f = 0, ok = p && c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) == 1;
    if (ok && aad)
        ok = EVP_DecryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    ok = ok && EVP_DecryptUpdate(c, p, &n, in + 12, (int)clen) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
         EVP_DecryptFinal_ex(c, p + n, &f) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        if (p)
            OPENSSL_cleanse(p, clen);
        free(p);
        return -1;
    }
    p[n + f] = '\0';
    *plain = (char *)p;
    if (plainlen)
        *plainlen = (size_t)(n + f);
    return 0;
}

struct pt_stream {
    unsigned char key[32], iv[16];
    EVP_CIPHER_CTX *c;
};

int pt_stream_rewind(pt_stream *s)
{
    return EVP_EncryptInit_ex(s->c, EVP_aes_256_ctr(), NULL, s->key, s->iv) == 1 ? 0 : -1;
}

pt_stream *pt_stream_new(void)
{
    pt_stream *s = calloc(1, sizeof(*s));
    if (!s || !(s->c = EVP_CIPHER_CTX_new()) || RAND_bytes(s->key, 32) != 1 ||
        RAND_bytes(s->iv, 16) != 1 || pt_stream_rewind(s) < 0) {
        pt_stream_free(s);
        return NULL;
    }
    return s;
}

int pt_stream_xor(pt_stream *s, void *data, size_t n)
{
    unsigned char *p = data;
    while (n) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n, out = 0;
        if (EVP_EncryptUpdate(s->c, p, &out, p, chunk) != 1 || out != chunk)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

void pt_stream_free(pt_stream *s)
{
    if (!s)
        return;
    EVP_CIPHER_CTX_free(s->c);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}
