"""MQTT 5.0 certificate renewal: CONNECT (record the CONNACK user properties), PUBLISH the CSR to
$omnibroker/certificates/renew with a Response Topic and Correlation Data, wait for the reply.

spec: {host, port, ca, version: "5", timeout, client: {id, cert, key}, csr: "<PEM>", responseTopic, correlation}
out:  {connack, connackUserProperties: {..}, ack, reply: {topic, payload, contentType, correlation, userProperties: {..}}}
"""
from e2e_common import RESULT, Peer, Properties, PacketTypes, emit, load_spec, pump

spec = load_spec()
peer = Peer(spec, spec["client"])
connack_props = {}


def on_connect(client, userdata, flags, rc, properties=None):
    peer.connack = rc.value if hasattr(rc, "value") else int(rc)
    for key, value in getattr(properties, "UserProperty", None) or []:
        connack_props[key] = value


replies = []


def on_message(client, userdata, m):
    props = m.properties
    replies.append({"topic": m.topic, "payload": m.payload.decode("utf-8", "replace"),
                    "contentType": getattr(props, "ContentType", None),
                    "correlation": (getattr(props, "CorrelationData", b"") or b"").decode("utf-8", "replace"),
                    "userProperties": dict(getattr(props, "UserProperty", None) or [])})


peer.client.on_connect = on_connect
peer.client.on_message = on_message
RESULT["connack"] = peer.connect()
RESULT["connackUserProperties"] = connack_props
if RESULT["connack"] != 0:
    emit(RESULT)
    raise SystemExit(0)
props = Properties(PacketTypes.PUBLISH)
props.ResponseTopic = spec["responseTopic"]
props.CorrelationData = spec["correlation"].encode("utf-8")
info = peer.client.publish("$omnibroker/certificates/renew", spec["csr"].encode("ascii"), 1, False, properties=props)
pump([peer], lambda: peer.ack(info.mid) is not None and len(replies) > 0, float(spec.get("timeout", 20)) - 2)
RESULT["ack"] = peer.ack(info.mid)
RESULT["reply"] = replies[0] if replies else None
peer.disconnect()
emit(RESULT)
