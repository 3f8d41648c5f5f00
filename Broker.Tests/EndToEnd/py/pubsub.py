"""Subscribers subscribe, one publisher publishes, report what every subscriber received.

spec: {host, port, ca, version, timeout,
       subscribers: [{id, cert, key, filters: [[filter, qos], ...]}],
       publisher: {id, cert, key},
       messages: [{topic, payload, qos, retain}],
       expect: total number of deliveries to wait for, grace: seconds to keep listening afterwards (duplicates)}
out:  {subscribers: {id: {connack, suback, messages}}, publisher: {connack, acks: [reason code | null]}}
"""
from e2e_common import RESULT, Peer, emit, load_spec, pump

spec = load_spec()
subscribers = [Peer(spec, s) for s in spec["subscribers"]]
publisher = Peer(spec, spec["publisher"])
RESULT["subscribers"] = {}
for s, s_spec in zip(subscribers, spec["subscribers"]):
    entry = RESULT["subscribers"][s.name] = {"connack": s.connect()}
    if entry["connack"] != 0:
        emit(RESULT)
        raise SystemExit(1)
    entry["suback"] = s.subscribe(s_spec["filters"])
    entry["messages"] = s.messages

RESULT["publisher"] = {"connack": publisher.connect()}
if RESULT["publisher"]["connack"] != 0:
    emit(RESULT)
    raise SystemExit(1)
mids = [(publisher.publish(m["topic"], m["payload"], m.get("qos", 0), m.get("retain", False)), m.get("qos", 0))
        for m in spec["messages"]]
everyone = subscribers + [publisher]
expect = int(spec["expect"])
pump(everyone, lambda: all(q == 0 or publisher.ack(mid) is not None for mid, q in mids)
     and sum(len(s.messages) for s in subscribers) >= expect, float(spec.get("timeout", 20)) - 3)
pump(everyone, lambda: False, float(spec.get("grace", 0.3)))
RESULT["publisher"]["acks"] = [publisher.ack(mid) if q > 0 else None for mid, q in mids]
for p in everyone:
    p.disconnect()
emit(RESULT)
