#!/usr/bin/env bash
# What the FireWorks tests need (tests/test_fireworks.py), idempotent: FireWorks with its mongomock extra
# (a MongoDB stand-in inside one process) and BriskDB (a MongoDB wire-protocol server the tests start on
# loopback for concurrent launchers). No MongoDB server can be installed here; where one is reachable,
# set TANSAKU_TEST_MONGODB_URI=mongodb://host:port and the same tests run against it too.
#
# briskdb 0.1.0b3 refuses the "backpressure" field that pymongo >= 4.18 sends in its handshake; its
# [pymongo] extra pins pymongo 4.17.0, which FireWorks accepts.
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if python - <<'PY' 2>/dev/null
import importlib.metadata as m
assert m.version("pymongo") == "4.17.0" and m.version("briskdb") == "0.1.0b3"
import fireworks, mongomock, mongomock_persistence  # noqa: F401
PY
then
  echo "fireworks.sh: FireWorks, mongomock and briskdb present"
  exit 0
fi
python -m pip install -q "fireworks[mongomock]>=2.0" "briskdb[pymongo]==0.1.0b3"
