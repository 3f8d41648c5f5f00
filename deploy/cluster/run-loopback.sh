#!/bin/sh
# Three nats-servers (one JetStream cluster) and three OmniBroker nodes on 127.0.0.1, from this folder's files.
# Usage: deploy/cluster/run-loopback.sh   (Ctrl-C stops all six processes, by PID)
# State (JetStream stores, node data, the shared development PKI) goes to deploy/cluster/state/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$here"
mkdir -p state
pids=""
stop() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

command -v nats-server >/dev/null || { echo "nats-server is missing (Debian: apt-get install nats-server)" >&2; exit 1; }
dotnet build "$repo/Broker.Host" -c Release -o "$here/state/bin" >/dev/null

for i in 0 1 2; do
    nats-server -c "nats-$i.conf" > "state/nats-$i.log" 2>&1 &
    pids="$pids $!"
done
# A JetStream meta leader must be elected before the nodes create their streams (they retry meanwhile anyway).
for _ in $(seq 1 100); do
    grep -qi "metadata leader" state/nats-*.log 2>/dev/null && break
    sleep 0.2
done

start_node() {
    (cd "node-$1" && exec dotnet "$here/state/bin/omnibroker.dll" --policy-dir "$repo/policies") > "state/node-$1.log" 2>&1 &
    pids="$pids $!"
}
wait_ready() {
    for _ in $(seq 1 300); do
        grep -q "\[6000\]" "state/node-$1.log" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "node-$1 did not start; see deploy/cluster/state/node-$1.log" >&2
    exit 1
}

# Node A creates the development PKI; B and C share it, so that a device is trusted by every node.
start_node a
wait_ready a
for n in b c; do
    mkdir -p "state/node-$n"
    cp -r state/node-a/pki "state/node-$n/"
    start_node "$n"
done
wait_ready b
wait_ready c
cat <<INFO
Cluster up (Ctrl-C stops it):
  nats-0/1/2  nats://127.0.0.1:4222 4223 4224  (monitoring http://127.0.0.1:8222 8223 8224)
  node-a      mqtts://127.0.0.1:8883  metrics http://127.0.0.1:9090/metrics
  node-b      mqtts://127.0.0.1:8893  metrics http://127.0.0.1:9091/metrics
  node-c      mqtts://127.0.0.1:8903  metrics http://127.0.0.1:9092/metrics
  device certificates and CA chain: deploy/cluster/state/node-a/pki
Logs: deploy/cluster/state/*.log
INFO
wait
