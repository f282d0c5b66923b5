// Admin meeting page: drag an agenda item by its handle to reorder the agenda. The up/down buttons
// stay for keyboards and screen readers; this is the quicker way for a mouse. The server is the
// truth: each drop PATCHes the item's new position, and the page reloads to show the saved order
// (or says why it could not be saved and puts the item back).
const list = document.querySelector("[data-agenda-order]");
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

function items() {
  return [...list.querySelectorAll(":scope > [data-agenda-item]")];
}

// The API's own message is English and meant for developers; the page says it in its language.
function showError() {
  const alert = document.querySelector("[data-agenda-order-error]");
  if (!alert) return;
  alert.textContent = list.dataset.saveFailed;
  alert.hidden = false;
}

if (list) {
  let dragged = null;
  let before = [];

  list.addEventListener("dragstart", (event) => {
    const handle = event.target.closest?.("[data-drag-handle]");
    if (!handle) return;
    dragged = handle.closest("[data-agenda-item]");
    before = items();
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.agendaItem);
    dragged.classList.add("dragging");
  });

  list.addEventListener("dragover", (event) => {
    if (!dragged) return;
    event.preventDefault(); // the agenda takes the drop
    event.dataTransfer.dropEffect = "move";
    const over = event.target.closest?.("[data-agenda-item]");
    if (!over || over === dragged) return;
    const box = over.getBoundingClientRect();
    const after = event.clientY > box.top + box.height / 2;
    list.insertBefore(dragged, after ? over.nextSibling : over);
  });

  // Without this, some browsers open the dragged text as a link on drop.
  list.addEventListener("drop", (event) => event.preventDefault());

  list.addEventListener("dragend", async (event) => {
    if (!dragged) return;
    const item = dragged;
    dragged = null;
    item.classList.remove("dragging");
    const putBack = () => before.forEach((entry) => list.appendChild(entry));
    // Escape, or a drop outside the agenda: the drag is called off.
    if (event.dataTransfer.dropEffect === "none") {
      putBack();
      return;
    }
    const position = items().indexOf(item) + 1;
    if (position === before.indexOf(item) + 1) return;
    try {
      const response = await fetch(`${list.dataset.agendaOrder}/${item.dataset.agendaItem}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ position }),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
    } catch {
      putBack();
      showError();
      return;
    }
    location.hash = "agenda";
    location.reload();
  });
}
