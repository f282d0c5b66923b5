// One meeting page: camera + microphone, one RTCPeerConnection to the SFU with one sending audio,
// one sending video and N receive-only "slots" (docs/signaling.md), tiles, mute buttons, rejoin.
import { Backoff } from './backoff.js';
import { ChairPanel } from './chair-panel.js';
import { FloorView } from './floor.js';
import { linkBars } from './link-bars.js';
import { residentsCounter } from './residents.js';
import { call, openSocket } from './signaling.js';
import { Tiles } from './tiles.js';

const GATHER_WAIT_MS = 2000; // send the offer with the candidates gathered by then; trickle the rest
// After this many failures in a row the page says it cannot connect and whom to tell.
const UNREACHABLE_AFTER = 3;
const STABLE_MS = 10000; // connected this long: the next failure starts the backoff over
const STILL_EVERY_MS = 10000;
const FATAL = new Set(['not_invited', 'room_closed', 'room_not_found', 'removed']);
// Officials publish their camera as VP8 simulcast in three layers (rids the SFU maps: q, h, f),
// and the SFU forwards each subscriber the layer that fits its tile and its line (docs/sfu.md,
// "Simulcast"): q 320x180 (150 kbit/s), h 640x360 (500 kbit/s), f the 1280x720 camera
// (1.2 Mbit/s). Chromium sends a layer only while its bandwidth estimate covers the ones below
// it, so a thin uplink still carries q at the camera's frame rate. Kiosks publish one layer:
// their uplink is the thin one (?layers=2 on a kiosk page publishes q and h of its 640x360
// camera, for tests/bench/kiosk_layers_bench.py). ?simulcast=0 on the room page publishes one
// 640x360 layer, as before simulcast (for diagnosis).
export const SIMULCAST_ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1200000 },
];
export const KIOSK_ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 2, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 1, maxBitrate: 500000 },
];

// The encodings this page publishes its camera in (null: one layer).
function cameraEncodings(kiosk, query) {
  if (kiosk) return query.get('layers') === '2' ? KIOSK_ENCODINGS : null;
  return query.get('simulcast') !== '0' ? SIMULCAST_ENCODINGS : null;
}
// The camera is captured at the top layer's size: the browser scales it down for the others.
const CAMERA_SIMULCAST = { width: { ideal: 1280 }, height: { ideal: 720 } };
const CAMERA_ONE_LAYER = { width: { ideal: 640 }, height: { ideal: 360 } };
const TILES_REPORT_MS = 300; // tile sizes are sent once resizing settles

function waitForGathering(pc, ms) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, ms);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export class Room {
  constructor(root) {
    this.root = root;
    this.roomId = Number(root.dataset.roomId);
    this.home = root.dataset.home;
    // How many receive slots to offer: the server's slot plan, from each join's answer.
    this.videoSlots = 0;
    this.audioSlots = 0;
    this.texts = JSON.parse(root.dataset.strings);
    this.statusEl = root.querySelector('[data-status]');
    this.recordingEl = root.querySelector('[data-recording-banner]');
    this.micButton = root.querySelector('[data-action="mic"]');
    this.camButton = root.querySelector('[data-action="camera"]');
    this.leaveButton = root.querySelector('[data-action="leave"]');
    this.screenButton = root.querySelector('[data-action="screen"]');
    this.tiles = new Tiles(
      root.querySelector('[data-tiles]'),
      root.querySelector('[data-roster]'),
      root.querySelector('[data-audio]'),
      this.texts,
      root.querySelector('[data-self]'),
    );
    this.stream = null;
    this.socket = null;
    this.pc = null;
    this.pid = null;
    this.people = new Map();
    this.slots = {};
    this.speaker = null;
    this.audioMuted = false;
    this.videoMuted = false;
    this.videoWanted = true;
    // Simulcast layers (rids) some subscriber takes, from the server's 'layers' event; null: all
    // (a new peer connection sends every layer until told otherwise).
    this.activeLayers = null;
    this.videoSender = null;
    this.senderUpdates = Promise.resolve(); // setParameters calls, one after another
    this.generation = 0;
    this.ended = false;
    this.retryTimer = null;
    this.backoff = new Backoff();
    this.mediaNotBefore = 0; // no offer before this time (ms): the backoff after a failure
    this.failureKey = 'error';
    this.stableTimer = null;
    this.soundBlocked = false;
    this.sentVisible = 'null';
    this.screenTrack = null;
    this.resumeToken = null;
    this.floor = new FloorView(this);
    this.chair = new ChairPanel(this);
    this.link = linkBars(this, () => this.render());
    this.stillTimer = null;
    this.residents = residentsCounter(this);
    this.tiles.rosterControls = (person, li) => this.chair.rosterControls(person, li);
    const kiosk = root.classList.contains('kiosk-meeting');
    this.encodings = cameraEncodings(kiosk, new URLSearchParams(window.location.search));
    this.simulcast = this.encodings !== null;
    // a kiosk's two layers are of its 640x360 camera; an official's three of a 1280x720 one
    this.camera = this.simulcast && !kiosk ? CAMERA_SIMULCAST : CAMERA_ONE_LAYER;
    this.sentTiles = '';
    this.tilesTimer = null;
    if (window.ResizeObserver) {
      new ResizeObserver(() => this.scheduleTiles()).observe(root.querySelector('[data-tiles]'));
    }
  }

  status(key) {
    this.statusEl.textContent = this.texts[key] || key;
    this.root.dataset.state = key;
  }

  async start() {
    this.micButton.addEventListener('click', () => this.toggleMic());
    this.camButton.addEventListener('click', () => this.toggleCamera());
    this.leaveButton.addEventListener('click', () => this.leave());
    if (this.screenButton) {
      if (navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia) {
        this.screenButton.addEventListener('click', () => this.toggleScreen());
      } else {
        this.screenButton.hidden = true;
      }
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: this.camera,
      });
      this.tiles.showSelf(this.stream);
    } catch (error) {
      console.warn('getUserMedia failed', error);
      this.status('no_camera');
      this.micButton.disabled = true;
      this.camButton.disabled = true;
    }
    const socket = openSocket(this.roomId);
    this.socket = socket;
    socket.on('connect', () => this.join());
    // A lost socket (a congested or cut link) leaves the media alone: the server keeps this
    // participant for a while, and the page resumes it when the socket is back (join's resume).
    socket.on('disconnect', () => {
      if (!this.ended) this.status('reconnecting');
    });
    socket.on('connect_error', () => {
      if (!this.ended) this.status('reconnecting');
    });
    socket.on('participants', ({ participants }) => {
      this.people = new Map(participants.map((p) => [p.id, p]));
      this.render();
    });
    socket.on('slot', ({ mid, publisher_id: publisher }) => {
      this.slots[mid] = publisher;
      this.render();
    });
    socket.on('active_speaker', ({ participant_id: speaker }) => {
      this.speaker = speaker;
      this.render();
    });
    socket.on('video_demand', ({ wanted }) => {
      this.videoWanted = wanted;
      this.applyVideoSending();
    });
    // Nobody takes some layer of our simulcast video: pause its encoding (no CPU, no upload);
    // back as soon as the SFU needs it (it asks for a keyframe then).
    socket.on('layers', ({ active }) => {
      this.activeLayers = new Set(active);
      this.applyScreenLayers();
    });
    // The SFU dropped our media (transport failure): join again at once, so that the page is
    // back in the meeting (a chair's controls work), with a new peer connection when the backoff
    // allows. Counted once if our own connection's failure already counted it.
    socket.on('left', () => {
      this.resumeToken = null;
      if (Date.now() >= this.mediaNotBefore) this.noteFailure('error');
      this.join();
    });
    socket.on('room_closed', () => this.end('closed'));
    // The server is stopping (a restart): its successor can resume nothing, and its going away is
    // no failure of ours. Drop the media connection now; the socket (retrying every 250 ms, see
    // signaling.js) joins afresh as soon as the server answers.
    socket.on('server_restarting', () => {
      this.resumeToken = null;
      this.backoff.reset();
      this.mediaNotBefore = 0;
      this.teardown();
      if (!this.ended) this.status('reconnecting');
    });
    // The chair let this kiosk in from the lobby: join for real now.
    socket.on('admitted', () => this.join());
    socket.on('removed', () => this.end('removed'));
    socket.on('replaced', () => this.end('replaced'));
    this.floor.listen(socket);
    this.chair.listen(socket);
    this.link.listen(socket);
    socket.on('stills_wanted', ({ wanted }) => this.setStillsWanted(wanted));
    // Closing the page says goodbye (otherwise the others see "reconnecting" for a while).
    window.addEventListener('pagehide', () => socket.disconnect());
    socket.on('recording', ({ active }) => this.setRecording(active));
    socket.on('revoked', () => this.end('closed'));
    socket.on('error', (error) => console.warn('meeting error', error));
    document.addEventListener('click', () => {
      this.tiles.resumeAudio();
      this.soundBlocked = false;
      this.render();
    });
  }

  async join() {
    if (this.ended) return;
    clearTimeout(this.retryTimer);
    const generation = ++this.generation;
    // Still holding a live media connection from before the socket was lost: try to resume it.
    const live = this.pc && !['failed', 'closed'].includes(this.pc.connectionState);
    const resume = live && this.resumeToken ? this.resumeToken : null;
    if (!resume) this.teardown();
    this.status(resume ? 'reconnecting' : 'connecting');
    const current = () => generation === this.generation && !this.ended;
    let joined;
    try {
      const request = resume ? { room_id: this.roomId, resume } : { room_id: this.roomId };
      joined = await call(this.socket, 'join', request);
    } catch (error) {
      if (current()) this.failed('joining failed', error);
      return;
    }
    if (!current()) return;
    this.pid = joined.participant_id;
    if (joined.waiting) {
      this.teardown();
      this.status('lobby'); // until the chair admits this kiosk ('admitted')
      return;
    }
    this.resumeToken = joined.resume_token;
    this.videoSlots = joined.slot_plan.video;
    this.audioSlots = joined.slot_plan.audio;
    if (joined.resumed) {
      this.rebind(joined);
      return;
    }
    if (resume) this.teardown(); // nothing to resume: start over with a new peer connection
    this.floor.joined(joined);
    this.chair.joined(joined);
    this.residents.joined(joined);
    this.link.reset();
    this.setStillsWanted(Boolean(joined.stills_wanted));
    this.people = new Map(joined.participants.map((p) => [p.id, p]));
    this.speaker = joined.active_speaker;
    this.setRecording(Boolean(joined.recording));
    this.render();
    try {
      await this.waitMediaTurn();
      if (!current()) return;
      await this.connectMedia(joined, current);
      if (!current()) return;
      if (this.audioMuted || this.videoMuted) {
        await call(this.socket, 'mute', { audio: this.audioMuted, video: this.videoMuted });
      }
      this.render();
    } catch (error) {
      if (current()) this.failed('media failed', error);
    }
  }

  failed(what, error) {
    console.warn(what, error);
    if (FATAL.has(error.code)) {
      this.end(error.code === 'not_invited' || error.code === 'removed' ? error.code : 'closed');
      return;
    }
    this.retryLater(error.code === 'already_joined' ? 'already_joined' : 'error');
  }

  // One more failure in a row: the next offer waits (backoff.js: 1, 2, 4 … 30 s, jittered); after
  // a few the page says plainly that it cannot connect and whom to tell, and keeps trying.
  noteFailure(key) {
    clearTimeout(this.stableTimer);
    const delay = this.backoff.fail();
    this.mediaNotBefore = Date.now() + delay;
    this.failureKey = this.backoff.failures >= UNREACHABLE_AFTER ? 'unreachable' : key;
    this.status(this.failureKey);
    return delay;
  }

  // Try again after the backoff by leaving and joining back to back (one offer per join): until
  // then a page whose join went through stays in the meeting, so a chair's admit, agenda and end
  // keep working while its own media cannot connect.
  retryLater(key) {
    const delay = this.noteFailure(key);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.rejoin(), delay);
  }

  async rejoin() {
    if (this.ended || !this.socket.connected) return; // the socket's 'connect' joins again
    const generation = this.generation;
    await call(this.socket, 'leave').catch(() => {});
    if (generation !== this.generation || this.ended) return; // joined meanwhile ('left', 'connect')
    this.resumeToken = null;
    this.teardown();
    this.join();
  }

  async waitMediaTurn() {
    const wait = this.mediaNotBefore - Date.now();
    if (wait <= 0) return;
    this.status(this.failureKey);
    await new Promise((done) => setTimeout(done, wait));
  }

  // The server bound this socket to our existing participant: same peer connection, so only the
  // room's state is refreshed.
  rebind(joined) {
    this.floor.joined(joined);
    this.chair.joined(joined);
    this.residents.joined(joined);
    this.setStillsWanted(Boolean(joined.stills_wanted));
    this.people = new Map(joined.participants.map((p) => [p.id, p]));
    this.speaker = joined.active_speaker;
    this.setRecording(Boolean(joined.recording));
    this.slots = { ...joined.slots };
    this.sentVisible = ''; // send our wish again: the server may have kept an older one
    if (this.audioMuted || this.videoMuted) {
      call(this.socket, 'mute', { audio: this.audioMuted, video: this.videoMuted }).catch(() => {});
    }
    this.render();
  }

  async connectMedia(joined, current) {
    const pc = new RTCPeerConnection({
      iceServers: joined.ice_servers,
      iceTransportPolicy: joined.ice_transport_policy || 'all',
      bundlePolicy: 'max-bundle',
    });
    this.pc = pc;
    const audioTrack = this.stream ? this.stream.getAudioTracks()[0] : null;
    const videoTrack = this.stream ? this.stream.getVideoTracks()[0] : null;
    // Order matters only for readability; the server maps slots by mid.
    if (audioTrack) pc.addTransceiver(audioTrack, { direction: 'sendonly', streams: [this.stream] });
    for (let i = 0; i < this.audioSlots; i += 1) pc.addTransceiver('audio', { direction: 'recvonly' });
    const videoInit = { direction: 'sendonly', streams: [this.stream] };
    if (this.encodings) videoInit.sendEncodings = this.encodings.map((e) => ({ ...e }));
    this.activeLayers = null;
    this.videoSender = videoTrack ? pc.addTransceiver(videoTrack, videoInit).sender : null;
    for (let i = 0; i < this.videoSlots; i += 1) pc.addTransceiver('video', { direction: 'recvonly' });

    let offerSent = false;
    let answered = false;
    const pending = [];
    const sendCandidate = (candidate) => call(this.socket, 'ice', candidate).catch((e) => console.warn('ice', e));
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!offerSent) return; // already in the offer's SDP
      const payload = candidate
        ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex }
        : { candidate: null };
      if (answered) sendCandidate(payload);
      else pending.push(payload);
    });
    pc.addEventListener('track', ({ track, transceiver }) => {
      if (track.kind === 'video') this.tiles.addVideoSlot(transceiver.mid, track);
      else
        this.tiles.addAudioSlot(transceiver.mid, track, () => {
          this.soundBlocked = true;
          this.render();
        });
      this.render();
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'connected') {
        clearTimeout(this.stableTimer);
        this.stableTimer = setTimeout(() => {
          if (pc === this.pc && pc.connectionState === 'connected') this.backoff.reset();
        }, STABLE_MS);
        this.render();
      }
      if (pc.connectionState === 'failed') this.retryLater('error');
    });

    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc, GATHER_WAIT_MS);
    if (!current()) return;
    offerSent = true;
    const answer = await call(this.socket, 'offer', { sdp: pc.localDescription.sdp, type: 'offer' });
    if (!current()) return;
    Object.assign(this.slots, answer.slots);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    answered = true;
    for (const candidate of pending.splice(0)) sendCandidate(candidate);
    this.applyVideoSending();
  }

  teardown() {
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
    this.videoSender = null;
    this.slots = {};
    this.sentVisible = 'null'; // a new participant starts with the SFU's default
    this.sentTiles = ''; // and with no tile sizes
    this.tiles.clearRemote();
  }

  render() {
    const self = this.people.get(this.pid) || { audio_muted: this.audioMuted, video_muted: this.videoMuted };
    const audioOnly = this.root.dataset.linkMode === 'audio_only';
    this.tiles.render(this.slots, this.people, this.pid, this.speaker, self, audioOnly ? this.stillUrl() : null);
    this.floor.render();
    this.chair.render();
    if (this.ended || !this.pc) return;
    const others = [...this.people.keys()].filter((id) => id !== this.pid).length;
    if (this.backoff.failures >= UNREACHABLE_AFTER && this.pc.connectionState !== 'connected') {
      this.status('unreachable');
    } else if (this.socket && !this.socket.connected) this.status('reconnecting');
    else if (this.soundBlocked) this.status('sound_blocked');
    else if (audioOnly) this.status('link_poor');
    else this.status(others === 0 ? 'waiting' : 'connected');
    this.updateVisible();
    this.scheduleTiles();
  }

  // At most one report per TILES_REPORT_MS, measured when it is sent (so a resize in progress
  // is reported once it settles). Not a debounce that each call restarts: render() runs on
  // every roster, speaker and link event, and on a busy room those came faster than the delay,
  // so a hall never reported its tiles and kept getting the top layer.
  scheduleTiles() {
    if (this.tilesTimer !== null) return;
    this.tilesTimer = setTimeout(() => {
      this.tilesTimer = null;
      this.reportTiles();
    }, TILES_REPORT_MS);
  }

  // The size each publisher is shown at, in device pixels, when it changed: the SFU picks the
  // simulcast layer that fills the tile (a thumbnail never gets 720p).
  reportTiles() {
    if (!this.pc || !this.pid || !this.socket || !this.socket.connected) return;
    const sizes = this.tiles.sizes(this.slots, window.devicePixelRatio || 1);
    const text = JSON.stringify(sizes);
    if (text === this.sentTiles) return;
    this.sentTiles = text;
    call(this.socket, 'tiles', { sizes }).catch((e) => {
      this.sentTiles = '';
      console.warn('tiles', e);
    });
  }

  // Fewer video slots than people (kiosks): ask for the active speaker first, then whoever is
  // already on screen, then everybody else (so a free slot is filled when someone leaves).
  // With enough slots, the SFU's default (everyone, in join order) is used.
  updateVisible() {
    if (!this.pc || !this.pid || !this.socket.connected) return;
    const others = [...this.people.keys()].filter((id) => id !== this.pid);
    let wanted = null;
    // A shared screen comes first wherever it is, then (when slots are short) the speaker.
    const sharing = others.filter((id) => this.people.get(id).screen);
    if (others.length > this.videoSlots || sharing.length) {
      const shown = Object.values(this.slots).filter((id) => id && others.includes(id));
      const first = this.speaker && others.includes(this.speaker) ? [this.speaker] : [];
      wanted = [...new Set([...sharing, ...first, ...shown, ...others])];
    }
    const key = JSON.stringify(wanted);
    if (key === this.sentVisible) return;
    this.sentVisible = key;
    call(this.socket, 'visible', { publisher_ids: wanted }).catch((e) => console.warn('visible', e));
  }

  applyVideoSending() {
    if (!this.videoSender || !this.stream) return;
    const track = this.screenTrack || this.stream.getVideoTracks()[0];
    const send = (this.screenTrack || !this.videoMuted) && this.videoWanted;
    this.videoSender.replaceTrack(send ? track : null).catch((e) => console.warn('replaceTrack', e));
    this.applyScreenLayers();
    this.applyScreenTuning();
  }

  // A shared screen goes in its full-resolution layer only (rid f): text must stay legible on a
  // hall TV, so no hall gets a downscaled copy of it; the SFU forwards the one layer still sent.
  // The camera sends the layers the SFU says someone takes ('layers'), all until it says.
  applyScreenLayers() {
    if (!this.simulcast) return;
    const wanted = (encoding) =>
      this.screenTrack
        ? encoding.rid === this.encodings[this.encodings.length - 1].rid
        : !this.activeLayers || this.activeLayers.has(encoding.rid);
    this.updateSender((params) => {
      const encodings = params.encodings || [];
      if (encodings.length < 2 || encodings.every((e) => e.active === wanted(e))) return false;
      for (const encoding of encodings) encoding.active = wanted(encoding);
      return true;
    });
  }

  // A shared screen keeps its resolution when the uplink or the CPU is short: the encoder lowers
  // the frame rate instead (slides and documents hardly move; shrunk text is unreadable). The
  // camera goes back to the browser's balance. A separate call from the layers' one, so that a
  // browser refusing the preference still sends the right layers.
  applyScreenTuning() {
    const preference = this.screenTrack ? 'maintain-resolution' : 'balanced';
    this.updateSender((params) => {
      if (params.degradationPreference === preference) return false;
      if (params.degradationPreference === undefined && !this.screenTrack) return false; // never set
      params.degradationPreference = preference;
      return true;
    });
  }

  // change(params) edits the sender's current parameters and says whether it changed any. Calls
  // run one after another, each reading what the last one set: a setParameters made while
  // another is still running may be refused (its transaction is stale).
  updateSender(change) {
    const sender = this.videoSender;
    if (!sender) return;
    this.senderUpdates = this.senderUpdates
      .then(() => {
        if (sender !== this.videoSender) return undefined;
        const params = sender.getParameters();
        return change(params) ? sender.setParameters(params) : undefined;
      })
      .catch((e) => console.warn('setParameters', e));
  }

  toggleMic() {
    this.setMic(this.audioMuted);
  }

  // on: true = microphone on. Also used when the chair mutes this page or the resident accepts
  // the chair's request to speak.
  setMic(on) {
    if (!this.stream) return;
    if (this.audioMuted === !on) return;
    this.audioMuted = !on;
    for (const track of this.stream.getAudioTracks()) track.enabled = !this.audioMuted;
    this.micButton.textContent = this.audioMuted ? this.texts.mic_on : this.texts.mic_off;
    this.micButton.setAttribute('aria-pressed', String(this.audioMuted));
    this.sendMute();
  }

  toggleCamera() {
    this.videoMuted = !this.videoMuted;
    for (const track of this.stream.getVideoTracks()) track.enabled = !this.videoMuted;
    this.camButton.textContent = this.videoMuted ? this.texts.cam_on : this.texts.cam_off;
    this.camButton.setAttribute('aria-pressed', String(this.videoMuted));
    this.applyVideoSending();
    this.sendMute();
  }

  sendMute() {
    this.render();
    if (this.pid && this.socket.connected) {
      call(this.socket, 'mute', { audio: this.audioMuted, video: this.videoMuted }).catch(() => {});
    }
  }

  // Screen sharing (officials): the shared screen replaces the camera on the same sender, so no
  // renegotiation is needed; the others are told (participants[].screen) and show it first.
  async toggleScreen() {
    if (this.screenTrack) {
      this.stopScreen();
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    } catch (error) {
      console.warn('getDisplayMedia', error);
      return;
    }
    this.screenTrack = stream.getVideoTracks()[0];
    // slides and documents: the browser's encoder keeps text sharp (Chromium: screen-content
    // tuning, resolution kept over frame rate)
    this.screenTrack.contentHint = 'text';
    this.screenTrack.addEventListener('ended', () => this.stopScreen());
    this.screenButton.setAttribute('aria-pressed', 'true');
    this.screenButton.textContent = this.texts.screen_stop;
    this.applyVideoSending();
    call(this.socket, 'screen', { active: true }).catch((e) => console.warn('screen', e));
  }

  stopScreen() {
    if (!this.screenTrack) return;
    this.screenTrack.stop();
    this.screenTrack = null;
    this.screenButton.setAttribute('aria-pressed', 'false');
    this.screenButton.textContent = this.texts.screen_start;
    this.applyVideoSending();
    if (this.socket && this.socket.connected) call(this.socket, 'screen', { active: false }).catch(() => {});
  }

  // Still pictures: while somebody in the room receives sound only, every page sends a small
  // picture of its camera now and then; a page on sound only shows the others' latest pictures.
  setStillsWanted(wanted) {
    clearInterval(this.stillTimer);
    this.stillTimer = null;
    if (!wanted) return;
    this.sendStill();
    this.stillTimer = setInterval(() => this.sendStill(), STILL_EVERY_MS);
  }

  async sendStill() {
    const video = this.tiles.self && this.tiles.self.video;
    if (!video || !video.videoWidth || this.videoMuted || !this.pid || !this.socket.connected) return;
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = Math.round((320 * video.videoHeight) / video.videoWidth);
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((done) => canvas.toBlob(done, 'image/jpeg', 0.7));
    if (!blob) return;
    call(this.socket, 'still', { jpeg: await blob.arrayBuffer() }).catch((e) => console.warn('still', e));
  }

  stillUrl() {
    // A new URL every few seconds, so the pictures follow what the others send.
    const version = Math.floor(Date.now() / STILL_EVERY_MS);
    return (publisher) => `/api/v1/rooms/${this.roomId}/stills/${encodeURIComponent(publisher)}?v=${version}`;
  }

  // The "recording" banner: everybody in the room sees it while the meeting is recorded.
  setRecording(active) {
    this.root.dataset.recording = active ? 'on' : 'off';
    if (this.recordingEl) this.recordingEl.hidden = !active;
  }

  end(reason) {
    this.ended = true;
    this.setRecording(false);
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    this.teardown();
    if (this.socket) this.socket.disconnect();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.status(reason);
    this.micButton.disabled = true;
    this.camButton.disabled = true;
    this.leaveButton.textContent = this.texts.back;
    // Kiosks go back to their first screen by themselves a little later.
    const autoHome = Number(this.root.dataset.autoHome || 0);
    if (autoHome > 0) setTimeout(() => window.location.assign(this.home), autoHome * 1000);
  }

  async leave() {
    if (this.ended) {
      window.location.assign(this.home);
      return;
    }
    if (this.socket && this.socket.connected) {
      await call(this.socket, 'leave').catch(() => {});
    }
    this.end('closed');
    window.location.assign(this.home);
  }

  // For diagnostics (and the browser tests): which publisher each receive mid carries.
  slotMap() {
    return { ...this.slots };
  }
}
