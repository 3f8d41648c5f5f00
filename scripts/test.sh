#!/usr/bin/env bash
# Runs the whole OmniBroker test suite. Installs the real peers the tests talk to when they are missing:
# mosquitto-clients (mosquitto_pub/sub), python3-paho-mqtt, openssl (an `openssl ocsp` responder),
# prometheus (promtool), afl++ (the fuzzing smoke run), curl (the EST tests), nats-server (the cluster tests) and Node's `mqtt` package (MQTT.js)
# for the WebSocket tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
/usr/bin/python3 -c 'import paho.mqtt' >/dev/null 2>&1 || need+=(python3-paho-mqtt)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v afl-fuzz >/dev/null 2>&1 || need+=(afl++)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -f Broker.Tests/js/package.json ] && command -v npm >/dev/null 2>&1; then
  (cd Broker.Tests/js && { [ -d node_modules/mqtt ] || npm install --no-audit --no-fund --silent; })
fi

results="$(mktemp -d)"
status=0
dotnet test OmniBroker.sln -c Release --logger "console;verbosity=normal" --logger "trx" \
  --results-directory "$results" --blame-hang-timeout 5m "$@" || status=$?

# One closing line that any CI reader understands, summed over every test assembly.
passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); p=${p:-0}
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=${f:-0}
  n=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters"); n=${n:-0}
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + n))
done
rm -rf "$results"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ] && [ "$status" -eq 0 ]; then echo "test.sh: no test ran"; exit 1; fi
exit "$status"
