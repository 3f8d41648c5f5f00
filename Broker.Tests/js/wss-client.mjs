// An MQTT.js client over secure WebSockets with a device certificate, driven line by line by the xunit tests
// (Broker.Tests/WebSockets/MqttJsClient.cs).
//
// Usage: node wss-client.mjs '<json options>'
//   options: { url, ca, cert, key, clientId, protocolVersion (4 = 3.1.1, 5 = 5.0), keepalive? }
// Commands, one JSON object per line on stdin:
//   {"op":"subscribe","topic":"t","qos":1}   -> {"event":"subscribed","granted":[...]}
//   {"op":"publish","topic":"t","payload":"p","qos":1} -> {"event":"published"}
//   {"op":"end"}                             -> {"event":"ended"}, then the process exits
// Events, one JSON object per line on stdout: connected, message, error, close, subscribed, published, ended.
// The process exits by itself 60 s after start at the latest, so a hung broker cannot hang the test run.
import fs from 'node:fs';
import readline from 'node:readline';
import mqtt from 'mqtt';

const options = JSON.parse(process.argv[2]);
const emit = (event, data = {}) => process.stdout.write(JSON.stringify({ event, ...data }) + '\n');
// stdout is a pipe: exit only once the last line has been handed over.
const emitAndExit = (event, code) => process.stdout.write(JSON.stringify({ event }) + '\n', () => process.exit(code));
const failsafe = setTimeout(() => emitAndExit('timeout', 3), 60_000);
failsafe.unref();

const client = mqtt.connect(options.url, {
  ca: fs.readFileSync(options.ca),
  cert: fs.readFileSync(options.cert),
  key: fs.readFileSync(options.key),
  rejectUnauthorized: true,
  protocolVersion: options.protocolVersion ?? 5,
  clientId: options.clientId,
  clean: true,
  keepalive: options.keepalive ?? 30,
  // One attempt: the tests assert on exactly what happened to it.
  reconnectPeriod: 0,
  connectTimeout: 30_000, // generous: a loaded 2-core CI machine starts node and does TLS slowly
});

client.on('connect', (connack) => emit('connected', { sessionPresent: connack.sessionPresent }));
client.on('message', (topic, payload, packet) => emit('message', { topic, payload: payload.toString('utf8'), qos: packet.qos }));
client.on('error', (error) => emit('error', { message: error.message, code: error.code ?? null }));
client.on('close', () => emit('close'));
client.on('disconnect', (packet) => emit('disconnect', { reasonCode: packet.reasonCode ?? null }));

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  switch (command.op) {
    case 'subscribe':
      client.subscribe(command.topic, { qos: command.qos ?? 0 }, (error, granted) => {
        if (error) emit('error', { message: error.message, code: error.code ?? null });
        else emit('subscribed', { granted: granted.map((g) => g.qos) });
      });
      break;
    case 'publish':
      client.publish(command.topic, command.payload, { qos: command.qos ?? 0 }, (error) => {
        if (error) emit('error', { message: error.message, code: error.code ?? null });
        else emit('published');
      });
      break;
    case 'end':
      client.end(false, {}, () => emitAndExit('ended', 0));
      break;
    default:
      emit('error', { message: `unknown op ${command.op}` });
  }
});
lines.on('close', () => client.end(true, {}, () => process.exit(0)));
