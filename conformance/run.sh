#!/usr/bin/env bash
# Runs the Autobahn WebSocket conformance suite (fuzzingclient, every case but the
# permessage-deflate groups 12.* and 13.*) against ringgate-wsecho, a test-only echo server.
#
# autobahntestsuite is Python-2 only: it runs from a Python 2.7 virtualenv under
# .build-conformance/ (git-ignored), built with the pins from shared/PLATFORM-NOTES.md.
# Exits non-zero when any case FAILED.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/.build-conformance
VENV=$WORK/venv
PORT=${WSECHO_PORT:-9001}
mkdir -p "$WORK"

if [ ! -x "$VENV/bin/wstest" ]; then
    PY27="$(pyenv root)/versions/2.7.18/bin/python"
    [ -x "$PY27" ] || { echo "run.sh: no Python 2.7.18 at $PY27 (pyenv install 2.7.18)" >&2; exit 2; }
    echo "== setting up the Python 2.7 virtualenv in $VENV"
    "$PY27" -m pip install --quiet --target "$WORK/virtualenv-pkg" 'virtualenv<20.22'
    PYTHONPATH="$WORK/virtualenv-pkg" "$PY27" -m virtualenv --quiet "$VENV"
    "$VENV/bin/pip" install --quiet setuptools==44.0.0 txaio==2.1.0 incremental==16.10.1 \
        pyOpenSSL==19.1.0 cryptography==3.3.2 Twisted==19.10.0 zope.interface==4.6.0 \
        jinja2==2.11.3 markupsafe==1.1.1 Werkzeug==1.0.1 klein==17.10.0 \
        service_identity==18.1.0 unittest2==1.1.0 six==1.16.0 'autobahn[accelerate,twisted]==0.10.9'
    "$VENV/bin/pip" install --quiet --no-deps autobahntestsuite==25.10.1
fi

echo "== building ringgate-wsecho (release)"
# The same flags as `make release`, so this build reuses its products instead of relinking them.
swift build -c release --static-swift-stdlib --product ringgate-wsecho
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/ringgate-wsecho"

"$BIN" --port "$PORT" > "$WORK/wsecho.log" 2>&1 &
ECHO_PID=$!
trap 'kill "$ECHO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

# The spec's relative outdir resolves against the working directory: run from the root.
sed "s#ws://127.0.0.1:9001#ws://127.0.0.1:$PORT#" conformance/fuzzingclient.json > "$WORK/fuzzingclient.json"
rm -rf "$WORK/reports"
echo "== wstest -m fuzzingclient"
"$VENV/bin/wstest" -m fuzzingclient -s "$WORK/fuzzingclient.json" > "$WORK/wstest.log" 2>&1 || {
    echo "wstest failed; see $WORK/wstest.log" >&2; tail -20 "$WORK/wstest.log" >&2; exit 2; }

python3 - "$WORK/reports/servers/index.json" <<'PY'
import json, sys
from collections import Counter
index = json.load(open(sys.argv[1]))
counts, failed = Counter(), []
for agent, cases in index.items():
    for case, r in cases.items():
        counts[r["behavior"]] += 1
        # A case FAILED on its messages or on its closing handshake counts as FAILED.
        if r["behavior"] == "FAILED" or r.get("behaviorClose") == "FAILED":
            failed.append(case)
def key(c):
    return [int(p) if p.isdigit() else p for p in c.split(".")]
print("autobahn: %d cases" % sum(counts[k] for k in ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED")))
for k in ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED"):
    print("  %-14s %d" % (k, counts[k]))
if failed:
    print("FAILED: " + " ".join(sorted(set(failed), key=key)))
    sys.exit(1)
PY
