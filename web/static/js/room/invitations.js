// Home pages: turn "Join the meeting" into a real link while an invited room is open.
const POLL_MS = 30000;

async function myRooms() {
  const response = await fetch('/api/v1/rooms/mine', { headers: { Accept: 'application/json' } });
  if (!response.ok) return [];
  const body = await response.json();
  return body.rooms;
}

async function refresh() {
  let rooms = [];
  try {
    rooms = await myRooms();
  } catch (error) {
    console.warn('rooms', error);
  }
  // Kiosk home: one big choice, linking to the newest open room.
  const link = document.querySelector('[data-meeting-link]');
  const placeholder = document.querySelector('[data-meeting-placeholder]');
  if (link) {
    const room = rooms[0];
    link.hidden = !room;
    if (placeholder) placeholder.hidden = Boolean(room);
    if (room) {
      link.href = room.url;
      link.querySelector('[data-meeting-title]').textContent = room.title;
    }
  }
  // Official home: a list of links.
  const list = document.querySelector('[data-my-rooms]');
  if (list) {
    const items = rooms.map((room) => {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.className = 'button';
      a.href = room.url;
      a.textContent = `${list.dataset.joinLabel}: ${room.title}`;
      li.append(a);
      return li;
    });
    list.replaceChildren(...items);
    const empty = document.querySelector('[data-my-rooms-empty]');
    if (empty) empty.hidden = rooms.length > 0;
  }
}

refresh();
setInterval(refresh, POLL_MS);
