"""A real S3-compatible server for Patchbay's tests: moto in server mode, with IAM
authentication enforced once it is set up, so every request must be signed (AWS Signature
Version 4) with the access key it prints, and a wrong secret or a tampered signature is refused
by the server itself.

moto checks signatures in the Authorization header only. A presigned URL (the signature in the
query) is checked here, by botocore's own signer, before moto sees the request: a bad or expired
one is answered 403; a good one is handed to moto signed in the header instead.

Usage: s3_server.py PORT BUCKET [BUCKET ...]
Creates the buckets and an IAM user allowed every S3 action, turns authentication on, then
prints "READY <access key id> <secret access key>".
"""

import datetime
import hmac
import json
import signal
import sys
import threading
from urllib.parse import parse_qsl, urlencode

import boto3
import requests
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

ALLOW_S3 = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)


REFUSED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    b"<Message>{message}</Message></Error>"
)


class PresignedUrls:
    """Checks query-signed requests, then passes them on to moto signed in the header."""

    def __init__(self, app):
        self.app = app
        self.keys = {}

    def __call__(self, environ, start_response):
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = dict(query)
        if "X-Amz-Signature" not in params:
            return self.app(environ, start_response)
        refusal = self.check(environ, query, params)
        if refusal:
            code, message = refusal
            body = REFUSED.replace(b"{code}", code.encode()).replace(b"{message}", message.encode())
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [body]
        return self.app(environ, start_response)

    def check(self, environ, query, params):
        try:
            key_id, day, region, service, _ = params["X-Amz-Credential"].split("/")
            stamp = params["X-Amz-Date"]
            expires = int(params["X-Amz-Expires"])
            signed = params["X-Amz-SignedHeaders"].split(";")
        except (KeyError, ValueError):
            return ("AuthorizationQueryParametersError", "malformed query signature")
        secret = self.keys.get(key_id)
        if secret is None:
            return ("InvalidAccessKeyId", "unknown access key")
        if not 1 <= expires <= 604800:
            return ("AuthorizationQueryParametersError", "X-Amz-Expires out of range")
        signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if datetime.datetime.now(datetime.timezone.utc) > signed_at + datetime.timedelta(seconds=expires):
            return ("AccessDenied", "Request has expired")
        host = environ.get("HTTP_HOST", "")
        path = environ.get("RAW_URI", environ.get("PATH_INFO", "")).split("?")[0]
        rest = [(k, v) for k, v in query if k != "X-Amz-Signature"]
        headers = {h: host if h == "host" else environ.get("HTTP_" + h.upper().replace("-", "_"), "") for h in signed}
        request = AWSRequest(method=environ["REQUEST_METHOD"], url=f"http://{host}{path}?{urlencode(rest)}", headers=headers)
        request.context["timestamp"] = stamp
        auth = S3SigV4QueryAuth(Credentials(key_id, secret), service, region, expires=expires)
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
        # Good: moto gets the same request without the query signature, signed in the header.
        plain = [(k, v) for k, v in query if not k.startswith("X-Amz-")]
        environ["QUERY_STRING"] = urlencode(plain)
        if "RAW_URI" in environ:
            environ["RAW_URI"] = path + ("?" + environ["QUERY_STRING"] if plain else "")
        inner = AWSRequest(method=environ["REQUEST_METHOD"], url=f"http://{host}{path}" + ("?" + environ["QUERY_STRING"] if plain else ""), headers={"host": host, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
        S3SigV4Auth(Credentials(key_id, secret), service, region).add_auth(inner)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
            environ["HTTP_" + name.upper().replace("-", "_")] = inner.headers[name]
        return None


def main():
    port = int(sys.argv[1])
    buckets = sys.argv[2:]
    app = PresignedUrls(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{port}"
    # Until authentication is turned on, moto takes any signature: the setup's is a stand-in.
    setup = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="patchbay")
    iam.put_user_policy(UserName="patchbay", PolicyName="s3", PolicyDocument=ALLOW_S3)
    key = iam.create_access_key(UserName="patchbay")["AccessKey"]
    app.keys[key["AccessKeyId"]] = key["SecretAccessKey"]
    s3 = boto3.client("s3", **setup)
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    # From here on every request is authenticated and authorized.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    print(f"READY {key['AccessKeyId']} {key['SecretAccessKey']}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
