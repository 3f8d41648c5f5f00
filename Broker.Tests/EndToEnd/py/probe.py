"""Connect, optionally subscribe (one SUBSCRIBE) and publish; report the broker's answers.

spec: {host, port, ca, version, timeout, client: {id, cert, key}, subscribe: [[filter, qos]], publish: [{topic, payload, qos, retain}]}
out:  {connack, suback, acks: [PUBACK/PUBCOMP reason code | null for QoS 0]}
"""
from e2e_common import RESULT, Peer, emit, load_spec, pump

spec = load_spec()
peer = Peer(spec, spec["client"])
RESULT["connack"] = peer.connect()
if RESULT["connack"] != 0:
    RESULT["closed"] = pump([peer], lambda: peer.closed, 5)
    emit(RESULT)
    raise SystemExit(0)
if spec.get("subscribe"):
    RESULT["suback"] = peer.subscribe(spec["subscribe"])
mids = [(peer.publish(m["topic"], m["payload"], m.get("qos", 0), m.get("retain", False)), m.get("qos", 0))
        for m in spec.get("publish", [])]
pump([peer], lambda: all(q == 0 or peer.ack(mid) is not None for mid, q in mids), 10)
RESULT["acks"] = [peer.ack(mid) if q > 0 else None for mid, q in mids]
peer.disconnect()
emit(RESULT)
