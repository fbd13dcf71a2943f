/* Hex digits: bytes to lowercase hex and back (hashes, signatures, key digests). */
#ifndef XD_HEX_H
#define XD_HEX_H

#include <stddef.h>

/* Writes n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void xd_hex(const unsigned char *in, size_t n, char *out);
/*
 * Reads exactly 2n hex digits (either case) from s, which must end there,
 * into out[n]. Returns 0, or -1 (out unspecified) for any other string.
 */
int xd_unhex(const char *s, unsigned char *out, size_t n);

#endif
