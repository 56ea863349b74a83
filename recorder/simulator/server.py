"""The simulated account over HTTP: AWS JSON 1.1 for CodePipeline, query/XML for STS.

Any boto3 client pointed at `endpoint_url` works unchanged: requests carry
`X-Amz-Target: CodePipeline_20150709.<Operation>`, answers are JSON with epoch
timestamps, errors are `{"__type", "message"}` with `x-amzn-ErrorType` and the
status AWS uses, so botocore raises the modeled exception classes and retries
throttling and 5xx on its own. Signatures are not checked. STS (recorder/simulator/
sts.py) answers GetCallerIdentity and AssumeRole and is exempt from every fault
except latency (real GetCallerIdentity needs no permission). With `members`, the
server holds several accounts: credentials AssumeRole issued select theirs, any
other credentials see `account`.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from recorder.simulator.faults import FaultPlan, Faults
from recorder.simulator.model import Account
from recorder.simulator.protocol import ApiError
from recorder.simulator.sts import SESSION_SECONDS, Sts

TARGET_PREFIX = "CodePipeline_20150709."
JSON_TYPE = "application/x-amz-json-1.1"


class SimulatorServer:
    """Serve `account` on (host, port) in a background thread; port 0 picks a free one.

    `members`: further accounts, reached through AssumeRole; `external_ids`: account
    id -> the ExternalId its roles require; `session_seconds`: the lifetime of the
    credentials AssumeRole issues when the request does not ask for one.
    """

    def __init__(
        self,
        account: Account,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        members: Sequence[Account] = (),
        external_ids: Mapping[str, str] | None = None,
        session_seconds: int = SESSION_SECONDS,
    ):
        self.account = account
        self.sts = Sts([account, *members], external_ids, session_seconds)
        self.faults = faults or Faults()
        self.calls: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()
        self._plan = FaultPlan(self.faults)
        self._count_lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.sim = self
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="cprec-simulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` or KeyboardInterrupt."""
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _count(self, counter: Counter, key: str) -> None:
        with self._count_lock:
            counter[key] += 1


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Closing does not wait for the handler threads: one serving an idle keep-alive
    # connection waits for the client's next request, and `cprec simulate` on Ctrl-C
    # (or a test's stop) took seconds, or forever, to exit (socketserver joins them).
    block_on_close = False
    allow_reuse_address = True
    sim: SimulatorServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "cprec-simulator"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet by default
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith(TARGET_PREFIX):
            self._codepipeline(target[len(TARGET_PREFIX) :], body)
        elif target:
            self._error("UnknownOperationException", f"Unknown target {target}", 400)
        else:
            self._query(body)

    def do_GET(self) -> None:
        self._error("UnknownOperationException", "Only POST is supported", 400)

    def _codepipeline(self, operation: str, body: bytes) -> None:
        sim = self.server.sim
        sim._count(sim.calls, operation)
        if sim.faults.latency_ms:
            time.sleep(sim.faults.latency_ms / 1000.0)
        try:
            acct = sim.sts.caller(self.headers.get("Authorization")).account
        except ApiError as e:
            self._error(e.code, e.message, e.http_status)
            return
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            self._error("SerializationException", "Request body is not valid JSON", 400)
            return
        region = _region(self.headers.get("Authorization"))
        fault = sim._plan.before(operation, params if isinstance(params, dict) else {},
                                 acct.account_id, region)  # fmt: skip
        if fault:
            kind, (code, message, status) = fault
            sim._count(sim.faulted, kind)
            self._error(code, message, status)
            return
        try:
            raw = acct.raw_body(operation, params)
            if raw is None:
                raw = json.dumps(acct.call(operation, params), separators=(",", ":")).encode()
        except ApiError as e:
            self._error(e.code, e.message, e.http_status)
            return
        if sim._plan.drop():
            sim._count(sim.faulted, "drop")
            self._send(200, raw, JSON_TYPE, cut=True)
            return
        self._send(200, raw, JSON_TYPE)

    def _query(self, body: bytes) -> None:
        sim = self.server.sim
        form = parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or [""])[0]
        sim._count(sim.calls, action or "<none>")
        if sim.faults.latency_ms:
            time.sleep(sim.faults.latency_ms / 1000.0)
        status, xml = sim.sts.answer(action, form, self.headers.get("Authorization"))
        self._send(status, xml.encode(), "text/xml")

    def _error(self, code: str, message: str, status: int) -> None:
        raw = json.dumps({"__type": code, "message": message}).encode()
        self._send(status, raw, JSON_TYPE, extra={"x-amzn-ErrorType": code})

    def _send(self, status: int, raw: bytes, ctype: str, *, extra=None, cut=False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not cut:
            self.wfile.write(raw)
            return
        # A dropped connection: part of the promised body, then a reset (RST, not
        # FIN: botocore does not enforce Content-Length, so a clean close would
        # pass a truncated body to the parser instead of raising).
        self.wfile.write(raw[: len(raw) // 2])
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
        self.close_connection = True


def _region(authorization: str | None) -> str:
    """The region a SigV4 request was signed for (its credential scope), as AWS buckets
    requests by it: `Credential=AKID/20261206/eu-west-1/codepipeline/aws4_request`."""
    scope = (authorization or "").partition("Credential=")[2].split(",")[0].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"
