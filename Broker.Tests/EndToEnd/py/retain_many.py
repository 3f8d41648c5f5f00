"""Publishes `count` retained QoS 1 messages on `prefix`/0 .. `prefix`/count-1 and waits for every PUBACK.

spec: {host, port, ca, version, timeout, publisher: {id, cert, key}, prefix, count}
out:  {connack, acked, failed: number of PUBACKs with a reason code >= 0x80}
"""
from e2e_common import RESULT, Peer, emit, load_spec

spec = load_spec()
publisher = Peer(spec, spec["publisher"])
RESULT["connack"] = publisher.connect()
if RESULT["connack"] != 0:
    emit(RESULT)
    raise SystemExit(1)
count = int(spec["count"])
prefix = spec["prefix"]
sent = 0
window = 64
while sent < count or len(publisher.client.e2e_acks) < count:
    # Keep at most `window` unacknowledged: paho queues without bound otherwise.
    while sent < count and sent - len(publisher.client.e2e_acks) < window:
        publisher.publish(f"{prefix}/{sent}", f"r{sent}", 1, True)
        sent += 1
    if publisher.client.loop(timeout=0.01) != 0:
        break
RESULT["acked"] = len(publisher.client.e2e_acks)
RESULT["failed"] = sum(1 for code in publisher.client.e2e_acks.values() if code >= 0x80)
publisher.disconnect()
emit(RESULT)
