// Voice (issue 14): push-to-talk into the action box, and the GM's narration spoken as it
// streams, with captions. Works on the play page and the stage page (templates/media/voice/).
//
// In: hold the button (or the push-to-talk key while no text box has focus) → MediaRecorder
// (webm/opus, mp4 where that is all the browser has) → one POST per utterance → the transcript
// lands in the action box, or is sent at once with "Send what I say at once".
// Out: the socket delivers `session.audio` as an out-of-band <span data-voice-audio> into
// #voice-feed; each sentence is fetched, decoded and scheduled on ONE AudioContext timeline
// (source.start(at) back to back — no onended chaining, so no gaps), and the caption of the
// sentence being spoken is highlighted for everyone, spectators included.
// Settings per player in localStorage: voice on/off, volume, auto-send, push-to-talk key.
(function () {
  "use strict";
  var root = document.getElementById("voice");
  if (!root) return;

  var STORE = "gtw.voice";
  var LEAD_S = 0.06; // schedule this far ahead: decode jitter never makes a click
  var MIN_PRESS_MS = 250;
  var CAPTIONS_KEPT = 4;

  var el = function (id) { return document.getElementById(id); };
  var ptt = el("voice-ptt"), level = el("voice-level"), statusEl = el("voice-status");
  var unlockBtn = el("voice-unlock"), caption = el("voice-caption"), feed = el("voice-feed");
  var onBox = el("voice-on"), volumeBox = el("voice-volume"), autoBox = el("voice-autosend"), keyBtn = el("voice-key");

  // What the page did, for people debugging audio and for the browser test.
  var state = (window.gtwVoice = {
    scheduled: [], // {action_seq, i, at, duration, text}
    captions: [], // texts in the order they were highlighted
    transcripts: [], // {text, ms}: ms from release to the transcript in the box
    errors: [],
    unlocked: false,
  });

  var settings = load();
  onBox.checked = settings.on;
  volumeBox.value = String(settings.volume);
  autoBox.checked = settings.autosend;
  keyBtn.textContent = settings.key;
  root.hidden = false;

  function load() {
    var d = { on: true, volume: 0.9, autosend: false, key: "Space" };
    try {
      var s = JSON.parse(localStorage.getItem(STORE) || "{}");
      return {
        on: typeof s.on === "boolean" ? s.on : d.on,
        volume: typeof s.volume === "number" ? Math.min(1, Math.max(0, s.volume)) : d.volume,
        autosend: typeof s.autosend === "boolean" ? s.autosend : d.autosend,
        key: typeof s.key === "string" && s.key ? s.key : d.key,
      };
    } catch (e) {
      return d;
    }
  }
  function save() {
    try { localStorage.setItem(STORE, JSON.stringify(settings)); } catch (e) { /* private mode */ }
  }
  function say(text) { statusEl.textContent = text || ""; }

  // ---- the one AudioContext ------------------------------------------------------------------
  var ctx = null, gain = null, nextAt = 0, chain = Promise.resolve();
  var sources = [], epoch = 0; // what is scheduled; a stop (the X-card) starts a new epoch
  var Ctx = window.AudioContext || window.webkitAudioContext;

  function audio() {
    if (!ctx && Ctx) {
      ctx = new Ctx();
      gain = ctx.createGain();
      gain.gain.value = settings.volume;
      gain.connect(ctx.destination);
    }
    return ctx;
  }
  function unlock() {
    var c = audio();
    if (!c) return;
    if (c.state !== "running") c.resume().then(refreshUnlock, refreshUnlock);
    else refreshUnlock();
  }
  function refreshUnlock() {
    var was = state.unlocked;
    state.unlocked = !!ctx && ctx.state === "running";
    unlockBtn.hidden = state.unlocked || !settings.on;
    if (state.unlocked && !was) listening();
  }
  // Browsers start audio only after a gesture: the first click or key anywhere unlocks it.
  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, unlock, { capture: true, passive: true });
  });
  unlockBtn.addEventListener("click", unlock);
  refreshUnlock();

  // ---- narration audio in ------------------------------------------------------------------
  function showCaption(text, unavailable) {
    var line = document.createElement("p");
    line.className = "voice-line" + (unavailable ? " unavailable" : "");
    line.textContent = text;
    if (unavailable) {
      var note = document.createElement("span");
      note.className = "muted";
      note.textContent = " (audio unavailable)";
      line.appendChild(note);
    }
    caption.appendChild(line); // queued: shown when its audio starts (highlight)
    return line;
  }
  function highlight(line, text) {
    Array.prototype.forEach.call(caption.querySelectorAll(".speaking"), function (n) {
      n.classList.remove("speaking");
    });
    line.classList.add("speaking");
    // Keep a few spoken lines before it (for screen readers' review); drop older ones.
    var spoken = [];
    for (var n = line.previousElementSibling; n; n = n.previousElementSibling) spoken.push(n);
    spoken.slice(CAPTIONS_KEPT - 1).forEach(function (old) { old.remove(); });
    state.captions.push(text);
  }

  function fetchAudio(item) {
    return fetch(item.url, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.arrayBuffer();
      })
      .then(function (bytes) {
        // The promise form; decoding runs while earlier sentences are still playing.
        return audio().decodeAudioData(bytes);
      });
  }

  function schedule(item, buffer, mine) {
    if (mine !== epoch) return; // stopped since it arrived
    var c = audio();
    var line = showCaption(item.text, false);
    if (!buffer || !settings.on || c.state !== "running") {
      highlight(line, item.text); // captions still follow, without sound
      return;
    }
    var source = c.createBufferSource();
    source.buffer = buffer;
    source.connect(gain);
    var at = Math.max(c.currentTime + LEAD_S, nextAt);
    source.start(at);
    sources.push(source);
    source.onended = function () { sources = sources.filter(function (s) { return s !== source; }); };
    nextAt = at + buffer.duration;
    state.scheduled.push({ action_seq: item.action_seq, i: item.i, at: at, duration: buffer.duration, text: item.text });
    setTimeout(function () {
      if (mine === epoch) highlight(line, item.text);
    }, Math.max(0, (at - c.currentTime) * 1000));
  }

  function receive(item) {
    if (!item || typeof item.text !== "string") return;
    var mine = epoch;
    if (!item.ok || !item.url) {
      chain = chain.then(function () {
        if (mine === epoch) highlight(showCaption(item.text, true), item.text);
      });
      return;
    }
    // Fetch and decode at once (in parallel with what plays), schedule strictly in arrival order.
    var ready = settings.on && audio() ? fetchAudio(item).catch(function (e) {
      state.errors.push(String(e));
      return null;
    }) : Promise.resolve(null);
    chain = chain.then(function () { return ready; }).then(function (buffer) { schedule(item, buffer, mine); });
  }

  // The X-card stops the scene: stop the voice at once, and what was queued with it.
  function stopAll() {
    epoch += 1;
    sources.forEach(function (s) { try { s.stop(); } catch (e) { /* not started yet */ } });
    sources = [];
    nextAt = 0;
    while (caption.firstChild) caption.removeChild(caption.firstChild);
    state.stopped = (state.stopped || 0) + 1;
  }
  state.stop = stopAll;
  var log = document.getElementById("log");
  if (log) {
    new MutationObserver(function (records) {
      var tapped = records.some(function (r) {
        return Array.prototype.some.call(r.addedNodes, function (n) {
          return n.nodeType === 1 && (n.matches(".xcard-tap") || !!n.querySelector(".xcard-tap"));
        });
      });
      if (tapped) stopAll();
    }).observe(log, { childList: true, subtree: true });
  }

  function drainFeed() {
    Array.prototype.slice.call(feed.querySelectorAll("[data-voice-audio]")).forEach(function (node) {
      var item = null;
      try { item = JSON.parse(node.getAttribute("data-voice-audio")); } catch (e) { /* ignore */ }
      node.remove();
      receive(item);
    });
    // htmx swaps the wrapper <div> in too: keep the feed empty.
    while (feed.firstChild) feed.removeChild(feed.firstChild);
  }
  new MutationObserver(drainFeed).observe(feed, { childList: true, subtree: true });
  // Scripts and tools on a JSON socket can feed the same player.
  state.receive = receive;

  // ---- telling the server someone listens -----------------------------------------------------
  // The GM's narration is synthesised only while someone at the session has voice on; the
  // server forgets after 15 minutes, so say it again every 5 while voice stays on.
  var listeningUrl = root.getAttribute("data-listening-url");
  function listening() {
    // Only a page that can play it counts: voice on, and audio unlocked by a click.
    if (!settings.on || !state.unlocked || !listeningUrl) return;
    fetch(listeningUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf() },
    }).catch(function () { /* offline for a moment: the next ping says it again */ });
  }
  listening();
  setInterval(listening, 5 * 60 * 1000);

  // ---- settings ----------------------------------------------------------------------------
  onBox.addEventListener("change", function () {
    settings.on = onBox.checked;
    save();
    listening();
    if (!settings.on && ctx) { nextAt = 0; ctx.suspend(); } else unlock();
    refreshUnlock();
  });
  volumeBox.addEventListener("input", function () {
    settings.volume = parseFloat(volumeBox.value) || 0;
    if (gain) gain.gain.value = settings.volume;
    save();
  });
  autoBox.addEventListener("change", function () { settings.autosend = autoBox.checked; save(); });
  keyBtn.addEventListener("click", function () {
    keyBtn.textContent = "Press a key…";
    var pick = function (e) {
      e.preventDefault();
      if (e.code !== "Escape") settings.key = e.code;
      keyBtn.textContent = settings.key;
      save();
      document.removeEventListener("keydown", pick, true);
    };
    document.addEventListener("keydown", pick, true);
  });

  // ---- push to talk --------------------------------------------------------------------------
  var speechUrl = root.getAttribute("data-speech-url");
  var media = navigator.mediaDevices;
  var Recorder = window.MediaRecorder;
  var stream = null, recorder = null, chunks = [], pressedAt = 0, releasedAt = 0, meterRaf = 0, analyser = null;
  var recording = false, busy = false;

  function actionBox() { return document.getElementById("action-text"); }
  function canSpeak() { return !!actionBox(); }
  function showPtt() { ptt.hidden = !(micAvailable && canSpeak()); }
  var micAvailable = false;

  if (media && media.getUserMedia && Recorder) {
    var check = media.enumerateDevices ? media.enumerateDevices() : Promise.resolve([{ kind: "audioinput" }]);
    check.then(function (devices) {
      micAvailable = devices.some(function (d) { return d.kind === "audioinput"; });
      showPtt();
    }, function () { micAvailable = false; showPtt(); });
    // The action box comes and goes (a stage speaker called up, a session ended).
    new MutationObserver(showPtt).observe(document.body, { childList: true, subtree: true });
  }

  function mimeType() {
    var kinds = ["audio/webm;codecs=opus", "audio/webm", "audio/mp4", "audio/ogg;codecs=opus"];
    for (var i = 0; i < kinds.length; i++) {
      if (Recorder.isTypeSupported && Recorder.isTypeSupported(kinds[i])) return kinds[i];
    }
    return "";
  }

  function meter() {
    if (!analyser) return;
    var data = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(data);
    var sum = 0;
    for (var i = 0; i < data.length; i++) sum += data[i] * data[i];
    level.value = Math.min(1, Math.sqrt(sum / data.length) * 4);
    meterRaf = requestAnimationFrame(meter);
  }

  function start() {
    if (recording || busy || !canSpeak()) return;
    recording = true;
    pressedAt = performance.now();
    ptt.setAttribute("aria-pressed", "true");
    ptt.classList.add("recording");
    say("Listening…");
    unlock();
    var got = stream ? Promise.resolve(stream) : media.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    got.then(function (s) {
      stream = s;
      if (!recording) return; // released before the microphone opened
      var c = audio();
      if (c && !analyser) {
        analyser = c.createAnalyser();
        analyser.fftSize = 1024;
        c.createMediaStreamSource(stream).connect(analyser);
      }
      level.hidden = false;
      meter();
      var type = mimeType();
      recorder = type ? new Recorder(stream, { mimeType: type }) : new Recorder(stream);
      chunks = [];
      recorder.ondataavailable = function (e) { if (e.data && e.data.size) chunks.push(e.data); };
      recorder.onstop = upload;
      recorder.start();
    }, function (err) {
      recording = false;
      ptt.classList.remove("recording");
      ptt.setAttribute("aria-pressed", "false");
      say(err && err.name === "NotAllowedError" ? "Microphone blocked — allow it in the browser to talk." : "No microphone available.");
      if (err && err.name === "NotFoundError") { micAvailable = false; showPtt(); }
    });
  }

  function stop() {
    if (!recording) return;
    recording = false;
    releasedAt = performance.now();
    ptt.setAttribute("aria-pressed", "false");
    ptt.classList.remove("recording");
    cancelAnimationFrame(meterRaf);
    level.value = 0;
    level.hidden = true;
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch (e) { return ""; }
  }

  function upload() {
    var type = (recorder && recorder.mimeType) || "audio/webm";
    var blob = new Blob(chunks, { type: type });
    chunks = [];
    if (releasedAt - pressedAt < MIN_PRESS_MS || !blob.size) {
      say("Hold the button while you speak.");
      return;
    }
    busy = true;
    say("…");
    fetch(speechUrl, {
      method: "POST",
      body: blob,
      credentials: "same-origin",
      headers: { "Content-Type": type.split(";")[0], "X-CSRFToken": csrf() },
    })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { say(res.body.detail || "Voice input failed — type your action instead."); return; }
        var box = actionBox();
        if (!box) { say("You can't act right now."); return; }
        var text = res.body.text;
        box.value = box.value.trim() ? box.value.trim() + " " + text : text;
        box.dispatchEvent(new Event("input", { bubbles: true }));
        state.transcripts.push({ text: text, ms: performance.now() - releasedAt });
        if (settings.autosend && box.form) {
          say("Sent.");
          if (box.form.requestSubmit) box.form.requestSubmit(); else box.form.submit();
        } else {
          say("Check it, then send.");
          box.focus();
        }
      })
      .catch(function () { say("Voice input failed — type your action instead."); })
      .then(function () { busy = false; });
  }

  ptt.addEventListener("pointerdown", function (e) { e.preventDefault(); ptt.setPointerCapture && ptt.setPointerCapture(e.pointerId); start(); });
  ["pointerup", "pointercancel", "lostpointercapture"].forEach(function (type) { ptt.addEventListener(type, stop); });
  ptt.addEventListener("contextmenu", function (e) { e.preventDefault(); }); // long-press on phones

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable ||
      (tag === "INPUT" && !/^(checkbox|radio|range|button|submit)$/.test(target.type));
  }
  document.addEventListener("keydown", function (e) {
    if (e.code !== settings.key || e.repeat || typing(document.activeElement) || ptt.hidden) return;
    e.preventDefault();
    start();
  });
  document.addEventListener("keyup", function (e) {
    if (e.code !== settings.key || !recording) return;
    e.preventDefault();
    stop();
  });
  window.addEventListener("blur", stop);
  // The action went out (typed or spoken): the last voice hint no longer applies.
  document.addEventListener("submit", function (e) {
    if (e.target && e.target.id === "action-form") say("");
  }, true);
})();
