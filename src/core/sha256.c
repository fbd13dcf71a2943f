/*
 * SHA-256 with a fetched digest and a per-thread context (see sha256.h).
 * The context pointer lives in a thread-local variable for speed and in a
 * pthread key so that the key's destructor frees it when the thread exits.
 */
#include "core/sha256.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

static EVP_MD *sha256_md;
static pthread_key_t ctx_key;
static int ctx_key_ok;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MD_CTX *thread_ctx;

static void free_ctx(void *p)
{
    EVP_MD_CTX_free(p);
}

static void init(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    ctx_key_ok = pthread_key_create(&ctx_key, free_ctx) == 0;
}

/* This thread's context, made on first use; NULL if that failed. */
static EVP_MD_CTX *thread_context(void)
{
    if (thread_ctx)
        return thread_ctx;
    if (!ctx_key_ok)
        return NULL;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c)
        return NULL;
    if (pthread_setspecific(ctx_key, c) != 0) {
        EVP_MD_CTX_free(c);
        return NULL;
    }
    thread_ctx = c;
    return c;
}

int xd_sha256(const void *p, size_t n, unsigned char out[XD_SHA256_LEN])
{
    pthread_once(&once, init);
    EVP_MD_CTX *c = sha256_md ? thread_context() : NULL;
    if (c && EVP_DigestInit_ex2(c, sha256_md, NULL) && EVP_DigestUpdate(c, p, n) &&
        EVP_DigestFinal_ex(c, out, NULL))
        return 0;
    /* The slow way, which may still work when the above could not allocate. */
    if (EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL))
        return 0;
    memset(out, 0, XD_SHA256_LEN);
    return -1;
}
