"""A client with a will. mode "hold": connect, print {"connack": n}, then stay connected until killed (the test
kills the process, so the connection ends without DISCONNECT). mode "disconnect": connect, send DISCONNECT, exit.

spec: {host, port, ca, version, timeout, client: {id, cert, key, will: {topic, payload, qos, retain}}, mode}
"""
from e2e_common import RESULT, Peer, emit, load_spec, pump

spec = load_spec()
peer = Peer(spec, spec["client"])
RESULT["connack"] = peer.connect()
if RESULT["connack"] != 0:
    emit(RESULT)
    raise SystemExit(1)
if spec["mode"] == "hold":
    emit(RESULT)
    pump([peer], lambda: peer.closed, float(spec.get("timeout", 20)))
    RESULT["closed"] = peer.closed
    emit(RESULT)
    raise SystemExit(1)
peer.disconnect()
RESULT["closed"] = peer.closed
emit(RESULT)
