// Entry point of the meeting pages (/rooms/<id> and /kiosk/rooms/<id>).
import { Room } from './room.js';
import { recordingControls } from './recording-controls.js';

const root = document.querySelector('[data-meeting]');
if (root) {
  const meeting = new Room(root);
  // A handle for diagnostics from the developer tools (and the browser tests' getStats()).
  window.maeulMeeting = meeting;
  meeting.start();
  recordingControls(root);
}
