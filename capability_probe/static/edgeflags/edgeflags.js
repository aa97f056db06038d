/*
 * Edgeflags browser client: probe once, then keep this client's decisions fresh.
 *
 *   Edgeflags.start({apiKey, baseUrl?, clientId?, identityHash?, overrides?, intervalMs?,
 *                    networkIntervalMs?, defaults?, offline?})
 *     -> Promise<decisions>. Sends a capability probe (probe.js) and takes the decisions from
 *     the answer. Then it listens to the change stream the answer names (`eventStreams`,
 *     Server-Sent Events, OFREP ADR 0008) and re-evaluates the moment a change is announced;
 *     while no stream is open (none offered, refused, reconnecting, `stream: false`) it
 *     re-evaluates every intervalMs (default 30 s) with If-None-Match instead. A hidden page
 *     closes its stream after the server's inactivityDelaySec and, visible again, reopens
 *     it and re-evaluates.
 *     baseUrl: where Edgeflags is served ("https://flags.example.com") when this page is on
 *     another origin (the client API answers CORS); default: this page's origin.
 *     identityHash: where the environment requires signed identities, the hex
 *     HMAC-SHA256 of clientId that your backend computed with the environment's secret.
 *   Edgeflags.decision(flagKey) -> {value, variant, reason, uiState, metadata, ...} | null
 *   Edgeflags.ui(flagKey)       -> the UI state to render (the safe rung's when nothing is known)
 *   Edgeflags.on("change", fn)  -> fn({flagKey, decision, previous}); also the window event
 *                                  "edgeflags:change" with the same detail.
 *   Edgeflags.track(flagKey, type, fields?) -> queue a telemetry event for a flag under a
 *     rollout: type "inference" ({ms, ok}), "energy" ({millijoules}), "feedback" ({rating}),
 *     "crash". It echoes the decision's decisionToken (the server's signed record of the
 *     segment and arm it served this client; the server counts the event there and refuses
 *     events without one), so only decisions that carry a token are tracked; exposures are
 *     queued by themselves when a rolled-out decision is first shown. Sent in batches every
 *     10 s and when the page is hidden; Edgeflags.flush() sends now.
 *   Edgeflags.suggestion(flagKey, accepted) -> the user accepted (true) or dismissed (false)
 *     the model's output: the quality proxy drift is watched on (docs/edge-models.md).
 *   Edgeflags.freshness(flagKey, hours) -> hours since the on-device personalisation data
 *     was refreshed.
 *   Edgeflags.model(flagKey) -> the served model version ({name, version, url, sha256,
 *     sizeBytes, update, delta?}) of a decision on an on-device rung, or null.
 *   Edgeflags.fetchModel(flagKey, {applyDelta?}) -> Promise<{version, data, delivery}>:
 *     downloads the served version (the delta when the server offers one and applyDelta
 *     (base, delta) -> ArrayBuffer is given and the base is cached; the full artifact
 *     otherwise, and whenever a delta fails), checks its SHA-256, keeps it in the Cache API
 *     and reports a model_update event. The version held is sent as context.modelVersion,
 *     so the server offers the delta from it and skips download conditions for it.
 *
 * Decisions are kept in localStorage with their snapshot version. Offline, or when the
 * server cannot be reached, the cached decisions are served; with nothing cached, the safe
 * rung given in `defaults` ({flagKey: {variant, uiState}}) is.
 *
 * No erratic rungs, the server's rule and this client's (docs/capability-signals.md): the
 * network is re-measured every networkIntervalMs (default 5 min, reusing the page's
 * benchmark) and sent as a new probe; the server moves a client's rung only with its probes,
 * upgrading once two in a row earned it and holding a rung within a tolerance. Runtime hints
 * act at once: the moment the browser goes offline, every flag served a cloud rung switches
 * to the decision the server said offline gets (its `offline` field), without a request; back
 * online, the server's decisions return and are refreshed.
 */
(function () {
  "use strict";

  var CACHE_KEY = "edgeflags.decisions";
  var state = { flags: {}, snapshotVersion: null, etag: null, source: "none", served: null };
  var networkTimer = null;
  var measuring = false;
  var options = null;
  var listeners = [];
  var timer = null;
  var eventsTimer = null;
  var queue = [];
  var exposed = {};
  var MAX_BATCH = 1000;
  var stream = {
    source: null, url: null, inactivityS: 120, hiddenTimer: null, pending: null, resume: false,
  };
  var EVENT_SOURCE_OPEN = 1, EVENT_SOURCE_CLOSED = 2;

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function loadCache() {
    var store = storage();
    try { return JSON.parse((store && store.getItem(CACHE_KEY)) || "null"); } catch (e) { return null; }
  }

  function saveCache() {
    var store = storage();
    if (!store) return;
    store.setItem(CACHE_KEY, JSON.stringify({
      flags: state.flags, snapshotVersion: state.snapshotVersion, etag: state.etag,
      savedAt: new Date().toISOString(),
    }));
  }

  function newId() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
      : Date.now().toString(36) + "-" + String(Math.random()).slice(2, 14);
  }

  // Queue an event for a flag whose decision carries the server's decision token.
  function track(flagKey, type, fields) {
    var decision = state.flags[flagKey];
    var meta = (decision && decision.metadata) || {};
    if (!meta.decisionToken || state.source !== "server") return false;
    var event = Object.assign({}, fields || {}, {
      id: newId(), type: type, flag: flagKey, decisionToken: meta.decisionToken,
      timestamp: new Date().toISOString(),
    });
    queue.push(event);
    if (queue.length >= MAX_BATCH) flush();
    return true;
  }

  function exposeOnce(flagKey) {
    var meta = (state.flags[flagKey] && state.flags[flagKey].metadata) || {};
    var key = flagKey + ":" + meta.stage + ":" + meta.decisionToken;
    if (!exposed[key] && track(flagKey, "exposure")) exposed[key] = true;
  }

  // Send what is queued; a batch that fails is kept for the next try (ids make resends safe).
  function flush() {
    if (!options || !queue.length || navigator.onLine === false) return Promise.resolve(0);
    var batch = queue.splice(0, MAX_BATCH);
    return fetch((options.baseUrl || "") + (options.eventsEndpoint || "/api/v1/events"), {
      method: "POST", keepalive: true,
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + options.apiKey },
      body: JSON.stringify({ targetingKey: options.clientId, events: batch }),
    }).then(function (response) {
      if (response.status >= 500 || response.status === 429) throw new Error("retry later");
      return batch.length; // 202, or a 4xx that a resend would not fix
    }).catch(function () {
      queue = batch.concat(queue).slice(0, 10 * MAX_BATCH);
      return 0;
    });
  }

  function emit(flagKey, decision, previous) {
    var detail = { flagKey: flagKey, decision: decision, previous: previous };
    listeners.forEach(function (fn) { try { fn(detail); } catch (e) { /* a listener's bug is its own */ } });
    window.dispatchEvent(new CustomEvent("edgeflags:change", { detail: detail }));
  }

  // Replace the decisions; announce every flag whose variant or UI state changed.
  function apply(flags, snapshotVersion, source) {
    var previous = state.flags;
    state.flags = flags || {};
    state.snapshotVersion = snapshotVersion;
    state.source = source;
    Object.keys(state.flags).forEach(function (key) {
      if (source === "server") exposeOnce(key);
      var before = previous[key], after = state.flags[key];
      if (!before || before.variant !== after.variant
          || JSON.stringify(before.uiState) !== JSON.stringify(after.uiState)) {
        emit(key, after, before || null);
      }
    });
  }

  // What the server said each flag gets offline: a cloud rung's `offline` alternative.
  function offlineView(flags) {
    var out = {};
    Object.keys(flags || {}).forEach(function (key) {
      var d = flags[key], alt = d && d.offline;
      out[key] = !alt ? d : Object.assign({}, d, {
        value: alt.value, variant: alt.variant, uiState: alt.uiState,
        metadata: Object.assign({}, d.metadata, { rung: alt.variant }),
      });
    });
    return out;
  }

  function goOffline() {
    if (state.source === "offline") return;
    state.served = state.source === "server" ? state.flags : state.served;
    apply(offlineView(state.flags), state.snapshotVersion, "offline");
  }

  function goOnline() {
    if (state.source === "offline" && state.served) apply(state.served, state.snapshotVersion, "server");
    refresh();
  }

  // A new probe with the network measured again (the benchmark is the page's): the server
  // settles this client's rungs on it and answers the decisions.
  function remeasure() {
    if (measuring || options.offline || navigator.onLine === false || !window.EdgeflagsProbe) {
      return Promise.resolve(state.flags);
    }
    measuring = true;
    return window.EdgeflagsProbe.run({
      apiKey: options.apiKey, clientId: options.clientId, overrides: options.overrides,
      appVersion: options.appVersion, identityHash: options.identityHash, reuseBenchmark: true,
      baseUrl: options.baseUrl,
    }).then(function (answer) {
      if (answer && answer.decisions && navigator.onLine !== false) {
        apply(answer.decisions.flags, answer.decisions.snapshotVersion, "server");
        saveCache();
      }
      return state.flags;
    }, function () { return state.flags; }).then(function (flags) {
      measuring = false;
      return flags;
    });
  }

  function useDefaults() {
    var flags = {};
    Object.keys(options.defaults || {}).forEach(function (key) {
      var d = options.defaults[key];
      flags[key] = { key: key, value: d.value !== undefined ? d.value : d.variant, variant: d.variant,
        reason: "DEFAULT", uiState: d.uiState || null, metadata: { rung: d.variant } };
    });
    apply(flags, null, "defaults");
  }

  function fallBack() {
    var cached = loadCache();
    if (cached && cached.flags) {
      state.etag = cached.etag || null;
      var offline = navigator.onLine === false;
      apply(offline ? offlineView(cached.flags) : cached.flags, cached.snapshotVersion,
        offline ? "offline" : "cache");
    } else {
      useDefaults();
    }
    return state.flags;
  }

  // --- on-device models: the versions this browser holds, kept with their artifacts ---
  var MODELS_KEY = "edgeflags.modelVersions", MODEL_CACHE = "edgeflags-models";

  function heldVersions() {
    var store = storage();
    try { return JSON.parse((store && store.getItem(MODELS_KEY)) || "{}") || {}; } catch (e) { return {}; }
  }

  function holdVersion(flagKey, model) {
    var store = storage(), held = heldVersions();
    held[flagKey] = { version: model.version, url: model.url };
    if (store) store.setItem(MODELS_KEY, JSON.stringify(held));
  }

  // One held version for the whole context (context attributes are flat): sent when every
  // model this browser holds is at the same version, the common case of one on-device model.
  function heldVersion() {
    var versions = Object.values(heldVersions()).map(function (h) { return h.version; });
    return versions.length && versions.every(function (v) { return v === versions[0]; }) ? versions[0] : null;
  }

  function modelOf(flagKey) {
    var decision = state.flags[flagKey];
    return (decision && decision.metadata && decision.metadata.model) || null;
  }

  async function sha256Hex(buffer) {
    var digest = await crypto.subtle.digest("SHA-256", buffer);
    return Array.from(new Uint8Array(digest)).map(function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  async function download(url, sha) {
    var response = await fetch(url);
    if (!response.ok) throw new Error(url + " answered " + response.status);
    var data = await response.arrayBuffer();
    if ((await sha256Hex(data)) !== sha) throw new Error(url + ": SHA-256 mismatch");
    return data;
  }

  async function cached(url) {
    if (!window.caches) return null;
    var cache = await caches.open(MODEL_CACHE);
    var hit = await cache.match(url);
    return hit ? hit.arrayBuffer() : null;
  }

  async function keep(url, data) {
    if (!window.caches) return;
    var cache = await caches.open(MODEL_CACHE);
    await cache.put(url, new Response(data));
  }

  async function fetchModel(flagKey, opts) {
    opts = opts || {};
    var model = modelOf(flagKey);
    if (!model) throw new Error(flagKey + ": no on-device model served");
    var held = heldVersions()[flagKey];
    if (held && held.version === model.version) {
      var have = await cached(model.url);
      if (have) return { version: model.version, data: have, delivery: "none" };
    }
    var report = { to: model.version };
    if (held) report.from = held.version;
    var data = null;
    if (model.update === "delta" && model.delta && opts.applyDelta && held) {
      try {
        var base = await cached(held.url);
        if (base) {
          var patch = await download(model.delta.url, model.delta.sha256);
          data = await opts.applyDelta(base, patch);
          var ok = (await sha256Hex(data)) === model.sha256;
          track(flagKey, "model_update", Object.assign({ delivery: "delta", ok: ok, bytes: patch.byteLength }, report));
          if (!ok) data = null; // fall back to the full artifact
        }
      } catch (e) {
        track(flagKey, "model_update", Object.assign({ delivery: "delta", ok: false, bytes: 0 }, report));
        data = null;
      }
    }
    var delivery = "delta";
    if (!data) {
      delivery = "full";
      try {
        data = await download(model.url, model.sha256);
      } catch (e) {
        track(flagKey, "model_update", Object.assign({ delivery: "full", ok: false, bytes: 0 }, report));
        throw e;
      }
      track(flagKey, "model_update", Object.assign({ delivery: "full", ok: true, bytes: data.byteLength }, report));
    }
    await keep(model.url, data);
    holdVersion(flagKey, model);
    return { version: model.version, data: data, delivery: delivery };
  }

  function context() {
    var ctx = { targetingKey: options.clientId };
    if (options.identityHash) ctx.identityHash = options.identityHash;
    var held = heldVersion();
    if (held) ctx.modelVersion = held;
    // Runtime hints that may lower a rung right now (never raise it).
    if (typeof navigator.onLine === "boolean") ctx.online = navigator.onLine;
    return ctx;
  }

  // refresh(): re-evaluate now. `how.changeEtag`: the etag of the change event that asked
  // for it (the server answering checks for that version first); `how.unconditional`: no
  // If-None-Match (after an unknown time away from the stream).
  function refresh(how) {
    how = how || {};
    if (options.offline || navigator.onLine === false) return Promise.resolve(fallBack());
    var headers = { "Content-Type": "application/json", Authorization: "Bearer " + options.apiKey };
    if (state.etag && !how.unconditional) headers["If-None-Match"] = state.etag;
    var url = (options.baseUrl || "") + (options.evaluateEndpoint || "/api/v1/evaluate");
    if (how.changeEtag) url += "?flagConfigEtag=" + encodeURIComponent(how.changeEtag);
    return fetch(url, {
      method: "POST", headers: headers, body: JSON.stringify({ context: context() }),
    }).then(function (response) {
      if (response.status === 304) return state.flags;
      if (!response.ok) throw new Error("evaluate answered " + response.status);
      state.etag = response.headers.get("ETag");
      return response.json().then(function (body) {
        apply(body.flags, body.snapshotVersion, "server");
        saveCache();
        listen(body);
        return state.flags;
      });
    }).catch(function () {
      return state.source === "server" ? state.flags : fallBack();
    });
  }

  // --- the change stream ---------------------------------------------------------------
  function streaming() {
    return !!stream.source && stream.source.readyState === EVENT_SOURCE_OPEN;
  }

  function poll() {
    if (!streaming()) refresh(); // the stream, while open, announces every change
  }

  function listen(answer) {
    if (options.stream === false || typeof EventSource === "undefined") return;
    var offered = ((answer && (answer.eventStreams || answer.refreshConnections)) || [])
      .filter(function (s) { return s && s.type === "sse" && s.url; })[0];
    if (!offered) return closeStream();
    stream.inactivityS = offered.inactivityDelaySec || 120;
    if (stream.resume) { stream.url = offered.url; return; } // hidden: reopened when visible
    if (stream.source && stream.url === offered.url) return;
    closeStream();
    stream.url = offered.url;
    openStream();
  }

  function openStream() {
    var source = new EventSource(stream.url);
    var opened = false;
    stream.source = source;
    source.onopen = function () {
      if (opened) refresh(); // reconnected: a change may have come meanwhile
      opened = true;
    };
    source.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (!data || data.type !== "refetchEvaluation") return; // unknown types: ignored
      // Changes in a burst make one request.
      if (stream.pending) clearTimeout(stream.pending);
      stream.pending = setTimeout(function () {
        stream.pending = null;
        refresh({ changeEtag: data.etag });
      }, 50);
    };
    source.onerror = function () {
      // CLOSED: refused (no key, a cap): polling takes over for good. Otherwise EventSource
      // is reconnecting by itself, and polling covers the gap.
      if (source.readyState === EVENT_SOURCE_CLOSED && stream.source === source) {
        stream.source = null;
      }
    };
  }

  function closeStream() {
    if (stream.source) stream.source.close();
    stream.source = null;
  }

  function onVisibility() {
    if (document.visibilityState === "hidden") {
      flush();
      if (stream.source && !stream.hiddenTimer) {
        stream.hiddenTimer = setTimeout(function () {
          stream.hiddenTimer = null;
          closeStream();
          stream.resume = true;
        }, stream.inactivityS * 1000);
      }
      return;
    }
    if (stream.hiddenTimer) clearTimeout(stream.hiddenTimer);
    stream.hiddenTimer = null;
    if (stream.resume && stream.url) {
      stream.resume = false;
      openStream();
      refresh({ unconditional: true });
    }
  }

  function start(opts) {
    options = Object.assign(
      { intervalMs: 30000, networkIntervalMs: 5 * 60 * 1000, defaults: {} }, opts || {});
    if (!options.clientId) options.clientId = clientIdFromStorage();
    if (timer) clearInterval(timer);
    var first;
    if (options.offline || navigator.onLine === false || !window.EdgeflagsProbe) {
      first = Promise.resolve(fallBack());
    } else {
      first = window.EdgeflagsProbe.run({
        apiKey: options.apiKey, clientId: options.clientId, overrides: options.overrides,
        appVersion: options.appVersion, identityHash: options.identityHash,
        baseUrl: options.baseUrl,
      }).then(function (answer) {
        if (answer && answer.decisions) {
          apply(answer.decisions.flags, answer.decisions.snapshotVersion, "server");
          saveCache();
          listen(answer.decisions);
          // A rollout decision without its token cannot be reported on: ask for it now
          // rather than at the first interval.
          if (Object.keys(state.flags).some(function (key) {
            var meta = state.flags[key].metadata || {};
            return meta.arm && !meta.decisionToken;
          })) return refresh();
          return state.flags;
        }
        return fallBack(); // queued: offline or the server is away
      }, function () { return fallBack(); });
    }
    timer = setInterval(poll, options.intervalMs);
    if (networkTimer) clearInterval(networkTimer);
    networkTimer = setInterval(remeasure, options.networkIntervalMs);
    if (!eventsTimer) {
      window.addEventListener("offline", goOffline);
      window.addEventListener("online", goOnline);
      eventsTimer = setInterval(flush, options.eventsIntervalMs || 10000);
      document.addEventListener("visibilitychange", onVisibility);
    }
    return first;
  }

  function clientIdFromStorage() {
    var store = storage(), key = "edgeflags.clientId";
    var id = store && store.getItem(key);
    if (!id) {
      id = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random()).slice(2);
      if (store) store.setItem(key, id);
    }
    return id;
  }

  window.Edgeflags = {
    start: start,
    refresh: function () { return refresh(); },
    streaming: streaming,
    decision: function (key) { return state.flags[key] || null; },
    ui: function (key) { var d = state.flags[key]; return d ? d.uiState || null : null; },
    source: function () { return state.source; },
    snapshotVersion: function () { return state.snapshotVersion; },
    on: function (event, fn) { if (event === "change") listeners.push(fn); },
    track: track,
    suggestion: function (key, accepted) { return track(key, "suggestion", { accepted: !!accepted }); },
    freshness: function (key, hours) { return track(key, "freshness", { hours: hours }); },
    model: modelOf,
    fetchModel: fetchModel,
    flush: flush,
    remeasure: remeasure,
  };
})();
