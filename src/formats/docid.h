/*
 * Event ids derived from business documents (contract section 7), one rule
 * for every file format: "<type>:<warehouse>:<document id>[:<more>]", each
 * character outside A-Za-z0-9._:- replaced by one '_' (a UTF-8 sequence is
 * one character), and an id longer than 128 characters shortened to its first
 * 111, a '.' and 16 hex digits of the SHA-256 of the whole, so that it stays
 * unique and the same file always gives the same ids.
 */
#ifndef XD_DOCID_H
#define XD_DOCID_H

struct xd_buf;

#define XD_DOCID_MAX 128

/* Appends s to the id in b, after a ':' unless b is empty. */
void xd_docid_part(struct xd_buf *b, const char *s);
/* Shortens the id in b when it is longer than XD_DOCID_MAX. */
void xd_docid_finish(struct xd_buf *b);

#endif
