"""What stands in for MongoDB in the FireWorks tests and benchmark, and LaunchPad files pointing at it.

No MongoDB server can be installed on the test machine. BriskDB (PyPI ``briskdb``, beta) speaks MongoDB's
wire protocol over a real TCP socket from its own process, so stock pymongo, FireWorks' LaunchPad and
several ``rlaunch`` processes talk to it exactly as they would to ``mongod`` (concurrent rockets included).
``TANSAKU_TEST_MONGODB_URI=mongodb://host:port`` names a real MongoDB to run the same tests against.

    python tests/mongo_stand_in.py FOLDER PORT     # serve FOLDER on 127.0.0.1:PORT until killed
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

URI_VARIABLE = "TANSAKU_TEST_MONGODB_URI"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"the MongoDB stand-in exited ({process.returncode}): {process.stderr.read()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the MongoDB stand-in did not listen on port {port} within {seconds:.0f} s")


@contextlib.contextmanager
def briskdb_server(folder: Path) -> Iterator[str]:
    """A BriskDB MongoDB-protocol server in its own process on a free loopback port; yields its URI."""
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, str(folder), str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, process)
        yield f"mongodb://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_launchpad(path: Path, uri: str, name: str | None = None) -> Path:
    """A LaunchPad file for database ``name`` (default: a fresh one) at ``uri``; the database is reset
    (initialised) as ``lpad reset`` does."""
    from fireworks import LaunchPad

    name = name or f"tansaku_test_{uuid.uuid4().hex[:12]}"
    path.write_text(f"host: {uri}\nuri_mode: true\nname: {name}\nlogdir: null\nstrm_lvl: WARNING\n"
                    f"mongoclient_kwargs:\n  serverSelectionTimeoutMS: 20000\n")
    LaunchPad.from_file(str(path)).reset("", require_password=False)
    return path


def main() -> None:
    import briskdb

    folder, port = Path(sys.argv[1]), int(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    database = briskdb.open(folder, shards=4, documents=True)
    server = database.serve(mongo=f"127.0.0.1:{port}", http="127.0.0.1:0", admin=None)  # listens while referenced
    while not server.closed:  # serve until terminated
        time.sleep(3600)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
