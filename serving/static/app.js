// Draw (mouse, touch or pen) or upload a line of handwriting and ask POST /v1/predict to read it.
"use strict";
(function () {
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const fileInput = document.getElementById("file");
  const preview = document.getElementById("preview");
  const source = document.getElementById("source");
  const predictButton = document.getElementById("predict");
  const status = document.getElementById("status");
  const pred = document.getElementById("pred");
  const conf = document.getElementById("conf");
  const DOUBTFUL = 0.5;  // characters read with a lower confidence are underlined
  const error = document.getElementById("error");

  // An app started with --token wants "Authorization: Bearer <token>": open the page as
  // /#token=<token>; the token is kept for this tab and taken out of the address bar.
  const tokenMatch = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (tokenMatch) {
    sessionStorage.setItem("token", decodeURIComponent(tokenMatch[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem("token");

  let hasInk = false;
  let drawing = false;
  let file = null;

  function clearCanvas() {
    ctx.fillStyle = "#fff";  // white paper, dark ink: the model inverts dark-on-light itself
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    hasInk = false;
  }

  function useDrawing() {
    file = null;
    fileInput.value = "";
    preview.hidden = true;
    source.textContent = "Source: drawing";
  }

  function point(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: (event.clientX - rect.left) * (canvas.width / rect.width),
      y: (event.clientY - rect.top) * (canvas.height / rect.height),
    };
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (file) useDrawing();
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    const p = point(event);
    ctx.strokeStyle = "#111";
    ctx.fillStyle = "#111";
    ctx.lineWidth = 9;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.arc(p.x, p.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    ctx.beginPath();
    ctx.moveTo(p.x, p.y);
    hasInk = true;
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const p = point(event);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    event.preventDefault();
  });
  const stop = () => { drawing = false; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);

  document.getElementById("clear").addEventListener("click", () => {
    clearCanvas();
    useDrawing();
    pred.textContent = "";
    conf.textContent = "";
    error.textContent = "";
  });

  fileInput.addEventListener("change", () => {
    if (!fileInput.files.length) return;
    file = fileInput.files[0];
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    source.textContent = "Source: " + file.name;
  });

  // The text, each character a span whose title is its confidence; doubtful ones are marked.
  function showReading(text, chars) {
    pred.textContent = "";
    if (text === "") {
      pred.textContent = "(nothing read)";
      return;
    }
    Array.from(text).forEach(function (character, i) {
      const span = document.createElement("span");
      span.textContent = character;
      if (i < chars.length) {
        span.title = "confidence " + Number(chars[i]).toFixed(3);
        if (chars[i] < DOUBTFUL) span.className = "doubtful";
      }
      pred.appendChild(span);
    });
  }

  async function predict() {
    error.textContent = "";
    let request;
    if (file) {
      const form = new FormData();
      form.append("image", file, file.name);
      request = { method: "POST", body: form };
    } else if (hasInk) {
      request = {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ image: canvas.toDataURL("image/png") }),
      };
    } else {
      error.textContent = "Draw a line of handwriting or upload an image first.";
      return;
    }
    if (token) request.headers = { ...(request.headers || {}), Authorization: "Bearer " + token };
    predictButton.disabled = true;
    status.textContent = "Predicting…";
    pred.textContent = "";
    conf.textContent = "";
    try {
      const response = await fetch("/v1/predict", request);
      let body = {};
      try { body = await response.json(); } catch (e) { /* not JSON */ }
      if (response.status === 401) {
        throw new Error("this app needs a token: open it as " + location.pathname + "#token=<token>");
      }
      if (!response.ok) {
        throw new Error(body.error || ("HTTP " + response.status));
      }
      showReading(body.pred, body.chars || []);
      conf.textContent = Number(body.conf).toFixed(3);
    } catch (e) {
      error.textContent = "Error: " + e.message;
    } finally {
      predictButton.disabled = false;
      status.textContent = "";
    }
  }
  predictButton.addEventListener("click", predict);

  clearCanvas();
})();
