// Entry point of the live room pages (/rooms/<id> and /kiosk/rooms/<id>).
import { Room } from './room.js';
import { recordingControls } from './recording-controls.js';

const root = document.querySelector('[data-meeting]');
if (root) {
  const room = new Room(root);
  // A handle for diagnostics from the developer tools (and the browser tests' getStats()).
  window.maeulRoom = room;
  room.start();
  recordingControls(root);
}
