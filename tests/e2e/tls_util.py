"""TLS for the tests: certificates made with `openssl req` / `openssl x509` in a
temporary folder, redis-server and redis-sentinel listening with --tls-port only,
and TLS clients (redis-py ssl=True, plain ssl sockets)."""
import os
import socket
import ssl
import subprocess

from conftest import HOST, Server, free_port, stop_proc, tail, wait_port


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class Certs:
    """A CA, a second CA nobody trusts, and leaf certificates signed by the first:
    server (localhost, 127.0.0.1), server2 (the same names: a rotation), client (mTLS),
    expired (expired yesterday), dnsonly (localhost without the IP entry)."""

    def __init__(self, folder):
        self.dir = str(folder)
        for ca in ("ca", "otherca"):
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "30", "-subj", "/CN=Test " + ca,
                     cwd=self.dir)
        self.leaf("server", "DNS:localhost,IP:127.0.0.1")
        self.leaf("server2", "DNS:localhost,IP:127.0.0.1")
        self.leaf("client", "DNS:client")
        self.leaf("expired", "DNS:localhost,IP:127.0.0.1", days="-1")
        self.leaf("dnsonly", "DNS:localhost")
        self.leaf("untrusted", "DNS:localhost,IP:127.0.0.1", ca="otherca")

    def leaf(self, name, san, days="30", ca="ca"):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                 name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, "-addext",
                 "subjectAltName=" + san, cwd=self.dir)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-out", name + ".crt", "-days", days, "-copy_extensions", "copy",
                 cwd=self.dir)

    def crt(self, name):
        return os.path.join(self.dir, name + ".crt")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def der(self, name):
        with open(self.crt(name)) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def listen_tls(self, name="server", **extra):
        """A listen_tls value (a YAML flow mapping) serving certificate `name`."""
        items = ["cert_file: %s" % self.crt(name), "key_file: %s" % self.key(name)]
        items += ["%s: %s" % kv for kv in extra.items()]
        return "{" + ", ".join(items) + "}"

    def client_ctx(self, cert=None):
        """An ssl context trusting the CA (and presenting certificate `cert`)."""
        ctx = ssl.create_default_context(cafile=self.crt("ca"))
        if cert:
            ctx.load_cert_chain(self.crt(cert), self.key(cert))
        return ctx


def tls_args(certs, name="server", auth_clients="no"):
    return ["--tls-cert-file", certs.crt(name), "--tls-key-file", certs.key(name), "--tls-ca-cert-file",
            certs.crt("ca"), "--tls-auth-clients", auth_clients]


def tls_redis(env, certs, name="server", auth_clients="no", args=()):
    """A redis-server that speaks TLS only (--port 0 --tls-port P)."""
    for attempt in range(5):
        p = free_port()
        argv = ["redis-server", "--port", "0", "--tls-port", str(p), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", env.tmp, "--dbfilename",
                "dump-%d.rdb" % p, "--repl-diskless-sync-delay", "0"] + tls_args(certs, name, auth_clients) + list(args)
        proc, out = env.spawn(argv, "redis-tls-%d" % p)
        if wait_port(p, proc):
            return Server("redis", p, proc, out)
        stop_proc(proc)
    raise RuntimeError("redis-server --tls-port did not start:\n" + tail(out))


def tls_direct(certs, srv, cert="client"):
    """redis-py straight to a TLS redis (not through the proxy)."""
    import redis
    return redis.Redis(host=HOST, port=srv.port, ssl=True, ssl_ca_certs=certs.crt("ca"),
                       ssl_certfile=certs.crt(cert) if cert else None,
                       ssl_keyfile=certs.key(cert) if cert else None, socket_timeout=10)


def tls_client(certs, port, cert=None, **kw):
    """redis-py with ssl=True to a TLS listener of the proxy."""
    import redis
    return redis.Redis(host=HOST, port=port, ssl=True, ssl_ca_certs=certs.crt("ca"),
                       ssl_certfile=certs.crt(cert) if cert else None,
                       ssl_keyfile=certs.key(cert) if cert else None, socket_timeout=10, **kw)


def peer_der(certs, port, server_hostname="localhost"):
    """The certificate a TLS listener serves to a new connection (DER bytes)."""
    ctx = certs.client_ctx()
    with socket.create_connection((HOST, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            return s.getpeercert(binary_form=True)
