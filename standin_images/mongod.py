"""STAND-IN for mongod: a TLS listener on 27017 that requires a client certificate signed by
the CA mongod is given (--tlsCAFile), serving the certificate and key it is given
(--tlsCertificateKeyFile), and answering one line per connection ("ping" -> "pong"). It proves
the TLS material our tree holds works for mongod's TLS settings; it stores nothing and knows no
users. Like mongod, it leaves WiredTiger files in its data directory (--dbpath, default
/data/db): here one empty file named WiredTiger, which is what the mongo image's entry point
and mongo-start.sh look for (every other mongod argument is accepted and ignored)."""

from __future__ import annotations

import argparse
import signal
import socket
import ssl
import sys
import threading


def serve(connection: ssl.SSLSocket) -> None:
    with connection:
        try:
            line = connection.recv(64).strip()
            connection.sendall(b"pong\n" if line == b"ping" else b"?\n")
        except (OSError, ssl.SSLError):
            pass


def main() -> int:
    parser = argparse.ArgumentParser(prog="mongod (stand-in)", allow_abbrev=False)
    parser.add_argument("--tlsCertificateKeyFile", required=True)
    parser.add_argument("--tlsCAFile", required=True)
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--dbpath", default="/data/db")
    options, ignored = parser.parse_known_args()
    with open(f"{options.dbpath}/WiredTiger", "a"):
        pass
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(options.tlsCertificateKeyFile)
    context.load_verify_locations(options.tlsCAFile)
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", options.port), reuse_port=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(
        f"mongod stand-in: TLS on 127.0.0.1:{options.port}, client certificates required "
        f"(ignoring {len(ignored)} mongod arguments)",
        flush=True,
    )
    while True:
        raw, _ = listener.accept()
        try:
            connection = context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as err:
            print(f"mongod stand-in: refused a connection: {err}", flush=True)
            raw.close()
            continue
        threading.Thread(target=serve, args=(connection,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
