// Reference echo server on node `ws` for the differential conformance suite.
// Echoes every message with its opcode; permessage-deflate enabled (ws
// servers default to off). Prints {"port": P} on stdout once listening.
'use strict';
let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  process.stderr.write('node_echo: the `ws` package is missing; run ' +
    '`npm ci --prefix tests/conformance --no-audit --no-fund`\n');
  process.exit(3);
}
const wss = new WebSocket.WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: { threshold: 0 },
  maxPayload: 64 * 1024 * 1024,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  process.stdout.write(JSON.stringify({ port: wss.address().port }) + '\n');
});
const stop = () => { wss.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
