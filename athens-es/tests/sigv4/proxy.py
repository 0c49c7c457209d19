"""A test stand-in for Amazon OpenSearch Service's front door: checks the AWS Signature Version 4
of every request with botocore (an implementation independent of the Rust `aws-sigv4` crate
Athens signs with) and forwards only correctly signed requests to a local engine; anything else
gets a 403, as AWS would answer.

    python proxy.py --upstream http://127.0.0.1:9207 --region us-east-1 --service es \
        --access-key AKID --secret-key SECRET          # prints "listening on <port>"
    python proxy.py --self-test                        # the checks refuse what they must

Every verified request is logged on stderr as `signed <METHOD> <path>`: the paths Athens uses,
from which deploy/aws/search_access.tf's index-path policy is written. deploy/compose runs it in
front of its OpenSearch, so the local stack signs its requests as production does.
"""

import argparse
import hashlib
import hmac
import http.client
import sys
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_SKEW = timedelta(minutes=5)
FORWARDED = ("content-type", "content-encoding", "accept", "accept-encoding")
HOP_BY_HOP = ("connection", "keep-alive", "transfer-encoding", "content-length")


class Refused(Exception):
    """A request whose signature does not hold."""


def verify(method, raw_path, headers, body, expected):
    """Raises Refused unless `headers` carry a valid SigV4 signature of this request for the
    expected key, secret, region and service. `headers` maps lowercase names to values."""
    authorization = headers.get("authorization", "")
    prefix = "AWS4-HMAC-SHA256 "
    if not authorization.startswith(prefix):
        raise Refused("missing Authentication Token")
    fields = {}
    for part in authorization[len(prefix):].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    try:
        key, day, region, service, terminator = fields["Credential"].split("/")
        signed_names = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
    except (KeyError, ValueError):
        raise Refused("malformed Authorization header")
    if key != expected["key"]:
        raise Refused("The security token included in the request is invalid")
    if region != expected["region"] or service != expected["service"] or terminator != "aws4_request":
        raise Refused(f"Credential should be scoped to a valid region/service: got {region}/{service}")
    amz_date = headers.get("x-amz-date", "")
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise Refused("missing or malformed X-Amz-Date")
    if amz_date[:8] != day or abs(datetime.now(timezone.utc) - when) > MAX_SKEW:
        raise Refused("Signature expired or not yet current")
    for required in ("host", "x-amz-date"):
        if required not in signed_names:
            raise Refused(f"{required} must be signed")
    if "x-amz-security-token" in headers and "x-amz-security-token" not in signed_names:
        raise Refused("x-amz-security-token must be signed")
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and not hmac.compare_digest(declared, hashlib.sha256(body).hexdigest()):
        raise Refused("The provided x-amz-content-sha256 header does not match what was computed")
    missing = [name for name in signed_names if name not in headers]
    if missing:
        raise Refused(f"signed headers missing from the request: {missing}")

    path, _, query = raw_path.partition("?")
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{path}",
        headers={name: headers[name] for name in signed_names},
        data=body,
        params=urllib.parse.parse_qsl(query, keep_blank_values=True),
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(expected["key"], expected["secret"]), service, region)
    canonical = signer.canonical_request(request)
    computed = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(computed, signature):
        raise Refused("The request signature we calculated does not match the signature you provided")


def handler_for(upstream, expected):
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_one(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                verify(self.command, self.path, headers, body, expected)
            except Refused as refused:
                print(f"refused {self.command} {self.path}: {refused}", file=sys.stderr, flush=True)
                reply = ('{"message":"%s"}' % str(refused).replace('"', "'")).encode()
                self.send_response(403)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                return
            print(f"signed {self.command} {self.path.partition('?')[0]}", file=sys.stderr, flush=True)
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            onward = {name: headers[name] for name in FORWARDED if name in headers}
            connection.request(self.command, self.path, body=body or None, headers=onward)
            answer = connection.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

    return Handler


def self_test():
    """The checks accept a botocore-signed request and refuse every kind of tampering."""
    expected = {"key": "AKIDSELFTEST", "secret": "secret", "region": "us-east-1", "service": "es"}

    def signed(method, url, body, key="AKIDSELFTEST", secret="secret", region="us-east-1"):
        request = AWSRequest(method=method, url=url, data=body, headers={"content-type": "application/json"})
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        SigV4Auth(Credentials(key, secret), "es", region).add_auth(request)
        return {name.lower(): value for name, value in request.headers.items()} | {"host": "127.0.0.1:9"}

    url, path = "http://127.0.0.1:9/idx/_search?size=1&q=a%20b", "/idx/_search?size=1&q=a%20b"
    good = signed("POST", url, b"{}")
    verify("POST", path, good, b"{}", expected)
    cases = {
        "tampered body": ("POST", path, good, b"{ }"),
        "other path": ("POST", "/other/_search?size=1&q=a%20b", good, b"{}"),
        "other query": ("POST", "/idx/_search?size=2&q=a%20b", good, b"{}"),
        "other method": ("PUT", path, good, b"{}"),
        "wrong secret": ("POST", path, signed("POST", url, b"{}", secret="other"), b"{}"),
        "wrong region": ("POST", path, signed("POST", url, b"{}", region="eu-west-1"), b"{}"),
        "unknown key": ("POST", path, signed("POST", url, b"{}", key="AKIDOTHER"), b"{}"),
        "unsigned": ("POST", path, {"host": "127.0.0.1:9"}, b"{}"),
    }
    for name, (method, raw_path, headers, body) in cases.items():
        try:
            verify(method, raw_path, headers, body, expected)
        except Refused:
            continue
        sys.exit(f"self-test: {name} was accepted")
    print(f"self-test: a signed request accepted, {len(cases)} bad ones refused")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--service", default="es")
    parser.add_argument("--access-key")
    parser.add_argument("--secret-key")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    expected = {"key": args.access_key, "secret": args.secret_key, "region": args.region, "service": args.service}
    server = ThreadingHTTPServer((args.host, args.port), handler_for(args.upstream, expected))
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()  # until the runner stops it


if __name__ == "__main__":
    main()
