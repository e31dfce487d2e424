"""A loopback Africa's Talking SMS gateway for the benchmark: `POST /version1/messaging` -> 101.

It speaks the same form API as `tests/fixtures/gateway.py` (path, `apiKey` header, `username`,
`to`, `message`), but keeps only counters so a burst of tens of thousands of messages costs no
memory, and runs as its own process so it does not share a GIL with the bench driver.
`GET /stats` returns `{"accepted": N, "refused": N}`.

    python bench/gateway.py --port 0 --username bench --api-key KEY   # prints the bound port
"""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted = 0
        self.refused = 0


def make_handler(
    *, username: str, api_key: str, counters: Counters
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real gateway
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's
        # delayed ACK of the headers (~40 ms on a keep-alive connection). Real HTTP servers
        # (the gateway's included) send without that stall, so this one must too.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: str, content_type: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/stats":
                self._answer(404, "Not found", "text/plain")
                return
            with counters.lock:
                stats = {"accepted": counters.accepted, "refused": counters.refused}
            self._answer(200, json.dumps(stats))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self.path != "/version1/messaging":
                self._answer(404, "Not found", "text/plain")
                return
            if self.headers.get("apiKey") != api_key or form.get("username") != username:
                with counters.lock:
                    counters.refused += 1
                self._answer(401, "The supplied authentication is invalid", "text/plain")
                return
            numbers = [n for n in form.get("to", "").split(",") if n]
            recipients = [
                {
                    "statusCode": 101,
                    "number": number,
                    "status": "Success",
                    "cost": "KES 0.8000",
                    "messageId": f"ATXid_{uuid.uuid4().hex}",
                }
                for number in numbers
            ]
            with counters.lock:
                counters.accepted += len(recipients)
            summary = f"Sent to {len(recipients)}/{len(numbers)} Total Cost: KES 0.8000"
            body = {"SMSMessageData": {"Message": summary, "Recipients": recipients}}
            self._answer(201, json.dumps(body))

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--username", required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args()
    counters = Counters()
    handler = make_handler(username=args.username, api_key=args.api_key, counters=counters)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
