"""A webhook receiver for gendoc's job events, verifying the Standard Webhooks signature
with nothing but the standard library (the README shows it; tests run it).

    GENDOC_WEBHOOK_SECRET=whsec_... python webhook_receiver.py 9000

Each event is a POST with `webhook-id`, `webhook-timestamp` and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the secret's bytes)
and a JSON body `{"type": "job.succeeded", "timestamp": ..., "data": <the job>}`.
Answer 2xx fast; anything else is retried, with the same `webhook-id`.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = base64.b64decode(os.environ["GENDOC_WEBHOOK_SECRET"].removeprefix("whsec_"))
TOLERANCE = 300  # seconds: an older (replayed) message is refused
seen: set[str] = set()  # webhook-ids handled: a retry of one is acknowledged, not redone


def verified(headers: dict[str, str], body: bytes) -> bool:
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > TOLERANCE:
        return False
    mac = hmac.new(SECRET, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    # The header may list several space-separated signatures (a secret being rotated).
    return any(hmac.compare_digest(sig.partition(",")[2], expected)
               for sig in headers["webhook-signature"].split() if sig.startswith("v1,"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not verified(headers, body):
            self.send_response(401)
        else:
            if headers["webhook-id"] not in seen:
                seen.add(headers["webhook-id"])
                event = json.loads(body)
                job = event["data"]
                print(event["type"], job["id"], job.get("result", {}).get("url"), flush=True)
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
