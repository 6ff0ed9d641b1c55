"""The Python half of tests/runtime/tls-endpoints.sh: RabbitMQ's seeded configuration and the
rabbitmq-stats container's environment made runnable on this machine, and the probes that
show what a client of the running broker gets.

    python -m tests.runtime.rabbitmq_tls conf --source FILE --target FILE --root DIR
        --amqps-port P --management-port P [--plant-plain-listener]
    python -m tests.runtime.rabbitmq_tls env --task-definition FILE --container NAME
    python -m tests.runtime.rabbitmq_tls amqps --port P --cafile CA
    python -m tests.runtime.rabbitmq_tls refused-by-verification --port P --cafile OTHER_CA
    python -m tests.runtime.rabbitmq_tls plain --port P

conf    copies the seeded custom.conf, changing only what cannot hold on a shared machine, and
        prints each change: the listeners move to 127.0.0.1 and free ports, and the
        certificate paths gain the prefix of the folder where the container's mounts are
        bind-mounted, so RabbitMQ reads the files the Lambda wrote through the same access
        point roots. $(RABBITMQ_RAM_RESOURCES) stays: RabbitMQ 3.10's configuration parser
        (cuttlefish) already substitutes $(VAR) from the environment, as CE's 4.2 does.
        --plant-plain-listener drops `listeners.tcp = none` (the fault `plain` must catch: the
        node then listens for plain AMQP on RABBITMQ_NODE_PORT).
env     prints the container's environment from the rendered task definition as NAME=VALUE
        lines, without what cannot hold here (printed on stderr with the reason).
amqps   connects as core does, with RABBITMQ_CONNECTION_STRING (from the environment, never
        the command line: it holds a password): a TLS handshake verified against CA and the
        URL's host name that must get AMQP 0-9-1 Connection.Start, then a pika session that
        logs in with the URL's credentials, declares a queue, publishes a message and reads it
        back. The URL names no port (CE's default 5671), so the test's port is used.
refused-by-verification
        succeeds only when the TLS handshake fails certificate verification against OTHER_CA.
plain   succeeds only when a TCP connection to the port is refused; if one is accepted it
        sends the AMQP 0-9-1 protocol header and reports the broker's answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import ssl
import struct
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pika

# Keys whose value is a file the broker reads.
FILE_KEY = re.compile(r"^[\w.]*\.(certfile|keyfile|cacertfile)$")
# The container's variables that cannot hold for a node on a shared test machine.
NOT_HERE = {
    "RABBITMQ_NODENAME": "the test node needs a name of its own",
    "RABBITMQ_CONFIG_FILE": "the test node reads the copy made by `conf`",
    "RABBITMQ_FEATURE_FLAGS": "names RabbitMQ 4.x feature flags, which 3.10 refuses",
}
TIMEOUT_S = 10
AMQP_0_9_1_HEADER = b"AMQP\x00\x00\x09\x01"


def rewrite_conf(
    text: str, root: str, amqps_port: int, management_port: int, plant_plain_listener: bool = False
) -> tuple[str, list[str]]:
    """The configuration as RabbitMQ on this machine runs it, and a line per change."""
    lines, changes = [], []
    for line in text.splitlines():
        key, sep, value = (part.strip() for part in line.partition("="))
        new: str | None = line
        if line.lstrip().startswith("#") or not sep:
            pass
        elif FILE_KEY.match(key) and value.startswith("/"):
            new = f"{key} = {root.rstrip('/')}{value}"
        elif key == "listeners.ssl.default":
            new = f"{key} = 127.0.0.1:{amqps_port}"
        elif key == "management.ssl.port":
            new = f"{key} = {management_port}\nmanagement.ssl.ip = 127.0.0.1"
        elif key == "listeners.tcp" and value == "none" and plant_plain_listener:
            new = None
        if new != line:
            changes.append(f"{line.strip()}  ->  {(new or '(removed)').strip()}".replace("\n", "; "))
        if new is not None:
            lines.append(new)
    return "\n".join(lines) + "\n", changes


def container_env(task_definition: dict, name: str) -> tuple[list[str], list[str]]:
    """NAME=VALUE lines of the container's environment, and the variables left out, with why."""
    (definition,) = [c for c in task_definition["containerDefinitions"] if c["name"] == name]
    kept, dropped = [], []
    for variable in definition.get("environment", []):
        if variable["name"] in NOT_HERE:
            dropped.append(f"{variable['name']}: {NOT_HERE[variable['name']]}")
        else:
            kept.append(f"{variable['name']}={variable['value']}")
    return kept, dropped


def tls_context(cafile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def connection_start(port: int, cafile: str, hostname: str) -> str:
    """Handshakes TLS verifying the certificate against CA and HOSTNAME, sends the AMQP 0-9-1
    protocol header and checks that the broker answers Connection.Start (a method frame on
    channel 0, class 10, method 10); returns the TLS version and cipher."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw,
        tls_context(cafile).wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        tls.sendall(AMQP_0_9_1_HEADER)
        head = b""
        while len(head) < 11:
            chunk = tls.recv(11 - len(head))
            if not chunk:
                break
            head += chunk
        if len(head) < 11:
            raise ConnectionError(f"the broker closed the connection after {len(head)} bytes")
        kind, channel, _, class_id, method_id = struct.unpack(">BHIHH", head)
        if (kind, channel, class_id, method_id) != (1, 0, 10, 10):
            raise ConnectionError(
                f"expected Connection.Start, got frame {kind} channel {channel} {class_id}.{method_id}"
            )
        return f"{tls.version()} {tls.cipher()[0]}"


def amqps(port: int, cafile: str) -> int:
    url = urlsplit(os.environ["RABBITMQ_CONNECTION_STRING"])
    if url.scheme != "amqps" or not url.hostname or url.port is not None:
        print(f"RABBITMQ_CONNECTION_STRING is not amqps://user:password@host: {url.scheme}://…@{url.hostname}")
        return 1
    tls = connection_start(port, cafile, url.hostname)
    context = tls_context(cafile)
    credentials = pika.PlainCredentials(unquote(url.username or ""), unquote(url.password or ""))
    parameters = pika.ConnectionParameters(
        host="127.0.0.1",
        port=port,
        virtual_host=unquote(url.path[1:]) if len(url.path) > 1 else "/",
        credentials=credentials,
        ssl_options=pika.SSLOptions(context, server_hostname=url.hostname),
        socket_timeout=TIMEOUT_S,
        blocked_connection_timeout=TIMEOUT_S,
        connection_attempts=1,
    )
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.basic_publish(exchange="", routing_key=queue, body=b"ce tls probe")
        _, _, body = channel.basic_get(queue=queue, auto_ack=True)
    finally:
        connection.close()
    if body != b"ce tls probe":
        print(f"the message did not come back (got {body!r})", file=sys.stderr)
        return 1
    print(
        f"AMQPS to {url.hostname}: {tls}, certificate verified against the CA, Connection.Start received; "
        f"pika logged in as {unquote(url.username or '')!r} with the connection string's password, "
        "and a message went through a queue and back"
    )
    return 0


def refused_by_verification(port: int, cafile: str) -> int:
    context = tls_context(cafile)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname="localhost"),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        print(f"handshake refused as expected: {exc.verify_message}")
        return 0
    print("the handshake succeeded against a CA that did not sign the certificate", file=sys.stderr)
    return 1


def plain(port: int) -> int:
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    except ConnectionRefusedError:
        print(f"plain AMQP on 127.0.0.1:{port}: connection refused")
        return 0
    with raw:
        raw.sendall(AMQP_0_9_1_HEADER)
        frame = raw.recv(7)
    if len(frame) == 7:
        kind, _, size = struct.unpack(">BHI", frame)
        print(f"plain AMQP on 127.0.0.1:{port} was accepted: frame type {kind}, {size} bytes", file=sys.stderr)
    else:
        print(f"plain AMQP on 127.0.0.1:{port}: a TCP connection was accepted", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.runtime.rabbitmq_tls",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    conf = commands.add_parser("conf")
    conf.add_argument("--source", required=True, type=Path)
    conf.add_argument("--target", required=True, type=Path)
    conf.add_argument("--root", required=True, help="where the container's mounts are bind-mounted")
    conf.add_argument("--amqps-port", required=True, type=int)
    conf.add_argument("--management-port", required=True, type=int)
    conf.add_argument("--plant-plain-listener", action="store_true")
    env = commands.add_parser("env")
    env.add_argument("--task-definition", required=True, type=Path)
    env.add_argument("--container", required=True)
    probe = commands.add_parser("amqps")
    probe.add_argument("--port", required=True, type=int)
    probe.add_argument("--cafile", required=True)
    other = commands.add_parser("refused-by-verification")
    other.add_argument("--port", required=True, type=int)
    other.add_argument("--cafile", required=True)
    refused = commands.add_parser("plain")
    refused.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)

    if args.command == "conf":
        text, changes = rewrite_conf(
            args.source.read_text(), args.root, args.amqps_port, args.management_port, args.plant_plain_listener
        )
        args.target.write_text(text)
        for change in changes:
            print(f"  {change}")
        return 0
    if args.command == "env":
        kept, dropped = container_env(json.loads(args.task_definition.read_text()), args.container)
        print("\n".join(kept))
        for line in dropped:
            print(f"  not passed on: {line}", file=sys.stderr)
        return 0
    if args.command == "amqps":
        return amqps(args.port, args.cafile)
    if args.command == "refused-by-verification":
        return refused_by_verification(args.port, args.cafile)
    return plain(args.port)


if __name__ == "__main__":
    sys.exit(main())
