// Radiograph + CAM viewer for the X-ray review page (see dashboard/viewer/__init__.py for the args).
// Speaks Streamlit's component protocol directly (postMessage), so no npm build is needed.
// Everything interactive (window/level, zoom, pan, fit, 1:1, invert, opacity, reset) is drawn here and
// never talks to the server; only N/P/A/D/U (study and decision shortcuts) send a value, which reruns.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const V = {                       // viewer state; window.viewerState for tests
    imageUrl: null, camUrl: null, img: null, cam: null, base: null, camCanvas: null,
    wc: 0, ww: 1, invert: false, zoom: 1, panX: 0, panY: 0, opacity: 0.4, argOpacity: null,
    tool: "wl", fitted: true, wlMs: [], fetches: 0, draws: 0, renders: 0, sent: 0, args: null, panes: [], studyKey: null,
  };
  window.viewerState = V;

  function send(type, extra) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, extra || {}), "*");
  }
  function setHeight() { send("streamlit:setFrameHeight", { height: document.body.scrollHeight }); }
  function mediaUrl(path) {   // media paths are server-relative; the iframe lives under <base>/component/...
    const at = location.pathname.indexOf("/component/");
    return location.origin + (at >= 0 ? location.pathname.slice(0, at) : "") + path;
  }
  async function fetchBytes(path) {
    const r = await fetch(mediaUrl(path));
    if (!r.ok) throw new Error("viewer: " + r.status + " for " + path);
    V.fetches += 1;
    return r.arrayBuffer();
  }

  // ------------------------------------------------------------------ pixels
  function windowImage() {          // stored uint16 -> 8-bit grey through a 65,536-entry LUT
    const a = V.args, img = V.img;
    if (!img) return;
    const lut = new Uint8ClampedArray(65536), lo = V.wc - V.ww / 2, ww = Math.max(V.ww, 1e-6);
    for (let s = 0; s < 65536; s++) {
      let g = ((s * a.scale + a.offset) - lo) / ww;
      g = g < 0 ? 0 : g > 1 ? 1 : g;
      lut[s] = Math.round(255 * (V.invert ? 1 - g : g));
    }
    const out = new ImageData(img.w, img.h), d = out.data, px = img.px;
    for (let i = 0, j = 0; i < px.length; i++, j += 4) {
      const g = lut[px[i]];
      d[j] = g; d[j + 1] = g; d[j + 2] = g; d[j + 3] = 255;
    }
    if (!V.base) V.base = document.createElement("canvas");
    V.base.width = img.w; V.base.height = img.h;
    V.base.getContext("2d").putImageData(out, 0, 0);
  }
  function jet(t) {                 // OpenCV's COLORMAP_JET, piecewise linear
    const c = (v) => Math.round(255 * Math.max(0, Math.min(1, v)));
    return [c(1.5 - Math.abs(4 * t - 3)), c(1.5 - Math.abs(4 * t - 2)), c(1.5 - Math.abs(4 * t - 1))];
  }
  function colourCam(bytes, n) {
    const cv = document.createElement("canvas"), im = new ImageData(n, n);
    cv.width = n; cv.height = n;
    for (let i = 0; i < n * n; i++) {
      const [r, g, b] = jet(bytes[i] / 255);
      im.data.set([r, g, b, 255], 4 * i);
    }
    cv.getContext("2d").putImageData(im, 0, 0);
    return cv;
  }

  // ------------------------------------------------------------------ layout and drawing
  function layout() {
    const a = V.args, host = $("panes");
    const want = a.side_by_side ? ["Radiograph", a.method + " map"] : [a.cam_url ? a.method + " overlay" : "Radiograph"];
    let changed = false;
    if (V.panes.length !== want.length) {
      changed = true;
      host.innerHTML = "";
      V.panes = want.map(() => {
        const div = document.createElement("div"), cv = document.createElement("canvas"), cap = document.createElement("span");
        div.className = "pane"; cap.className = "cap";
        div.append(cv, cap); host.append(div); bindPointer(cv);
        return { cv: cv, cap: cap };
      });
    }
    want.forEach((t, i) => { V.panes[i].cap.textContent = t; V.panes[i].overlay = !a.side_by_side || i === 1; });
    const w = Math.max(100, Math.floor((host.clientWidth - 6 * (want.length + 1)) / want.length));
    const h = Math.min(a.max_height, Math.round(w * a.height / a.width));
    V.panes.forEach((p) => {
      if (p.cv.width !== w || p.cv.height !== h) { p.cv.width = w; p.cv.height = h; changed = true; }
    });
    return changed;
  }
  function paneSize() { const c = V.panes[0].cv; return [c.width, c.height]; }
  function fit() {
    const [w, h] = paneSize(), a = V.args;
    V.zoom = Math.min(w / a.width, h / a.height);
    V.panX = (w - a.width * V.zoom) / 2; V.panY = (h - a.height * V.zoom) / 2;
    V.fitted = true;
  }
  function relayout() {   // panes resized (a rerun changed the page's width): keep the reader's view
    const before = V.panes.length ? paneSize() : null;
    if (!layout()) return false;
    const [w, h] = paneSize();
    if (V.fitted || !before) fit(); else { V.panX += (w - before[0]) / 2; V.panY += (h - before[1]) / 2; }
    return true;
  }
  function oneToOne() {
    const [w, h] = paneSize(), cx = (w / 2 - V.panX) / V.zoom, cy = (h / 2 - V.panY) / V.zoom;
    V.zoom = 1; V.panX = w / 2 - cx; V.panY = h / 2 - cy; V.fitted = false;
  }
  function draw() {
    if (!V.base) return;
    for (const p of V.panes) {
      const ctx = p.cv.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.fillStyle = "#000"; ctx.fillRect(0, 0, p.cv.width, p.cv.height);
      ctx.setTransform(V.zoom, 0, 0, V.zoom, V.panX, V.panY);
      ctx.imageSmoothingEnabled = V.zoom < 2;
      ctx.drawImage(V.base, 0, 0);
      if (p.overlay && V.camCanvas && V.opacity > 0) {
        ctx.globalAlpha = V.opacity; ctx.imageSmoothingEnabled = true;
        ctx.drawImage(V.camCanvas, 0, 0, V.args.width, V.args.height);
        ctx.globalAlpha = 1;
      }
    }
    V.draws += 1;
    $("status").textContent = "W " + fmt(V.ww) + "  L " + fmt(V.wc) + "  ·  zoom " + V.zoom.toFixed(2) + "×" +
      (V.invert ? "  ·  inverted" : "") + "  ·  map " + Math.round(100 * V.opacity) + "%";
    document.body.dataset.window = V.wc + "," + V.ww;
    document.body.dataset.zoom = String(V.zoom);
  }
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));
  function reset() {
    const a = V.args;
    V.wc = a.window.center; V.ww = a.window.width; V.invert = a.invert; V.opacity = a.opacity;
    $("preset").value = ""; $("opacity").value = V.opacity;
    windowImage(); fit(); draw(); tools();
  }

  // ------------------------------------------------------------------ interaction (no server traffic)
  function bindPointer(cv) {
    let drag = null;
    cv.addEventListener("contextmenu", (e) => e.preventDefault());
    cv.addEventListener("pointerdown", (e) => {
      cv.setPointerCapture(e.pointerId);
      const pan = e.button !== 0 || e.shiftKey || V.tool === "pan";
      drag = { x: e.clientX, y: e.clientY, pan: pan };
    });
    cv.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y, a = V.args;
      drag.x = e.clientX; drag.y = e.clientY;
      if (drag.pan) { V.panX += dx; V.panY += dy; V.fitted = false; draw(); return; }
      const k = a.value_span / 400;   // 400 px of drag sweep the image's whole value range
      V.ww = Math.max(1, V.ww + dx * k); V.wc += dy * k; $("preset").value = "";
      const t0 = performance.now();
      windowImage(); draw();
      V.wlMs.push(performance.now() - t0);   // for benchmarks/bench_review_browser.py
    });
    const end = () => { drag = null; };
    cv.addEventListener("pointerup", end); cv.addEventListener("pointercancel", end);
    cv.addEventListener("dblclick", () => { fit(); draw(); });
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = cv.getBoundingClientRect(), sx = cv.width / r.width;
      zoomAt(Math.exp(-e.deltaY * 0.0015), (e.clientX - r.left) * sx, (e.clientY - r.top) * sx);
    }, { passive: false });
  }
  function zoomAt(f, mx, my) {
    const z = Math.min(32, Math.max(0.05, V.zoom * f)); f = z / V.zoom;
    V.panX = mx - (mx - V.panX) * f; V.panY = my - (my - V.panY) * f; V.zoom = z; V.fitted = false; draw();
  }
  function tools() {
    $("tool-wl").classList.toggle("on", V.tool === "wl"); $("tool-pan").classList.toggle("on", V.tool === "pan");
    $("invert").classList.toggle("on", V.invert);
  }
  $("tool-wl").onclick = () => { V.tool = "wl"; tools(); };
  $("tool-pan").onclick = () => { V.tool = "pan"; tools(); };
  $("fit").onclick = () => { fit(); draw(); };
  $("one").onclick = () => { oneToOne(); draw(); };
  $("invert").onclick = () => { V.invert = !V.invert; windowImage(); draw(); tools(); };
  $("reset").onclick = reset;
  $("opacity").oninput = (e) => { V.opacity = Number(e.target.value); draw(); };
  $("preset").onchange = (e) => {
    const p = V.args.presets.find((q) => q[0] === e.target.value);
    if (p) { V.wc = p[1]; V.ww = p[2]; windowImage(); draw(); }
  };
  const ACTIONS = { n: "next", p: "previous", a: "agree", d: "disagree", u: "uncertain" };
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || !V.args) return;
    const k = e.key.toLowerCase(), [w, h] = paneSize();
    if (k === "r") reset();
    else if (k === "i") $("invert").onclick();
    else if (k === "f") { fit(); draw(); }
    else if (k === "1") { oneToOne(); draw(); }
    else if (k === "t") { V.tool = V.tool === "wl" ? "pan" : "wl"; tools(); }
    else if (k === "+" || k === "=") zoomAt(1.25, w / 2, h / 2);
    else if (k === "-") zoomAt(0.8, w / 2, h / 2);
    else if (ACTIONS[k]) {   // the one message that reaches the server: a study or decision shortcut
      V.sent += 1;
      send("streamlit:setComponentValue", { value: { action: ACTIONS[k], n: Date.now() }, dataType: "json" });
    } else return;
    e.preventDefault();
  });

  // ------------------------------------------------------------------ Streamlit render messages
  async function onRender(a) {
    V.renders += 1;
    const first = V.args === null || a.study_key !== V.studyKey;
    V.args = a; V.studyKey = a.study_key;
    relayout();
    if (a.image_url !== V.imageUrl) {   // once per study: the server sends a URL, the bytes come once
      V.imageUrl = a.image_url;
      const buf = await fetchBytes(a.image_url);
      if (V.imageUrl !== a.image_url) return;   // a newer study arrived meanwhile
      V.img = { w: a.width, h: a.height, px: new Uint16Array(buf) };
    }
    if (a.cam_url !== V.camUrl) {
      V.camUrl = a.cam_url;
      V.camCanvas = a.cam_url ? colourCam(new Uint8Array(await fetchBytes(a.cam_url)), a.cam_size) : null;
    }
    const sel = $("preset");
    if (first) {
      sel.innerHTML = '<option value="">Window preset…</option>' +
        a.presets.map((p) => "<option>" + p[0].replace(/[<&]/g, "") + "</option>").join("");
      reset();
    } else {
      if (a.opacity !== V.argOpacity) { V.opacity = a.opacity; $("opacity").value = a.opacity; }
      draw();
    }
    V.argOpacity = a.opacity;
    document.body.dataset.ready = "1";
    setHeight();
  }
  window.addEventListener("message", (ev) => {
    const d = ev.data;
    if (d && d.type === "streamlit:render") onRender(d.args).catch((err) => { $("status").textContent = String(err); });
  });
  window.addEventListener("resize", () => { if (V.args && V.base) { relayout(); draw(); setHeight(); } });
  send("streamlit:componentReady", { apiVersion: 1 });
})();
