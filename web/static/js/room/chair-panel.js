// The chair's panel on the official meeting page: the lobby (admit / send away), raised hands
// (give the floor), buttons on each participant (mute, ask to unmute, remove), the agenda
// (previous / next item, shown on every kiosk), end the meeting for everybody, and the halls whose
// link is weak. Only shown when the join ack says this page chairs the meeting.
import { call } from './signaling.js';

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text, className, onClick) {
  const b = el('button', `chair-button ${className}`, text);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

export class ChairPanel {
  constructor(meeting) {
    this.meeting = meeting;
    this.texts = meeting.texts;
    const root = meeting.root;
    this.panel = root.querySelector('[data-chair-panel]');
    this.active = false;
    this.lobby = [];
    this.agenda = { items: [], current: null };
    if (!this.panel) return;
    this.lobbyList = this.panel.querySelector('[data-lobby]');
    this.lobbyEmpty = this.panel.querySelector('[data-lobby-empty]');
    this.handsList = this.panel.querySelector('[data-hands]');
    this.handsEmpty = this.panel.querySelector('[data-hands-empty]');
    this.agendaCurrent = this.panel.querySelector('[data-agenda-current]');
    this.prev = this.panel.querySelector('[data-action="agenda-prev"]');
    this.next = this.panel.querySelector('[data-action="agenda-next"]');
    this.endAll = root.querySelector('[data-action="end-all"]');
    this.degraded = this.panel.querySelector('[data-degraded]');
    this.prev.addEventListener('click', () => this.step(-1));
    this.next.addEventListener('click', () => this.step(1));
    this.endAll.addEventListener('click', () => {
      if (window.confirm(this.texts.end_confirm)) this.act({ action: 'end' });
    });
  }

  listen(socket) {
    socket.on('lobby', ({ waiting }) => {
      this.lobby = waiting;
      this.render();
    });
    socket.on('agenda', (agenda) => {
      this.agenda = agenda;
      this.render();
    });
    socket.on('hands', () => this.render());
  }

  joined(ack) {
    this.active = Boolean(ack.is_chair && this.panel);
    if (!this.panel) return;
    this.panel.hidden = !this.active;
    this.endAll.hidden = !this.active;
    if (!this.active) return;
    this.lobby = ack.lobby || [];
    this.agenda = ack.floor ? ack.floor.agenda : { items: [], current: null };
    this.render();
  }

  async act(payload) {
    try {
      await call(this.meeting.socket, 'chair', payload);
    } catch (error) {
      console.warn('chair', payload.action, error);
    }
  }

  step(delta) {
    const items = this.agenda.items;
    if (!items.length) return;
    const at = this.agenda.current ? items.findIndex((i) => i.id === this.agenda.current.id) : -1;
    const target = items[Math.min(items.length - 1, Math.max(0, at + delta))];
    if (target) this.act({ action: 'agenda', item_id: target.id });
  }

  // Buttons next to each participant in the roster (called by Tiles for every row).
  rosterControls(person, li) {
    if (!this.active || person.id === this.meeting.pid) return;
    const box = el('span', 'roster-actions');
    const id = person.id;
    if (person.audio_muted) box.append(button(this.texts.ask_unmute, 'ask', () => this.act({ action: 'ask_unmute', participant_id: id })));
    else box.append(button(this.texts.mute_them, 'mute', () => this.act({ action: 'mute', participant_id: id })));
    if (!person.floor) box.append(button(this.texts.give_floor, 'floor', () => this.act({ action: 'give_floor', participant_id: id })));
    box.append(
      button(this.texts.remove, 'remove', () => {
        if (window.confirm(`${person.name}: ${this.texts.remove_confirm}`)) this.act({ action: 'remove', participant_id: id });
      }),
    );
    li.append(box);
  }

  render() {
    if (!this.active) return;
    const people = this.meeting.people;
    const name = (id) => (people.get(id) ? people.get(id).name : id);

    this.lobbyList.replaceChildren(
      ...this.lobby.map((w) => {
        const li = el('li', 'lobby-item');
        li.dataset.participant = w.id;
        li.append(el('span', 'lobby-name', w.village ? `${w.name} · ${w.village}` : w.name));
        li.append(button(this.texts.admit, 'admit primary', () => this.act({ action: 'admit', participant_id: w.id })));
        li.append(button(this.texts.deny, 'deny', () => this.act({ action: 'remove', participant_id: w.id })));
        return li;
      }),
    );
    this.lobbyEmpty.hidden = this.lobby.length > 0;

    const { queue, floor } = this.meeting.floor.hands;
    const rows = queue.map((id, index) => {
      const li = el('li', 'hand-item');
      li.dataset.participant = id;
      li.append(el('span', 'hand-name', `${index + 1}. ${name(id)}`));
      li.append(button(this.texts.give_floor, 'floor primary', () => this.act({ action: 'give_floor', participant_id: id })));
      li.append(button(this.texts.lower_hand, 'lower', () => this.act({ action: 'lower_hand', participant_id: id })));
      return li;
    });
    if (floor) {
      const li = el('li', 'hand-item has-floor');
      li.append(el('span', 'hand-name', `${this.texts.speaking_now}: ${name(floor)}`));
      li.append(button(this.texts.take_floor, 'lower', () => this.act({ action: 'take_floor' })));
      rows.unshift(li);
    }
    this.handsList.replaceChildren(...rows);
    this.handsEmpty.hidden = rows.length > 0;

    const current = this.agenda.current;
    this.agendaCurrent.textContent = current ? `${current.position}. ${current.title}` : this.texts.no_agenda_item;
    const at = current ? this.agenda.items.findIndex((i) => i.id === current.id) : -1;
    this.prev.disabled = at <= 0;
    this.next.disabled = !this.agenda.items.length || at >= this.agenda.items.length - 1;

    // Halls on a weak link (the SFU's estimate): the chair knows why a picture is still or gone.
    const weak = [...people.values()].filter((p) => p.kind === 'kiosk' && (p.state === 'reconnecting' || (p.link && p.link.bars < 3)));
    this.degraded.replaceChildren(
      ...weak.map((p) => {
        const state = p.state === 'reconnecting' ? this.texts.reconnecting_short : p.link.mode === 'audio_only' ? this.texts.audio_only : this.texts.weak_link;
        const li = el('li', 'degraded-item', `${p.name}: ${state}`);
        li.dataset.participant = p.id;
        return li;
      }),
    );
    this.degraded.closest('section').hidden = weak.length === 0;
  }
}
