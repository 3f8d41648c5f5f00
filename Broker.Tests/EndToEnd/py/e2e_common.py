"""Shared helpers of the end-to-end paho scripts (Eclipse Paho for Python, 1.6.x and 2.x).

Every script takes one argument, a JSON object:
  {"host": "127.0.0.1", "port": 8883, "ca": "ca.pem", "version": "5" | "3.1.1", "timeout": 20, ...}
and prints exactly one JSON object on stdout (scripts that must report progress print one JSON object per line).
Every wait is bounded by the script's own timeout (SIGALRM), so a hung broker cannot hang a test run.
Clients are pumped by hand with loop() (no background thread): nothing reconnects behind the test's back.
"""
import json
import os
import signal
import struct
import sys
import time

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

RESULT = {}
paho_version = paho.mqtt.__version__


def emit(obj):
    print(json.dumps(obj), flush=True)


def load_spec():
    if len(sys.argv) != 2:
        print("usage: script.py '<json spec>'", file=sys.stderr)
        sys.exit(2)
    spec = json.loads(sys.argv[1])

    def on_alarm(signum, frame):
        RESULT["error"] = "timeout"
        emit(RESULT)
        sys.stdout.flush()
        os._exit(3)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(spec.get("timeout", 20)))
    RESULT["paho"] = paho_version
    return spec


def _reason_value(rc):
    """ReasonCodes (5.0) or int (3.1.1) -> int."""
    return rc.value if hasattr(rc, "value") else int(rc)


class _Client(mqtt.Client):
    """Paho 1.6 does not hand the PUBACK/PUBCOMP reason code to on_publish: read it from the packet."""

    def _handle_pubackcomp(self, cmd):
        packet = self._in_packet["packet"]
        if len(packet) >= 2:
            mid, = struct.unpack("!H", packet[:2])
            self.e2e_acks[mid] = packet[2] if len(packet) > 2 else 0
        return super()._handle_pubackcomp(cmd)


class Peer:
    """One MQTT client over TLS with everything it saw recorded."""

    def __init__(self, spec, c):
        self.spec = spec
        self.name = c["id"]
        self.v5 = spec["version"] == "5"
        self.clean = c.get("clean", True)
        self.expiry = c.get("expiry")
        kwargs = {"client_id": c["id"], "protocol": mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311}
        if not self.v5:
            kwargs["clean_session"] = self.clean
        if hasattr(mqtt, "CallbackAPIVersion"):
            kwargs["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
        self.client = _Client(**kwargs)
        self.client.e2e_acks = {}
        self.client.tls_set(ca_certs=spec["ca"], certfile=c["cert"], keyfile=c["key"])
        self.connack = None
        self.session_present = None
        self.subacks = {}
        self.messages = []
        self.closed = False
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        will = c.get("will")
        if will:
            self.client.will_set(will["topic"], will["payload"], will.get("qos", 0), will.get("retain", False))

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack = _reason_value(rc)
        self.session_present = bool(flags.get("session present"))

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        self.subacks[mid] = [_reason_value(g) for g in granted]

    def _on_message(self, client, userdata, m):
        self.messages.append({"topic": m.topic, "payload": m.payload.decode("utf-8", "replace"),
                              "qos": m.qos, "retain": bool(m.retain), "dup": bool(m.dup)})

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.closed = True

    def connect(self):
        """Sends CONNECT and waits (bounded) for the CONNACK or the close; returns the CONNACK code or None."""
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            if self.expiry is not None:
                props.SessionExpiryInterval = int(self.expiry)
            self.client.connect(self.spec["host"], int(self.spec["port"]), keepalive=30,
                                clean_start=self.clean, properties=props)
        else:
            self.client.connect(self.spec["host"], int(self.spec["port"]), keepalive=30)
        pump([self], lambda: self.connack is not None or self.closed, float(self.spec.get("connectTimeout", 10)))
        return self.connack

    def subscribe(self, filters):
        """filters: [[filter, qos], ...] in one SUBSCRIBE; returns the SUBACK codes (None when none came)."""
        rc, mid = self.client.subscribe([(f, int(q)) for f, q in filters])
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"{self.name}: subscribe failed locally: {rc}")
        pump([self], lambda: mid in self.subacks or self.closed, 10)
        return self.subacks.get(mid)

    def publish(self, topic, payload, qos, retain=False):
        info = self.client.publish(topic, payload, int(qos), bool(retain))
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"{self.name}: publish failed locally: {info.rc}")
        return info.mid

    def ack(self, mid):
        return self.client.e2e_acks.get(mid)

    def disconnect(self):
        """Clean DISCONNECT, then waits (bounded) until the broker closes the connection."""
        if not self.closed:
            self.client.disconnect()
            pump([self], lambda: self.closed, 5)

    def report(self):
        return {"connack": self.connack, "sessionPresent": self.session_present,
                "messages": self.messages, "closed": self.closed}


def pump(peers, done, seconds):
    """Runs the network loops of peers until done() or seconds have passed; returns done()."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        open_peers = [p for p in peers if not p.closed]
        if not open_peers:
            return done()
        for p in open_peers:
            rc = p.client.loop(timeout=0.02)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                p.closed = True
    return True
