// Page mode: upload a page, POST /v1/pages, draw each detected line's polygon (numbered in
// reading order) over the page and list what each line reads.
"use strict";
(function () {
  const fileInput = document.getElementById("page-file");
  const button = document.getElementById("read-page");
  const status = document.getElementById("page-status");
  const canvas = document.getElementById("page-canvas");
  const list = document.getElementById("page-lines");
  const error = document.getElementById("page-error");
  const COLORS = ["#1f77b4", "#d62728"];  // alternate, as the detector's odd and even lines do
  const MAX_SIDE = 1600;  // the canvas draws the page at most this many pixels across
  const token = sessionStorage.getItem("token");  // set by app.js from /#token=<token>

  let file = null;
  let image = null;

  function drawPage(lines) {
    const scale = Math.min(1, MAX_SIDE / Math.max(image.naturalWidth, image.naturalHeight));
    canvas.width = Math.round(image.naturalWidth * scale);
    canvas.height = Math.round(image.naturalHeight * scale);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    const width = Math.max(2, canvas.width / 400);
    const fontSize = Math.max(12, Math.round(canvas.width / 50));
    ctx.font = "bold " + fontSize + "px system-ui, sans-serif";
    ctx.textBaseline = "top";
    lines.forEach(function (line, i) {
      const color = COLORS[i % 2];
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      line.polygon.forEach(function (p, j) {
        if (j === 0) ctx.moveTo(p[0] * scale, p[1] * scale);
        else ctx.lineTo(p[0] * scale, p[1] * scale);
      });
      ctx.closePath();
      ctx.stroke();
      const label = String(i + 1);
      const x = line.box[0] * scale;
      const y = line.box[1] * scale;
      const size = ctx.measureText(label);
      ctx.fillStyle = color;
      ctx.fillRect(x, y, size.width + 6, fontSize + 4);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x + 3, y + 2);
    });
    canvas.hidden = false;
  }

  function listLines(lines) {
    list.textContent = "";
    lines.forEach(function (line) {
      const item = document.createElement("li");
      item.textContent = line.text === "" ? "(nothing read)" : line.text;
      const note = document.createElement("span");
      note.className = "muted";
      note.textContent = "  confidence " + Number(line.conf).toFixed(3);
      item.appendChild(note);
      list.appendChild(item);
    });
    list.hidden = false;
  }

  fileInput.addEventListener("change", function () {
    if (!fileInput.files.length) return;
    file = fileInput.files[0];
    image = new Image();
    image.src = URL.createObjectURL(file);
    status.textContent = "Page: " + file.name;
    error.textContent = "";
  });

  async function readPage() {
    error.textContent = "";
    if (!file) {
      error.textContent = "Upload a page first.";
      return;
    }
    const form = new FormData();
    form.append("image", file, file.name);
    const request = { method: "POST", body: form };
    if (token) request.headers = { Authorization: "Bearer " + token };
    button.disabled = true;
    status.textContent = "Reading the page…";
    list.hidden = true;
    canvas.hidden = true;
    try {
      const response = await fetch("/v1/pages", request);
      let body = {};
      try { body = await response.json(); } catch (e) { /* not JSON */ }
      if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
      await image.decode();
      drawPage(body.lines);
      listLines(body.lines);
      status.textContent = body.lines.length === 1 ? "1 line" : body.lines.length + " lines";
    } catch (e) {
      status.textContent = "";
      error.textContent = "Error: " + e.message;
    } finally {
      button.disabled = false;
    }
  }
  button.addEventListener("click", readPage);
})();
