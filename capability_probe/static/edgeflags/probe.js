/*
 * Edgeflags capability probe: what this browser can run, measured rather than guessed.
 * Dependency-free ES2017, no build step; load it with a plain <script> tag.
 *
 * window.EdgeflagsProbe
 *   .collect(options?)        -> Promise<probe>   the probe body (below), nothing sent
 *   .send(probe, options)     -> Promise<answer>  POST it; queued when it cannot go now
 *   .run(options)             -> Promise<answer>  collect() then send()
 *   .flush(options)           -> Promise<boolean> send queued probes now; true when none is left
 *   .queued()                 -> probe[]          what is waiting in localStorage
 *
 * options (all optional except apiKey for sending):
 *   apiKey      a client key, sent as "Authorization: Bearer <apiKey>"
 *   baseUrl     where Edgeflags is served, e.g. "https://flags.example.com", for pages on
 *               another origin (the client API answers CORS); default: this page's origin
 *   endpoint    default "/api/v1/probes" (under baseUrl)
 *   clientId    default: a random id kept in localStorage "edgeflags.clientId"
 *   appVersion  your app's version, reported as platform.appVersion
 *   identityHash  the backend's HMAC-SHA256 of clientId (environments with signed identities)
 *   consent     default true; false asks the server to answer without storing anything
 *   overrides   {device: {...}, network: {...}, platform: {...}, benchmark: {...}} merged over
 *               what was collected, field by field; a null value removes a field (as if the
 *               browser had no such API). Meant for demo pages emulating device classes:
 *               {device: {memoryGb: 1, webgpu: false}, benchmark: {ms: 450}}.
 *
 * The probe body (exactly what the server accepts; it rejects unknown fields):
 *   {probeId: <uuid v4>, clientId, identityHash?, consent,
 *    device:   {memoryGb, cores, webgpu, shaderF16, webnn, wasmSimd, wasmThreads,
 *               batteryLevel (0..1), charging, storageGb, storageFreeGb, computePressure},
 *    network:  {effectiveType, rttMs, downlinkMbps, saveData, online, connectionType,
 *               measuredRttMs, measuredRttSamples, measuredDownlinkMbps, measuredDownlinkSamples},
 *    platform: {os, osVersion, browser, browserVersion, mobile, appVersion},
 *    benchmark: {ms, workload: "matmul-f32-64x64-v1"}}
 *
 * Missing stays missing. A field is present only when the browser answered:
 *   - an API the browser does not have (Safari/Firefox: deviceMemory, connection, battery;
 *     no navigator.gpu, no navigator.ml) leaves its fields out: unknown, not "false";
 *   - an API that answers "no" is a real false: requestAdapter() resolving null gives
 *     webgpu: false (and shaderF16: false); createContext() rejecting gives webnn: false;
 *   - an API that throws unexpectedly or does not answer within its timeout is left out;
 *   - wasmSimd / wasmThreads are feature tests, so always a boolean: wasmThreads is false
 *     in a page that is not cross-origin isolated (no SharedArrayBuffer: threads unusable).
 * storageGb is the origin's storage quota in GiB (navigator.storage.estimate().quota), not
 * free disk; storageFreeGb is the quota less the origin's usage (room for a model download).
 * connectionType is navigator.connection.type (Chromium on Android and ChromeOS). osVersion comes from User-Agent Client Hints, or from the UA string only where
 * it is not frozen (Android, iOS): "Windows NT 10.0" and "Mac OS X 10_15_7" are left out.
 *
 * Sending. Resolves with the server's JSON ({segment, decisions, profile, ...}). When offline
 * (navigator.onLine === false), on a network error or timeout, or on a 5xx or 429, the probe
 * is queued in localStorage "edgeflags.probeQueue" (newest 5 kept), the promise resolves with
 * {queued: true, probeId}, and the queue is retried with exponential backoff (2 s doubling to
 * 5 min, Retry-After honoured) and at once on the window "online" event. Queued probes go
 * before any newer one, so the server's latest profile is the client's latest probe. Any
 * other 4xx is the caller's mistake, never retried: the promise rejects with an Error
 * carrying .status, and one console.warn per status is logged.
 *
 * Measured network (every browser; Chromium alone has navigator.connection): with an apiKey,
 * collect() times a few requests to Edgeflags (options.networkEndpoint, default
 * "/api/v1/network"): measuredRttMs is the median round trip of up to 5 pings after the one
 * that opens the connection, measuredDownlinkMbps the throughput of payloads sized up from
 * 64 KiB to at most 1 MiB (none under saveData), each with its sample count. Off with
 * measureNetwork: false. options.benchmark ({ms, workload}) reports a given measurement;
 * reuseBenchmark: true reuses this page's last one (edgeflags.js re-measuring the network).
 *
 * Timing: every async API has its own timeout (at most 400 ms, compute pressure 50 ms) and
 * they run in parallel with the benchmark (at most ~200 ms); the network is measured after
 * it, within 2.5 s at most (a fast link takes well under 100 ms).
 */
(function () {
  "use strict";

  var QUEUE_KEY = "edgeflags.probeQueue";
  var CLIENT_KEY = "edgeflags.clientId";
  var QUEUE_LIMIT = 5;
  var DEFAULT_ENDPOINT = "/api/v1/probes";
  var WORKLOAD = "matmul-f32-64x64-v1";
  var TIMEOUT_MS = { gpu: 400, webnn: 400, battery: 300, storage: 300, pressure: 50, hints: 200, post: 10000 };
  var RETRY_FIRST_MS = 2000;
  var RETRY_MAX_MS = 5 * 60 * 1000;
  var EFFECTIVE_TYPES = ["slow-2g", "2g", "3g", "4g"];
  var CONNECTION_TYPES = ["bluetooth", "cellular", "ethernet", "mixed", "none", "other", "unknown", "wifi", "wimax"];
  var PRESSURE_STATES = ["nominal", "fair", "serious", "critical"];
  var TEXT_LIMIT = 64; // the server's limit for platform strings
  var SECTIONS = ["device", "network", "platform", "benchmark"];

  // ---------------------------------------------------------------- small helpers

  // Run `start` (sync or async) with a deadline. Never rejects: the caller must tell "no
  // answer" ({timedOut} or {error}) from an answer ({value}) — they mean different things.
  function settle(ms, start) {
    return new Promise(function (resolve) {
      var timer = setTimeout(function () { resolve({ timedOut: true }); }, ms);
      Promise.resolve().then(start).then(
        function (value) { clearTimeout(timer); resolve({ value: value }); },
        function (error) { clearTimeout(timer); resolve({ error: error }); }
      );
    });
  }

  function uuid4() {
    var c = window.crypto;
    // randomUUID exists only in secure contexts; a LAN http:// page still needs an id.
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // localStorage can be missing or throw (blocked storage, private modes): fall back to
  // memory for this page rather than failing the probe.
  var memory = {};
  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return memory[key] || null; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { memory[key] = value; }
  }

  function persistedClientId() {
    var id = load(CLIENT_KEY);
    if (!id) { id = uuid4(); save(CLIENT_KEY, id); }
    return id;
  }

  function text(value) { return String(value).slice(0, TEXT_LIMIT); }
  function isNumber(value) { return typeof value === "number" && isFinite(value); }

  var warned = {};
  function warnOnce(key, message) {
    if (warned[key]) return;
    warned[key] = true;
    if (window.console && console.warn) console.warn("edgeflags: " + message);
  }

  // ---------------------------------------------------------------- signals

  // Tiny modules that validate only when the engine has the feature (as wasm-feature-detect).
  // SIMD: a function returning i8x16.popcnt(i8x16.splat(0)).
  var SIMD_MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3,
    2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
  // Threads: a shared memory and an i32.atomic.load from it.
  var THREADS_MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2,
    1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11]);

  function wasmValidates(module) {
    try { return typeof WebAssembly === "object" && WebAssembly.validate(module) === true; }
    catch (e) { return false; }
  }

  function syncSignals(device, network) {
    var nav = navigator;
    if (isNumber(nav.deviceMemory) && nav.deviceMemory > 0) device.memoryGb = nav.deviceMemory;
    if (isNumber(nav.hardwareConcurrency) && nav.hardwareConcurrency >= 1) device.cores = nav.hardwareConcurrency;
    device.wasmSimd = wasmValidates(SIMD_MODULE);
    // Threads need SharedArrayBuffer, which only cross-origin-isolated pages get.
    device.wasmThreads = typeof SharedArrayBuffer === "function" && wasmValidates(THREADS_MODULE);
    var c = nav.connection;
    if (c) {
      if (EFFECTIVE_TYPES.indexOf(c.effectiveType) >= 0) network.effectiveType = c.effectiveType;
      if (isNumber(c.rtt) && c.rtt >= 0) network.rttMs = c.rtt;
      if (isNumber(c.downlink) && c.downlink >= 0) network.downlinkMbps = c.downlink;
      if (typeof c.saveData === "boolean") network.saveData = c.saveData;
      if (CONNECTION_TYPES.indexOf(c.type) >= 0) network.connectionType = c.type; // a download condition
    }
    if (typeof nav.onLine === "boolean") network.online = nav.onLine;
  }

  async function webgpu(device) {
    var gpu = navigator.gpu;
    if (!gpu || typeof gpu.requestAdapter !== "function") return; // no API: unknown
    var r = await settle(TIMEOUT_MS.gpu, function () { return gpu.requestAdapter(); });
    if (r.timedOut || r.error) return; // no answer is not a "no"
    var adapter = r.value;
    device.webgpu = !!adapter; // null: the browser has WebGPU but no usable adapter
    device.shaderF16 = !!(adapter && adapter.features && adapter.features.has("shader-f16"));
  }

  async function webnn(device) {
    var ml = navigator.ml;
    if (!ml || typeof ml.createContext !== "function") return;
    var creating = Promise.resolve().then(function () { return ml.createContext(); });
    // Only the answer matters: release the context, even one that arrives after the timeout.
    creating.then(function (ctx) {
      try { if (ctx && typeof ctx.destroy === "function") ctx.destroy(); } catch (e) { /* gone */ }
    }, function () {});
    var r = await settle(TIMEOUT_MS.webnn, function () { return creating; });
    if (r.timedOut) return;
    device.webnn = !r.error && !!r.value; // a rejection is the API's way of saying no
  }

  async function battery(device) {
    if (typeof navigator.getBattery !== "function") return;
    var r = await settle(TIMEOUT_MS.battery, function () { return navigator.getBattery(); });
    var b = r.value;
    if (!b) return;
    if (isNumber(b.level)) device.batteryLevel = Math.round(Math.min(1, Math.max(0, b.level)) * 100) / 100;
    if (typeof b.charging === "boolean") device.charging = b.charging;
  }

  async function storage(device) {
    var s = navigator.storage;
    if (!s || typeof s.estimate !== "function") return;
    var r = await settle(TIMEOUT_MS.storage, function () { return s.estimate(); });
    if (r.value && isNumber(r.value.quota)) device.storageGb = Math.round((r.value.quota / 1073741824) * 10) / 10;
    // Room left for a model download (a download condition), rounded down to 0.1 GiB.
    if (r.value && isNumber(r.value.quota) && isNumber(r.value.usage)) {
      device.storageFreeGb = Math.max(0, Math.floor(((r.value.quota - r.value.usage) / 1073741824) * 10) / 10);
    }
  }

  // Compute pressure arrives as an observation, maybe never: wait at most 50 ms for the first.
  function pressure(device) {
    if (typeof PressureObserver !== "function") return Promise.resolve();
    return new Promise(function (resolve) {
      var observer = null, finished = false;
      function finish() {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        try { if (observer) observer.disconnect(); } catch (e) { /* already gone */ }
        resolve();
      }
      var timer = setTimeout(finish, TIMEOUT_MS.pressure);
      try {
        observer = new PressureObserver(function (records) {
          var last = records && records[records.length - 1];
          if (!finished && last && PRESSURE_STATES.indexOf(last.state) >= 0) device.computePressure = last.state;
          finish();
        });
        Promise.resolve(observer.observe("cpu")).catch(finish); // not allowed / no source
      } catch (e) {
        finish();
      }
    });
  }

  // Chromium sends a GREASE brand ("Not:A-Brand", "Not/A)Brand", ...) and "Chromium" next
  // to the real product; prefer the product, then Chromium, never the GREASE one.
  function pickBrand(brands) {
    var real = (brands || []).filter(function (b) { return b && b.brand && !/not.a.brand/i.test(b.brand); });
    return real.filter(function (b) { return b.brand !== "Chromium"; })[0] || real[0] || null;
  }

  function brandName(brand) {
    return brand.replace(/^Google /, "").replace(/^Microsoft /, "");
  }

  function parseUserAgent(ua, out) {
    var m;
    if ((m = ua.match(/Android ([\d.]+)/))) { out.os = "Android"; out.osVersion = m[1]; }
    else if ((m = ua.match(/(?:iPhone|iPad|iPod).*? OS ([\d_]+)/))) { out.os = "iOS"; out.osVersion = m[1].replace(/_/g, "."); }
    else if (/CrOS/.test(ua)) out.os = "Chrome OS";
    // iPadOS asks for desktop sites by default: a "Macintosh" with a touch screen is an iPad.
    else if (/Macintosh|Mac OS X/.test(ua)) out.os = navigator.maxTouchPoints > 1 ? "iOS" : "macOS";
    else if (/Windows/.test(ua)) out.os = "Windows";
    else if (/Linux/.test(ua)) out.os = "Linux";
    // Order matters: Edge and Opera also say "Chrome/", Chrome also says "Safari/".
    var browsers = [
      [/Edg(?:e|A|iOS)?\/([\d.]+)/, "Edge"],
      [/OPR\/([\d.]+)/, "Opera"],
      [/SamsungBrowser\/([\d.]+)/, "Samsung Internet"],
      [/(?:Firefox|FxiOS)\/([\d.]+)/, "Firefox"],
      [/(?:CriOS|Chrome)\/([\d.]+)/, "Chrome"],
      [/Version\/([\d.]+).*Safari\//, "Safari"],
    ];
    for (var i = 0; i < browsers.length; i++) {
      if ((m = ua.match(browsers[i][0]))) { out.browser = browsers[i][1]; out.browserVersion = m[1]; break; }
    }
    out.mobile = /Mobi|iPhone|iPod/.test(ua);
  }

  async function platform() {
    var out = {}, data = navigator.userAgentData;
    if (data && Array.isArray(data.brands)) {
      if (data.platform) out.os = data.platform;
      if (typeof data.mobile === "boolean") out.mobile = data.mobile;
      var brand = pickBrand(data.brands);
      if (brand) { out.browser = brandName(brand.brand); out.browserVersion = String(brand.version); }
      if (typeof data.getHighEntropyValues === "function") {
        var r = await settle(TIMEOUT_MS.hints, function () {
          return data.getHighEntropyValues(["platformVersion", "fullVersionList"]);
        });
        var hints = r.value || {};
        if (hints.platformVersion) out.osVersion = hints.platformVersion;
        var full = pickBrand(hints.fullVersionList);
        if (brand && full && full.brand === brand.brand && full.version) out.browserVersion = full.version;
      }
    } else {
      parseUserAgent(navigator.userAgent || "", out);
    }
    ["os", "osVersion", "browser", "browserVersion"].forEach(function (key) {
      if (out[key] !== undefined) out[key] = text(out[key]);
    });
    return out;
  }

  // ---------------------------------------------------------------- benchmark

  // The reference workload, fixed forever under its name: one run = 4 multiplications of two
  // 64x64 float32 matrices (~1 M multiply-adds); report the median of 5 runs. A slow device
  // stops early at 180 ms and reports the median of the runs it finished.
  var sink = 0; // keeps the result observable so the engine cannot drop the work
  var lastBenchmark = null; // this page's measurement, for reuseBenchmark
  function benchmark() {
    var n = 64, size = n * n;
    var a = new Float32Array(size), b = new Float32Array(size), c = new Float32Array(size);
    for (var i = 0; i < size; i++) { a[i] = (i % 7) * 0.5; b[i] = (i % 5) * 0.25; }
    var runs = [], deadline = performance.now() + 180;
    for (var run = 0; run < 5 && (run === 0 || performance.now() < deadline); run++) {
      var start = performance.now();
      for (var rep = 0; rep < 4; rep++) {
        for (var row = 0; row < n; row++) {
          for (var col = 0; col < n; col++) {
            var sum = 0;
            for (var k = 0; k < n; k++) sum += a[row * n + k] * b[k * n + col];
            c[row * n + col] = sum;
          }
        }
      }
      runs.push(performance.now() - start);
    }
    sink += c[n + 1];
    runs.sort(function (x, y) { return x - y; });
    var ms = runs[Math.floor(runs.length / 2)];
    // Timers are coarsened (100 µs outside isolated pages); 0 would read as "free".
    return { ms: Math.max(0.01, Math.round(ms * 100) / 100), workload: WORKLOAD };
  }

  // ---------------------------------------------------------------- network, measured

  // The browser's own estimates (navigator.connection) exist in Chromium only, so the link
  // is measured here, in every browser, against Edgeflags itself:
  //   RTT: NETWORK.pings tiny requests one after another; the first pays for the connection
  //     (DNS, TCP, TLS, a CORS preflight) and is left out; the median of the rest is reported.
  //   downlink: payloads of growing size (64 KiB, x4, at most 1 MiB, at most 3) until one takes
  //     NETWORK.targetMs to arrive; the last one's throughput is reported. Skipped under
  //     saveData.
  // Each sample prefers the Resource Timing entry (the browser's timestamps, blind to a busy
  // main thread) over wall-clock time. Everything stops at NETWORK.budgetMs; what was not measured
  // by then is left out.
  var NETWORK = {
    pings: 6, budgetMs: 2500, requestTimeoutMs: 1500,
    firstBytes: 65536, growth: 4, maxBytes: 1048576, maxDownloads: 3, targetMs: 200,
  };
  var DEFAULT_NETWORK_ENDPOINT = "/api/v1/network";

  function median(values) {
    var sorted = values.slice().sort(function (x, y) { return x - y; });
    var middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  function timingEntry(url) {
    if (!window.performance || typeof performance.getEntriesByName !== "function") return null;
    var entries = performance.getEntriesByName(url);
    var entry = entries[entries.length - 1];
    // Cross-origin entries without Timing-Allow-Origin have their timestamps zeroed.
    return entry && entry.responseStart > 0 && entry.responseEnd >= entry.responseStart ? entry : null;
  }

  async function timed(url, apiKey, deadline) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var wait = Math.max(1, Math.min(NETWORK.requestTimeoutMs, deadline - performance.now()));
    var timer = controller ? setTimeout(function () { controller.abort(); }, wait) : null;
    var started = performance.now();
    try {
      var response = await fetch(url, {
        cache: "no-store", headers: { Authorization: "Bearer " + apiKey },
        signal: controller ? controller.signal : undefined,
      });
      if (!response.ok) return null;
      var bytes = (await response.arrayBuffer()).byteLength;
      var ended = performance.now();
      var entry = timingEntry(new URL(url, location.href).href);
      // Fetch start to the last byte: a ping's body is empty, so that is its round trip,
      // wherever the browser spends the latency (Chromium's network emulation, for one, adds
      // it after responseStart).
      return { ms: entry ? entry.responseEnd - entry.startTime : ended - started, bytes: bytes };
    } catch (e) {
      return null; // timed out or failed: no sample
    } finally {
      clearTimeout(timer);
    }
  }

  async function measureNetwork(network, options) {
    var base = (options.baseUrl || "") + (options.networkEndpoint || DEFAULT_NETWORK_ENDPOINT);
    var deadline = performance.now() + NETWORK.budgetMs;
    var tag = uuid4().slice(0, 8), rtts = [];
    for (var i = 0; i < NETWORK.pings && performance.now() < deadline; i++) {
      var ping = await timed(base + "/ping?n=" + tag + i, options.apiKey, deadline);
      if (!ping) break;
      if (i > 0) rtts.push(ping.ms);
    }
    if (rtts.length) {
      network.measuredRttMs = Math.round(median(rtts));
      network.measuredRttSamples = rtts.length;
    }
    if (network.saveData === true) return; // the user asked for less data
    var size = NETWORK.firstBytes, downloads = 0, last = null;
    var rtt = rtts.length ? median(rtts) : 0;
    while (downloads < NETWORK.maxDownloads && performance.now() < deadline) {
      var got = await timed(base + "/download?bytes=" + size + "&n=" + tag + downloads, options.apiKey, deadline);
      if (!got || got.bytes !== size) break;
      downloads++;
      // The payload's own time: its total less the round trip a ping takes.
      var ms = got.ms - rtt;
      last = { bits: size * 8, ms: Math.max(ms, 0.5) };
      if (ms >= NETWORK.targetMs || size >= NETWORK.maxBytes) break;
      size = Math.min(NETWORK.maxBytes, size * NETWORK.growth);
    }
    if (last) {
      network.measuredDownlinkMbps = Math.round(last.bits / last.ms / 1000 * 20) / 20;
      network.measuredDownlinkSamples = downloads;
    }
  }

  // ---------------------------------------------------------------- collect

  function applyOverrides(probe, overrides) {
    if (!overrides) return probe;
    SECTIONS.forEach(function (section) {
      var patch = overrides[section];
      if (!patch) return;
      var target = probe[section] || (probe[section] = {});
      Object.keys(patch).forEach(function (key) {
        if (patch[key] === null || patch[key] === undefined) delete target[key];
        else target[key] = patch[key];
      });
    });
    return probe;
  }

  function quietly(promise) { return promise.catch(function () {}); }

  async function collect(options) {
    options = options || {};
    var device = {}, network = {};
    syncSignals(device, network);
    // Start every async probe, then measure while the browser answers them: the waits
    // overlap the benchmark instead of adding to it.
    var pending = Promise.all([
      quietly(webgpu(device)), quietly(webnn(device)), quietly(battery(device)),
      quietly(storage(device)), quietly(pressure(device)),
      platform().catch(function () { return {}; }),
    ]);
    // A benchmark measured earlier in this page (edgeflags.js re-measuring the network) is
    // reused: the device did not change, and the workload costs ~200 ms of main thread.
    var measured = options.benchmark || (options.reuseBenchmark && lastBenchmark) || benchmark();
    lastBenchmark = measured;
    var platformInfo = (await pending)[5];
    // The network is measured after the benchmark, so that the two do not skew each other.
    if (options.apiKey && options.measureNetwork !== false && navigator.onLine !== false) {
      await quietly(measureNetwork(network, options));
    }
    if (options.appVersion !== undefined && options.appVersion !== null) platformInfo.appVersion = text(options.appVersion);
    var probe = {
      probeId: uuid4(),
      clientId: options.clientId ? String(options.clientId) : persistedClientId(),
      consent: options.consent !== false,
      device: device,
      network: network,
      platform: platformInfo,
      benchmark: measured,
    };
    if (options.identityHash) probe.identityHash = String(options.identityHash);
    return applyOverrides(probe, options.overrides);
  }

  // ---------------------------------------------------------------- send, queue, retry

  function queued() {
    try {
      var queue = JSON.parse(load(QUEUE_KEY) || "[]");
      return Array.isArray(queue) ? queue : [];
    } catch (e) {
      return [];
    }
  }

  function writeQueue(queue) { save(QUEUE_KEY, JSON.stringify(queue.slice(-QUEUE_LIMIT))); }

  function enqueue(probe) {
    var queue = queued().filter(function (p) { return p && p.probeId !== probe.probeId; });
    queue.push(probe);
    writeQueue(queue); // newest win
  }

  function dequeue(probeId) {
    writeQueue(queued().filter(function (p) { return p && p.probeId !== probeId; }));
  }

  function failure(status, detail, retryable, retryAfterMs) {
    var error = new Error("probe " + (status ? "rejected: " + status : "not sent") + (detail ? " " + detail : ""));
    error.status = status;
    error.retryable = retryable;
    error.retryAfterMs = retryAfterMs || 0;
    return error;
  }

  async function post(probe, options) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS.post) : null;
    var response;
    try {
      response = await fetch((options.baseUrl || "") + (options.endpoint || DEFAULT_ENDPOINT), {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + options.apiKey },
        body: JSON.stringify(probe),
        keepalive: true, // a probe sent as the page unloads still lands
        signal: controller ? controller.signal : undefined,
      });
    } catch (e) {
      throw failure(0, "(network: " + (e && e.name) + ")", true);
    } finally {
      clearTimeout(timer);
    }
    if (response.ok) return response.json();
    var retryable = response.status >= 500 || response.status === 429;
    var retryAfter = parseFloat(response.headers.get("Retry-After") || "");
    var detail = "";
    try {
      var body = await response.json();
      detail = body.errorDetails || body.errorCode || "";
    } catch (e) { /* not JSON: the status says enough */ }
    throw failure(response.status, detail, retryable, isFinite(retryAfter) ? retryAfter * 1000 : 0);
  }

  var retryTimer = null;
  var retryDelayMs = RETRY_FIRST_MS;
  var retryOptions = null; // the last send options, so timers and "online" can flush
  var flushing = null;

  function scheduleRetry(options, atLeastMs) {
    retryOptions = options;
    // Offline, the "online" event is the signal; timers would only burn the backoff.
    if (retryTimer || navigator.onLine === false) return;
    var delay = Math.max(retryDelayMs, atLeastMs || 0);
    retryDelayMs = Math.min(retryDelayMs * 2, RETRY_MAX_MS);
    // +-20 % jitter: a fleet that lost the server together must not come back in lockstep.
    retryTimer = setTimeout(function () {
      retryTimer = null;
      flush(options);
    }, delay * (0.8 + Math.random() * 0.4));
  }

  function succeeded() {
    retryDelayMs = RETRY_FIRST_MS;
  }

  function reportRejection(error) {
    warnOnce("status-" + error.status, error.message);
  }

  // Send the queue oldest first; stop at the first probe that still cannot go. One flush at
  // a time: the timer, the "online" event and send() may all ask for one together.
  function flush(options) {
    if (flushing) return flushing;
    flushing = (async function () {
      try {
        for (;;) {
          var head = queued()[0];
          if (!head) return true;
          if (navigator.onLine === false) { scheduleRetry(options); return false; }
          try {
            await post(head, options);
            succeeded();
          } catch (error) {
            if (error.retryable) { scheduleRetry(options, error.retryAfterMs); return false; }
            reportRejection(error); // the server will never take it: drop it
          }
          dequeue(head.probeId);
        }
      } catch (e) {
        return false; // storage trouble: keep what is queued for the next chance
      } finally {
        flushing = null;
      }
    })();
    return flushing;
  }

  function queueForLater(probe, options, error) {
    enqueue(probe);
    scheduleRetry(options, error && error.retryAfterMs);
    return { queued: true, probeId: probe.probeId };
  }

  async function send(probe, options) {
    options = options || {};
    probe = Object.assign({}, probe);
    if (options.clientId) probe.clientId = String(options.clientId);
    if (!probe.clientId) probe.clientId = persistedClientId();
    if (!probe.probeId) probe.probeId = uuid4();
    if (navigator.onLine === false) return queueForLater(probe, options);
    // Older probes first, so that the server's latest profile is this one.
    if (queued().length && !(await flush(options))) return queueForLater(probe, options);
    try {
      var answer = await post(probe, options);
      succeeded();
      return answer;
    } catch (error) {
      if (error.retryable) return queueForLater(probe, options, error);
      reportRejection(error);
      throw error;
    }
  }

  async function run(options) {
    options = options || {};
    return send(await collect(options), options);
  }

  window.addEventListener("online", function () {
    if (!retryOptions || !queued().length) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    retryDelayMs = RETRY_FIRST_MS;
    flush(retryOptions);
  });

  window.EdgeflagsProbe = {
    collect: collect,
    send: send,
    run: run,
    flush: function (options) { return flush(options || retryOptions || {}); },
    queued: queued,
    queueKey: QUEUE_KEY,
    clientIdKey: CLIENT_KEY,
    workload: WORKLOAD,
  };
})();
