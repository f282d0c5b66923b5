// What every participant of a scheduled meeting sees besides the videos: the current agenda item,
// the raise-hand button (one big button on the kiosk), and what the chair asks of this page
// (microphone turned off, please turn it on, you have the floor). Events: docs/signaling.md.
import { call } from './signaling.js';

export class FloorView {
  constructor(meeting) {
    this.meeting = meeting;
    const root = meeting.root;
    this.texts = meeting.texts;
    this.agendaEl = root.querySelector('[data-agenda]');
    this.agendaTitle = root.querySelector('[data-agenda-title]');
    this.handButton = root.querySelector('[data-action="hand"]');
    this.notice = root.querySelector('[data-notice]');
    this.noticeText = root.querySelector('[data-notice-text]');
    this.noticeUnmute = root.querySelector('[data-action="notice-unmute"]');
    this.noticeClose = root.querySelector('[data-action="notice-close"]');
    this.hands = { queue: [], floor: null };
    this.active = false; // a scheduled meeting (ad-hoc rooms have no chair, agenda or hands)
    if (this.handButton) this.handButton.addEventListener('click', () => this.toggleHand());
    if (this.noticeUnmute)
      this.noticeUnmute.addEventListener('click', () => {
        this.meeting.setMic(true);
        this.hideNotice();
      });
    if (this.noticeClose) this.noticeClose.addEventListener('click', () => this.hideNotice());
  }

  listen(socket) {
    socket.on('agenda', (agenda) => this.showAgenda(agenda));
    socket.on('hands', (hands) => {
      this.hands = hands;
      this.render();
    });
    socket.on('chair_mute', () => {
      this.meeting.setMic(false);
      this.showNotice(this.texts.chair_muted, false);
    });
    socket.on('ask_unmute', ({ floor }) => {
      if (!this.meeting.audioMuted) {
        if (floor) this.showNotice(this.texts.your_turn, false);
        return;
      }
      this.showNotice(floor ? this.texts.your_turn_unmute : this.texts.asked_to_unmute, true);
    });
  }

  joined(ack) {
    this.active = Boolean(ack.floor);
    if (!ack.floor) return;
    this.showAgenda(ack.floor.agenda);
    this.hands = ack.floor.hands;
    this.render();
  }

  showAgenda(agenda) {
    if (!this.agendaEl) return;
    const current = agenda && agenda.current;
    this.agendaEl.hidden = !current;
    if (current) {
      this.agendaTitle.textContent = `${current.position}. ${current.title}`;
      this.agendaEl.dataset.itemId = String(current.id);
    }
  }

  raised() {
    return this.hands.queue.includes(this.meeting.pid);
  }

  render() {
    if (!this.handButton) return;
    this.handButton.hidden = !this.active;
    const hasFloor = this.hands.floor && this.hands.floor === this.meeting.pid;
    const raised = this.raised();
    this.handButton.setAttribute('aria-pressed', String(raised));
    this.handButton.textContent = hasFloor ? this.texts.you_have_floor : raised ? this.texts.hand_down : this.texts.hand_up;
    this.handButton.disabled = Boolean(hasFloor);
    this.meeting.root.dataset.floor = hasFloor ? 'mine' : '';
  }

  async toggleHand() {
    const raised = !this.raised();
    try {
      this.hands = await call(this.meeting.socket, 'hand', { raised });
      const { ok: _ok, ...hands } = this.hands;
      this.hands = hands;
    } catch (error) {
      console.warn('hand', error);
    }
    this.render();
  }

  showNotice(text, offerUnmute) {
    if (!this.notice) return;
    this.noticeText.textContent = text;
    this.noticeUnmute.hidden = !offerUnmute;
    this.notice.hidden = false;
    clearTimeout(this.noticeTimer);
    // A request the resident did not answer goes away by itself; the chair can ask again.
    this.noticeTimer = setTimeout(() => this.hideNotice(), 30000);
  }

  hideNotice() {
    if (this.notice) this.notice.hidden = true;
  }
}
