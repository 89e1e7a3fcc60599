"""A real SMTP server for Patchbay's tests (aiosmtpd).

Usage: smtp_server.py PORT [--user USER --password PASSWORD] [--maildir DIR]
With a user and password, AUTH is required (PLAIN/LOGIN, allowed without TLS on loopback).
Every accepted message is written to DIR (when given) as one .eml file.
Prints "READY <port>" once it accepts connections.
"""

import argparse
import asyncio
import os
import signal
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, maildir):
        self.maildir = maildir

    async def handle_DATA(self, server, session, envelope):
        if self.maildir:
            path = os.path.join(self.maildir, f"{uuid.uuid4().hex}.eml")
            with open(path, "wb") as f:
                f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
                f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
                f.write(envelope.original_content or envelope.content)
        return "250 Message accepted"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        # handled=False lets aiosmtpd answer 535 itself on a failure.
        return AuthResult(success=ok, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--maildir")
    args = parser.parse_args()
    kwargs = {}
    if args.user is not None:
        kwargs = dict(authenticator=authenticator(args.user, args.password), auth_required=True, auth_require_tls=False)
    controller = Controller(Handler(args.maildir), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    print(f"READY {args.port}", flush=True)
    stop = asyncio.new_event_loop()
    signal.signal(signal.SIGTERM, lambda *_: stop.call_soon_threadsafe(stop.stop))
    try:
        stop.run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
