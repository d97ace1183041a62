"""Runs the Lambda binaries under `cargo lambda watch` against a local stack
and invokes each file in events/ with `cargo lambda invoke`, checking each
answer against what the README documents for the sample as it stands (and,
with a live token and ids swapped in, the successful answers).

Run by `make lint` as: scripts/stack.sh .local/invoke python3 scripts/invoke_check.py
"""
import http.server
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
STATE = pathlib.Path(os.environ["SLUICE_STATE_DIR"])
SAMPLE_FILE = "3f8e2a52-6d1c-4b7e-9a0f-2c5d8e1b7a64"
SAMPLE_TOKEN = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.REPLACE.WITH-A-TOKEN-FROM-POST-auth-signin"
FUNCTION_OF = {
    "auth-signup": "auth", "auth-signin": "auth", "auth-signout": "auth", "presign": "presign", "presign-parts": "presign",
    "presign-checksums": "presign", "presign-single": "presign", "companion-create": "presign",
    "record-chunk": "record-chunk", "complete-upload": "complete-upload", "files": "files",
    "upload-state": "presign", "cancel-upload": "complete-upload", "sweeper": "sweeper",
    "files-list": "files", "download-url": "files", "delete-file": "files",
    "inspect": "inspect", "persist": "persist", "migrate": "migrate",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, ready, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if ready():
            return
        time.sleep(0.3)
    sys.exit(f"invoke-check: {what} not ready after {seconds} s")


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Invoker:
    def __init__(self, port):
        self.port = port
        self.checked = set()

    def invoke(self, sample, swaps=()):
        text = (EVENTS / f"{sample}.json").read_text()
        for old, new in swaps:
            text = text.replace(old, new)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as data:
            data.write(text)
        cmd = ["cargo", "lambda", "invoke", "-A", "127.0.0.1", "-P", str(self.port),
               FUNCTION_OF[sample], "--data-file", data.name, "--output-format", "json"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        os.unlink(data.name)
        if done.returncode != 0:
            sys.exit(f"invoke-check: {' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
        self.checked.add(sample)
        return json.loads(done.stdout)

    def http(self, sample, status, swaps=()):
        answer = self.invoke(sample, swaps)
        body = json.loads(answer.get("body") or "null")
        expect(answer.get("statusCode") == status, f"{sample} answers {status}: got {answer.get('statusCode')} {body}")
        return body


failures = []


def expect(ok, message):
    print(("ok    " + message.split(":")[0]) if ok else ("FAIL  " + message))
    if not ok:
        failures.append(message)


def response_catcher():
    """Stands in for CloudFormation's presigned response URL."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/response", received


def main():
    env_file = STATE / "lambda.env"
    env_file.unlink(missing_ok=True)
    api_port, s3_port, lambda_port = free_port(), free_port(), free_port()
    stack_env = dict(os.environ, SLUICE_API_PORT=str(api_port), SLUICE_S3_PORT=str(s3_port))
    stack = subprocess.Popen([str(ROOT / "target/debug/sluice-local"), "dev"], env=stack_env,
                             stdout=open(STATE / "dev.log", "w"), stderr=subprocess.STDOUT)
    watch = None
    try:
        wait_for("the local stack", env_file.exists, 60)
        watch = subprocess.Popen(["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P", str(lambda_port),
                                  "--env-file", str(env_file)], cwd=ROOT,
                                 stdout=open(STATE / "watch.log", "w"), stderr=subprocess.STDOUT)
        wait_for("cargo lambda watch", lambda: port_open(lambda_port), 120)
        run_checks(Invoker(lambda_port))
    finally:
        for process in (watch, stack):
            if process:
                process.terminate()
                process.wait(30)


def run_checks(lam):
    signed_up = lam.http("auth-signup", 201)
    expect(signed_up.get("email") == "ann@example.com", f"auth-signup body: answered {signed_up}")
    signed_in = lam.http("auth-signin", 200)
    token = signed_in.get("accessToken", "")
    expect(signed_in.get("tokenType") == "Bearer" and token.count(".") == 2, f"auth-signin body: answered {signed_in}")
    # Sign-out needs no live token: it clears whatever cookie the browser holds.
    signed_out = lam.invoke("auth-signout")
    cleared = [c for c in signed_out.get("cookies", []) if c.startswith("sluice_session=;") and "Max-Age=0" in c]
    expect(signed_out.get("statusCode") == 204 and cleared, f"auth-signout: answered {signed_out}")

    # As they stand, the API samples carry a placeholder token: refused.
    for sample in ("presign", "presign-parts", "presign-checksums", "presign-single", "companion-create", "record-chunk", "complete-upload", "files", "upload-state", "cancel-upload",
                   "files-list", "download-url", "delete-file"):
        body = lam.http(sample, 401)
        expect(body["error"]["code"] == "unauthorized", f"{sample}: answered {body}")

    # With a live token and file id, the documented successes.
    started = lam.http("presign", 201, [(SAMPLE_TOKEN, token)])
    expect(started.get("partCount") == 205 and len(started.get("parts", [])) == 100, f"presign body: answered {started}")
    live = [(SAMPLE_TOKEN, token), (SAMPLE_FILE, started["fileId"])]
    more = lam.http("presign-parts", 200, live)
    expect([p["partNumber"] for p in more["parts"]][:1] == [101], f"presign-parts body: answered {more}")
    summed = lam.http("presign-checksums", 200, live)
    expect([bool(p["headers"].get("x-amz-checksum-sha256")) for p in summed["parts"]] == [True, True],
           f"presign-checksums body: answered {summed}")
    single = lam.http("presign-single", 201, [(SAMPLE_TOKEN, token)])
    expect(single.get("mode") == "single" and single.get("url", "").startswith("http"), f"presign-single body: answered {single}")
    uppy = lam.http("companion-create", 200, [(SAMPLE_TOKEN, token)])
    expect(uppy.get("key", "").endswith("/site_survey.mp4") and uppy.get("uploadId"), f"companion-create body: answered {uppy}")
    recorded = lam.http("record-chunk", 200, live)
    expect(recorded.get("recordedParts") == 2 and recorded.get("partNumbers") == [1, 2], f"record-chunk body: answered {recorded}")
    resumable = lam.http("upload-state", 200, live)
    expect([p["partNumber"] for p in resumable.get("recordedParts", [])] == [1, 2], f"upload-state body: answered {resumable}")
    refused = lam.http("complete-upload", 409, live)
    expect(refused["error"]["code"] == "missing_parts", f"complete-upload body: answered {refused}")
    state = lam.http("files", 200, live)
    expect(state.get("status") == "UPLOADING" and state.get("recordedParts") == 2, f"files body: answered {state}")
    listed = lam.http("files-list", 200, live)
    expect(listed.get("files") == [], f"files-list body: answered {listed}")
    missing = lam.http("download-url", 404, live)
    expect(missing["error"]["code"] == "not_found", f"download-url body: answered {missing}")
    missing = lam.http("delete-file", 404, live)
    expect(missing["error"]["code"] == "not_found", f"delete-file body: answered {missing}")
    cancelled = lam.http("cancel-upload", 200, live)
    expect(cancelled.get("reason") == "cancelled", f"cancel-upload body: answered {cancelled}")

    # inspect: no such object in the local bucket, so nothing to judge.
    expect(lam.invoke("inspect") is None, "inspect: expected null for a missing object")
    # persist: the sample's owner does not exist, which Postgres refuses every
    # time (a foreign key): the message goes to the DLQ at once, not back.
    persisted = lam.invoke("persist")
    failed = [f["itemIdentifier"] for f in persisted.get("batchItemFailures", [])]
    expect(failed == [], f"persist: batchItemFailures {failed}, expected none (dead-lettered)")
    # sweeper: nothing on this stack has expired or lost its verdict.
    swept = lam.invoke("sweeper")
    expect(swept == {"swept": 0, "failed": 0, "redriven": 0}, f"sweeper: answered {swept}")
    # migrate: answers CloudFormation (here, a local stand-in) with SUCCESS.
    url, received = response_catcher()
    original = json.loads((EVENTS / "migrate.json").read_text())["ResponseURL"]
    lam.invoke("migrate", [(original, url)])
    expect(len(received) == 1 and received[0]["Status"] == "SUCCESS", f"migrate: CloudFormation was told {received}")

    unchecked = {p.stem for p in EVENTS.glob("*.json")} - lam.checked
    expect(not unchecked, f"events: never invoked {sorted(unchecked)}")
    if failures:
        sys.exit(f"invoke-check: {len(failures)} failure(s)")
    print(f"invoke-check: every file in events/ answered as documented ({len(lam.checked)} samples)")


if __name__ == "__main__":
    main()
