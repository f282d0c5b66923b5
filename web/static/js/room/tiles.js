// Video tiles (one per receive slot, plus the local preview) and the participants list.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Tiles {
  constructor(container, roster, audioSinks, texts, selfSlot) {
    this.container = container;
    this.selfSlot = selfSlot || container; // kiosks show their own picture next to the buttons
    this.roster = roster;
    this.audioSinks = audioSinks;
    this.texts = texts;
    this.tiles = new Map(); // mid -> {figure, video, name, village, flags}
    this.audios = new Map(); // mid -> <audio>
    this.self = null;
    this.rosterControls = null; // (person, li) => void: the chair's buttons on each row
  }

  makeTile(key) {
    const figure = el('figure', 'tile');
    figure.dataset.key = key;
    const video = el('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true; // sound goes through the audio slots
    const caption = el('figcaption', 'tile-caption');
    const name = el('span', 'tile-name');
    const village = el('span', 'tile-village');
    const flags = el('span', 'tile-flags');
    caption.append(name, village, flags);
    // A still picture over the video while this page receives sound only.
    const still = el('img', 'tile-still');
    still.alt = '';
    still.hidden = true;
    still.addEventListener('error', () => {
      still.hidden = true;
    });
    figure.append(video, still, caption);
    return { figure, video, name, village, flags, still };
  }

  showSelf(stream) {
    if (!this.self) {
      this.self = this.makeTile('self');
      this.self.figure.classList.add('self');
      this.self.name.textContent = this.texts.me;
      this.selfSlot.append(this.self.figure);
    }
    this.self.video.srcObject = stream;
  }

  addVideoSlot(mid, track) {
    let tile = this.tiles.get(mid);
    if (!tile) {
      tile = this.makeTile(mid);
      tile.figure.hidden = true;
      this.tiles.set(mid, tile);
      this.container.append(tile.figure);
    }
    tile.video.srcObject = new MediaStream([track]);
    tile.video.play().catch(() => {});
  }

  addAudioSlot(mid, track, onBlocked) {
    let audio = this.audios.get(mid);
    if (!audio) {
      audio = el('audio');
      audio.autoplay = true;
      this.audios.set(mid, audio);
      this.audioSinks.append(audio);
    }
    audio.srcObject = new MediaStream([track]);
    audio.play().catch(onBlocked);
  }

  // {publisherId: [width, height]} of the tiles on screen, in device pixels (at most 10000).
  sizes(slots, scale) {
    const out = {};
    for (const [mid, tile] of this.tiles) {
      const publisher = slots[mid];
      if (!publisher || tile.figure.hidden) continue;
      const side = (v) => Math.min(10000, Math.round(v * scale));
      out[publisher] = [side(tile.video.clientWidth), side(tile.video.clientHeight)];
    }
    return out;
  }

  resumeAudio() {
    for (const audio of this.audios.values()) audio.play().catch(() => {});
  }

  clearRemote() {
    for (const tile of this.tiles.values()) tile.figure.remove();
    for (const audio of this.audios.values()) audio.remove();
    this.tiles.clear();
    this.audios.clear();
  }

  // slots: {mid: publisherId|null}; people: Map id -> participant; speaker: id|null
  // stillUrl: null, or (publisherId) => URL of its still picture (this page gets sound only).
  render(slots, people, selfId, speaker, selfState, stillUrl = null) {
    let shown = 0;
    for (const [mid, tile] of this.tiles) {
      const publisher = slots[mid] || null;
      const person = publisher ? people.get(publisher) : null;
      tile.figure.hidden = !publisher;
      if (publisher) shown += 1;
      tile.figure.dataset.publisher = publisher || '';
      tile.figure.classList.toggle('speaking', Boolean(publisher) && publisher === speaker);
      tile.figure.classList.toggle('screen', Boolean(person && person.screen));
      tile.figure.classList.toggle('reconnecting', Boolean(person && person.state === 'reconnecting'));
      tile.name.textContent = person ? person.name : '';
      tile.village.textContent = person && person.village ? person.village : '';
      tile.flags.textContent = this.flags(person);
      const still = stillUrl && publisher ? stillUrl(publisher) : null;
      if (!still) tile.still.hidden = true;
      else if (tile.still.dataset.src !== still) {
        tile.still.dataset.src = still;
        tile.still.src = still;
        tile.still.hidden = false;
      }
    }
    if (this.self) {
      this.self.figure.classList.toggle('speaking', Boolean(selfId) && selfId === speaker);
      this.self.flags.textContent = this.flags(selfState);
    }
    this.container.dataset.count = String(shown);
    this.renderRoster(people, selfId, speaker);
    return shown;
  }

  flags(person) {
    if (!person) return '';
    const parts = [];
    if (person.state === 'reconnecting') parts.push(this.texts.reconnecting_short);
    if (person.floor) parts.push(this.texts.speaking_now);
    else if (person.hand) parts.push(this.texts.hand_raised);
    if (person.screen) parts.push(this.texts.sharing_screen);
    if (person.link && person.link.mode === 'audio_only') parts.push(this.texts.audio_only);
    if (person.audio_muted) parts.push(this.texts.muted);
    if (person.video_muted && !person.screen) parts.push(this.texts.camera_off);
    return parts.join(' · ');
  }

  renderRoster(people, selfId, speaker) {
    if (!this.roster) return;
    const items = [];
    for (const person of people.values()) {
      const li = el('li', 'roster-item');
      li.classList.toggle('speaking', person.id === speaker);
      const label = person.id === selfId ? `${person.name} (${this.texts.me})` : person.name;
      li.append(el('span', 'roster-name', label));
      if (person.village) li.append(el('span', 'roster-village', person.village));
      li.dataset.participant = person.id;
      li.classList.toggle('reconnecting', person.state === 'reconnecting');
      li.classList.toggle('hand', Boolean(person.hand));
      const flags = this.flags(person);
      if (flags) li.append(el('span', 'roster-flags', flags));
      // Which simulcast layer of this page's own video the participant receives (the SFU's
      // choice for its tile and line): the chair sees which hall gets a lower picture.
      const layer = person.id !== selfId && person.layers ? person.layers[selfId] : null;
      const layerText = layer ? this.texts[`layer_${layer}`] : null;
      if (layerText) {
        const span = el('span', 'roster-layer', layerText);
        span.dataset.layer = layer;
        li.append(span);
      }
      if (this.rosterControls) this.rosterControls(person, li);
      items.push(li);
    }
    this.roster.replaceChildren(...items);
  }
}
