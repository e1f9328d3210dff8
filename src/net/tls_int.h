/*
 * tls_int: what the files of the TLS transport share (contexts and streams).
 */
#ifndef NC_TLS_INT_H
#define NC_TLS_INT_H

#include <openssl/ssl.h>

#include "net/tls.h"

struct tls_ctx {
    SSL_CTX *ssl;
};

struct tls_session {
    SSL_SESSION *sess;
    SSL_CTX *ctx; /* a reference: a session resumes only with the context that made it */
};

/* A client context's new-session callback: the stream's resume slot gets it. */
int tls_on_new_session(SSL *ssl, SSL_SESSION *sess);

#endif
