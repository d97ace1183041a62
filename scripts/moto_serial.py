"""moto's server with one DynamoDB request at a time.

moto runs each DynamoDB transaction against a deep copy of the table and
restores that copy when a condition fails, so two transactions served at
once can erase each other: a refused quota charge undid a concurrent
accepted one, and more uploads started than the quota holds. DynamoDB
serialises them; so does this. Only DynamoDB requests take the lock: an SQS
long poll holds its request for up to a second, and DynamoDB calls queued
behind it made every start, record and complete wait that long.
Connections stay threaded (keep-alive clients never block each other).

Usage: moto_serial.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

backend = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()


def app(environ, start_response):
    # DynamoDB's JSON protocol names the operation in X-Amz-Target: "DynamoDB_20120810.PutItem".
    if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        return backend(environ, start_response)
    with one_at_a_time:
        # The body is produced inside the lock: moto reads its state while writing it.
        return list(backend(environ, start_response))


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    # As moto_server does: moto writes its own port into the URLs it hands out.
    os.environ.setdefault("MOTO_PORT", str(port))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)
