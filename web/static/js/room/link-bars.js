// This page's link quality as three bars, from the server's 'link_quality' event (the SFU's
// estimate of what this hall's connection carries): 3 good, 2 weak (lower picture quality),
// 1 very weak (sound only, with a still picture of the speaker).
const LABELS = { 3: 'link_good', 2: 'link_fair', 1: 'link_poor' };

export function linkBars(meeting, onChange) {
  const box = meeting.root.querySelector('[data-link-bars]');
  const show = (bars) => {
    if (!box) return;
    const level = [1, 2, 3].includes(bars) ? bars : 3;
    box.dataset.bars = String(level);
    box.setAttribute('aria-label', meeting.texts[LABELS[level]]);
    box.title = meeting.texts[LABELS[level]];
  };
  return {
    listen(socket) {
      socket.on('link_quality', ({ bars, mode }) => {
        show(bars);
        meeting.root.dataset.linkMode = mode || 'video';
        onChange();
      });
    },
    reset() {
      show(3);
      meeting.root.dataset.linkMode = 'video';
    },
  };
}
