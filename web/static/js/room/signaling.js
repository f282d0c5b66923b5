// Socket.io signaling for the meeting pages (events: docs/signaling.md).
// socket.io-client 4.8.4, vendored (MIT): web/static/vendor/README.md
import { io } from '../../vendor/socket.io.esm.min.js';

const CALL_TIMEOUT_MS = 15000;

export class SignalingError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// Same-origin socket; the session cookie (officials) or the kiosk cookie authenticates it.
// socket.io reconnects by itself after a drop; the page rejoins on every 'connect'. Retries stay
// frequent (at most 2 s apart) so a hall is back within seconds of its link returning.
const RETRY_MS = 500;
const RETRY_MAX_MS = 2000;
// A server that stops cleanly (a restart) says 'server_restarting' first: then retry every 250 ms
// instead of backing off, so the page rejoins within moments of the server answering again.
const RESTART_RETRY_MS = 250;

// The room id rides in the connection URL's query (`?room=`): nginx hashes it so every socket
// of one room reaches the same web process, which holds that room's participant list, floor and
// lobby (docs/scale.md). Pages with no room leave it out and go to any web process.
export function openSocket(roomId) {
  const socket = io({
    transports: ['websocket'],
    reconnectionDelay: RETRY_MS,
    reconnectionDelayMax: RETRY_MAX_MS,
    ...(roomId === undefined ? {} : { query: { room: String(roomId) } }),
  });
  socket.on('server_restarting', () => {
    socket.io.reconnectionDelay(RESTART_RETRY_MS);
    socket.io.reconnectionDelayMax(RESTART_RETRY_MS);
  });
  socket.on('connect', () => {
    socket.io.reconnectionDelay(RETRY_MS);
    socket.io.reconnectionDelayMax(RETRY_MAX_MS);
  });
  return socket;
}

// Emit with an acknowledgement; resolves with the ack, rejects with SignalingError on {error}.
export function call(socket, event, data) {
  return new Promise((resolve, reject) => {
    socket.timeout(CALL_TIMEOUT_MS).emit(event, data, (timeoutError, ack) => {
      if (timeoutError) {
        reject(new SignalingError('timeout', `no answer to ${event}`));
      } else if (ack && ack.error) {
        reject(new SignalingError(ack.error.code, ack.error.message));
      } else {
        resolve(ack);
      }
    });
  });
}
