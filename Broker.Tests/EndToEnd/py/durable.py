"""Clients for the durable-state tests (the broker process is killed with SIGKILL and restarted meanwhile).

mode "publish": connect (client.clean/expiry), publish `count` messages "<prefix>-<n>" on `topic` at `qos` with at most
  `window` in flight; print {"acked": payload, "reason": code} for each PUBACK/PUBCOMP as it arrives; end when all are
  acknowledged or the connection is lost: {"done": true, "acked": n, "lost": bool}.
mode "qos2-split": publish one QoS 2 message; on PUBREC do NOT send PUBREL (as if it was lost in a crash), print
  {"pubrec": mid}; wait until the broker goes away; reconnect (retrying, same persistent session): paho resends the
  PUBREL; print {"pubcomp": reason, "sessionPresent": bool}.
mode "will-hold": connect with a will that has a Will Delay Interval (will: {topic, payload, qos, delay}; 3.1.1: no
  delay) and hold the connection until killed; prints {"connack": n}.

spec: {host, port, ca, version, timeout, client: {id, cert, key, clean, expiry}, mode, ...}
"""
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from e2e_common import RESULT, Peer, emit, load_spec, pump


class SplitPeer(Peer):
    def __init__(self, spec, c):
        super().__init__(spec, c)
        self.client.e2e_drop_pubrel = False
        self.client.e2e_pubrec = None
        original = self.client._send_pubrel

        def send_pubrel(mid):
            if self.client.e2e_drop_pubrel:
                self.client.e2e_pubrec = mid
                return mqtt.MQTT_ERR_SUCCESS
            return original(mid)

        self.client._send_pubrel = send_pubrel


spec = load_spec()
mode = spec["mode"]
c = spec["client"]

if mode == "will-hold":
    peer = Peer(spec, c)
    will = spec["will"]
    props = None
    if peer.v5:
        props = Properties(PacketTypes.WILLMESSAGE)
        props.WillDelayInterval = int(will["delay"])
    peer.client.will_set(will["topic"], will["payload"], int(will.get("qos", 1)), bool(will.get("retain", False)), properties=props)
    RESULT["connack"] = peer.connect()
    emit(RESULT)
    pump([peer], lambda: peer.closed, float(spec.get("timeout", 20)))
    raise SystemExit(0)

if mode == "publish":
    peer = Peer(spec, c)
    peer.client.max_inflight_messages_set(int(spec.get("window", 10)))
    payloads = {}
    acked = []

    def on_publish(client, userdata, mid):
        payload = payloads.pop(mid, None)
        if payload is not None:
            acked.append(payload)
            emit({"acked": payload, "reason": client.e2e_acks.get(mid, 0)})

    peer.client.on_publish = on_publish
    RESULT["connack"] = peer.connect()
    if RESULT["connack"] != 0:
        emit(RESULT)
        raise SystemExit(1)
    count = int(spec["count"])
    for n in range(count):
        payload = f'{spec["prefix"]}-{n}'
        payload = payload + "." * max(0, int(spec.get("size", 0)) - len(payload))
        payloads[peer.publish(spec["topic"], payload, int(spec["qos"]))] = payload
    pump([peer], lambda: len(acked) >= count or peer.closed, float(spec.get("timeout", 20)) - 2)
    RESULT.update({"done": True, "acked": len(acked), "lost": peer.closed})
    emit(RESULT)
    raise SystemExit(0)

if mode == "qos2-split":
    peer = SplitPeer(spec, c)
    peer.client.e2e_drop_pubrel = True
    RESULT["connack"] = peer.connect()
    if RESULT["connack"] != 0:
        emit(RESULT)
        raise SystemExit(1)
    mid = peer.publish(spec["topic"], spec["payload"], 2)
    pump([peer], lambda: peer.client.e2e_pubrec is not None, 10)
    emit({"pubrec": peer.client.e2e_pubrec})
    # The test kills the broker now; the connection ends.
    pump([peer], lambda: peer.closed, float(spec.get("timeout", 20)) / 2)
    peer.client.e2e_drop_pubrel = False
    deadline = time.monotonic() + float(spec.get("timeout", 20)) / 2
    while time.monotonic() < deadline:
        peer.closed = False
        peer.connack = None
        try:
            peer.client.reconnect()
        except OSError:
            time.sleep(0.3)
            continue
        pump([peer], lambda: peer.connack is not None or peer.closed, 5)
        if peer.connack == 0:
            break
        time.sleep(0.3)
    pump([peer], lambda: mid in peer.client.e2e_acks or peer.closed, 10)
    emit({"pubcomp": peer.client.e2e_acks.get(mid), "sessionPresent": peer.session_present})
    peer.disconnect()
    raise SystemExit(0)

raise SystemExit(f"unknown mode {mode}")
