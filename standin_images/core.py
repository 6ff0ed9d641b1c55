"""STAND-IN for Cloud Exchange's core: run by the stand-in image's /opt/start.sh after the task
definition's entry point sourced /ce/env/ce-env.sh. It proves the contract our side promises
core, then listens on 8000 (CE_API_PORT) so that the health check and the UI can reach it:

- MONGO_CONNECTION_STRING and RABBITMQ_CONNECTION_STRING parse (scheme, user, password,
  localhost, MongoDB's database and TLS options);
- the MongoDB TLS files the connection string names are readable as this process's uid, and a
  TLS connection with them to mongodb-primary (the mongod stand-in) verifies both ways;
- AMQPS to rabbitmq-stats (Debian's real RabbitMQ) verifies against the CA with the client
  certificate, logs in with the URL's credentials, and a message makes the round trip.

It exits 1 naming the first broken promise. None of this is Netskope's code."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import ssl
import sys
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pika


class BrokenPromiseError(Exception):
    pass


def mongo() -> str:
    url = urlsplit(os.environ.get("MONGO_CONNECTION_STRING", ""))
    if url.scheme != "mongodb" or not url.username or not url.password or url.hostname != "localhost":
        raise BrokenPromiseError("MONGO_CONNECTION_STRING is not mongodb://USER:PASSWORD@localhost...")
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    if url.path.strip("/") != "cte" or query.get("tls") != "true":
        raise BrokenPromiseError("MONGO_CONNECTION_STRING names no database cte with tls=true")
    for option in ("tlsCAFile", "tlsCertificateKeyFile"):
        path = query.get(option)
        if not path:
            raise BrokenPromiseError(f"MONGO_CONNECTION_STRING has no {option}")
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as err:
            raise BrokenPromiseError(f"{option} {path} is not readable as uid {os.getuid()}: {err}") from None
    context = ssl.create_default_context(cafile=query["tlsCAFile"])
    context.load_cert_chain(query["tlsCertificateKeyFile"])
    with (
        socket.create_connection(("localhost", url.port or 27017), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as connection,
    ):
        connection.sendall(b"ping\n")
        if connection.recv(16).strip() != b"pong":
            raise BrokenPromiseError("mongodb-primary did not answer over TLS")
    return f"MongoDB: user {unquote(url.username)}, TLS verified both ways with {query['tlsCertificateKeyFile']}"


def rabbitmq() -> str:
    url = urlsplit(os.environ.get("RABBITMQ_CONNECTION_STRING", ""))
    if url.scheme != "amqps" or not url.username or not url.password or url.hostname != "localhost":
        raise BrokenPromiseError("RABBITMQ_CONNECTION_STRING is not amqps://USER:PASSWORD@localhost")
    context = ssl.create_default_context(cafile=os.environ["CE_TLS_CA_FILE"])
    context.load_cert_chain(os.environ["CE_TLS_CLIENT_PEM"])
    parameters = pika.ConnectionParameters(
        host="localhost",
        port=url.port or 5671,
        credentials=pika.PlainCredentials(unquote(url.username), unquote(url.password)),
        ssl_options=pika.SSLOptions(context, "localhost"),
        connection_attempts=3,
        retry_delay=2,
    )
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        body = f"stand-in core {time.time()}".encode()
        channel.basic_publish(exchange="", routing_key=queue, body=body)
        for _ in range(50):
            _, _, received = channel.basic_get(queue, auto_ack=True)
            if received is not None:
                break
            time.sleep(0.1)
        if received != body:
            raise BrokenPromiseError("the AMQPS message did not come back")
    finally:
        connection.close()
    return f"RabbitMQ: AMQPS as {unquote(url.username)}, verified against {os.environ['CE_TLS_CA_FILE']}, round trip ok"


class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"standIn": True, "component": "core"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        return


def main() -> int:
    try:
        for line in (mongo(), rabbitmq()):
            print(f"core stand-in: {line}", flush=True)
    except (BrokenPromiseError, OSError, ssl.SSLError, KeyError, pika.exceptions.AMQPError) as err:
        print(f"core stand-in: the contract does not hold: {err!r}", file=sys.stderr, flush=True)
        return 1
    # Without a handler SIGTERM does nothing to a container's PID 1: ECS would wait stopTimeout.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(os.environ.get("CE_API_PORT", "8000"))
    print(f"core stand-in: contract holds; listening on {port}", flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Api).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
