// Officials can record a short video message in the browser; it is attached to the notice form
// as if it were a chosen file.
const box = document.querySelector("[data-recorder]");
const input = document.querySelector("#media");
const MAX_SECONDS = 180;

if (box && input && "MediaRecorder" in window) {
  const recordButton = box.querySelector("[data-record]");
  const stopButton = box.querySelector("[data-stop]");
  const timer = box.querySelector("[data-timer]");
  const preview = box.querySelector("[data-preview]");
  let recorder = null;
  let ticker = null;

  recordButton.addEventListener("click", async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
    preview.srcObject = stream;
    preview.hidden = false;
    await preview.play().catch(() => {});
    const chunks = [];
    recorder = new MediaRecorder(stream, { mimeType: "video/webm;codecs=vp8,opus" });
    recorder.ondataavailable = (event) => event.data.size && chunks.push(event.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((track) => track.stop());
      clearInterval(ticker);
      const file = new File(chunks, "notice.webm", { type: "video/webm" });
      const transfer = new DataTransfer();
      transfer.items.add(file);
      input.files = transfer.files;
      preview.srcObject = null;
      preview.src = URL.createObjectURL(file);
      preview.controls = true;
      recordButton.hidden = false;
      stopButton.hidden = true;
    };
    const started = Date.now();
    ticker = setInterval(() => {
      const seconds = Math.floor((Date.now() - started) / 1000);
      timer.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
      if (seconds >= MAX_SECONDS) recorder.stop();
    }, 250);
    recorder.start(1000);
    recordButton.hidden = true;
    stopButton.hidden = false;
  });
  stopButton.addEventListener("click", () => recorder?.state === "recording" && recorder.stop());
}
