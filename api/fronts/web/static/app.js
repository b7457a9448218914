// ivrgate GUI: live rows, the Listen button, confirmations. Plain JavaScript, no library.
"use strict";

const POLL_MS = 3000;

// Any element with data-poll="URL" is refreshed from URL every few seconds while it (or its rows)
// shows something pending, and while the page is visible.
function startPolling(el) {
  const url = el.dataset.poll;
  const pending = () => el.querySelector("[data-pending]") !== null;
  async function tick() {
    if (document.visibilityState === "visible" && pending()) {
      try {
        const answer = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
        if (answer.ok && !answer.redirected) {
          el.innerHTML = await answer.text();
        }
      } catch (err) {
        // the server is restarting: try again at the next tick
      }
    }
    window.setTimeout(tick, POLL_MS);
  }
  window.setTimeout(tick, POLL_MS);
}

function listenUrl(form) {
  const data = new FormData(form);
  const kind = form.dataset.kind;
  const params = new URLSearchParams({ kind: kind });
  for (const name of ["text", "language", "gender", "voiceurl", "segments"]) {
    if (data.has(name)) params.set(name, data.get(name));
  }
  return "/ui/send/listen?" + params.toString();
}

async function listen(button) {
  const form = button.form;
  const player = document.getElementById("player");
  const status = document.getElementById("listen-status");
  status.textContent = "Rendering…";
  try {
    let answer;
    if (form.dataset.kind === "voice") {
      const file = form.querySelector("input[type=file]").files[0];
      if (!file) { status.textContent = "Choose a voice file first."; return; }
      const body = new FormData();
      body.append("voicefile", file);
      answer = await fetch("/ui/send/listen", { method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRF-Token": button.dataset.csrf } });
    } else {
      answer = await fetch(listenUrl(form), { credentials: "same-origin" });
    }
    const type = answer.headers.get("Content-Type") || "";
    if (!answer.ok || !type.startsWith("audio/")) {
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const heading = page.querySelector("h1");
      status.textContent = "Cannot render: " + (heading ? heading.textContent : answer.status);
      return;
    }
    if (player.dataset.objectUrl) URL.revokeObjectURL(player.dataset.objectUrl);
    player.dataset.objectUrl = URL.createObjectURL(await answer.blob());
    player.src = player.dataset.objectUrl;
    status.textContent = "Ready: this is what the callee will hear.";
    await player.play().catch(() => undefined);
  } catch (err) {
    status.textContent = "Cannot render: " + err;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-poll]").forEach(startPolling);
  const button = document.getElementById("listen");
  if (button) button.addEventListener("click", () => listen(button));
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
