"""``python -m archway.topologies.announce HOST:PORT PARENT_PID TEXT``: print TEXT on stdout
once ``http://HOST:PORT/healthz`` answers 200 (the server is bound, listening and its app is up),
or exit quietly when the parent process is gone (the server never came up).

A separate process so that the server's process runs no thread of ours while it forks workers.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import time


def server_answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def main(address: str, parent: int, text: str) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server; then we see it gone
    while os.getppid() == parent:
        if server_answers(address):
            print(text, flush=True)
            return 0
        time.sleep(0.1)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
