/*
 * SHA-256 of a buffer, for the per-event and per-request hashes (event
 * bodies, API key secrets). OpenSSL's one-shot SHA256() and EVP_Digest()
 * with EVP_sha256() look the implementation up and allocate a context on
 * every call; here the digest is fetched once per process and each thread
 * keeps one context, freed when the thread exits.
 */
#ifndef XD_SHA256_H
#define XD_SHA256_H

#include <stddef.h>

#define XD_SHA256_LEN 32

/* Writes the digest of p[0..n) to out. Returns 0, or -1 if OpenSSL failed (out zeroed). */
int xd_sha256(const void *p, size_t n, unsigned char out[XD_SHA256_LEN]);

#endif
