"""Persistent session. mode "subscribe": connect without clean start (5.0: with a Session Expiry Interval),
subscribe, disconnect. mode "resume": connect again with the same client id and collect what was queued.

spec: {host, port, ca, version, timeout, client: {id, cert, key, clean: false, expiry}, mode,
       filters: [[filter, qos]] (subscribe), expect, grace (resume)}
out:  {connack, sessionPresent, suback | messages}
"""
from e2e_common import RESULT, Peer, emit, load_spec, pump

spec = load_spec()
peer = Peer(spec, spec["client"])
RESULT["connack"] = peer.connect()
RESULT["sessionPresent"] = peer.session_present
if RESULT["connack"] != 0:
    emit(RESULT)
    raise SystemExit(1)
if spec["mode"] == "subscribe":
    RESULT["suback"] = peer.subscribe(spec["filters"])
else:
    RESULT["messages"] = peer.messages
    pump([peer], lambda: len(peer.messages) >= int(spec["expect"]), float(spec.get("timeout", 20)) - 3)
    pump([peer], lambda: False, float(spec.get("grace", 0.3)))
peer.disconnect()
emit(RESULT)
