/*
 * Edgeflags capability probe: what this browser can run, measured honestly.
 *
 * window.EdgeflagsProbe.run({apiKey, endpoint?, clientId?, overrides?}) -> Promise<answer>
 *   collect() + send(). The answer is the server's JSON: {segment, decisions, profile, ...}.
 * window.EdgeflagsProbe.collect({overrides?}) -> Promise<probe body>
 * window.EdgeflagsProbe.send(probe, {apiKey, endpoint?}) -> Promise<answer>
 * window.EdgeflagsProbe.flush({apiKey, endpoint?}) -> Promise<number sent>
 *
 * Missing APIs stay missing: a field is omitted when the browser does not expose it (Safari
 * and Firefox have no deviceMemory, no connection info, no battery). `overrides` is merged
 * over what was collected ({device: {...}, network: {...}, platform: {...}}), so a demo page
 * can emulate device classes. Offline, or when the server is unreachable or busy (5xx, 429),
 * the probe is queued in localStorage and retried with backoff and on the `online` event.
 * No dependencies, no build step.
 */
(function () {
  "use strict";

  var QUEUE_KEY = "edgeflags.probeQueue";
  var CLIENT_KEY = "edgeflags.clientId";
  var QUEUE_LIMIT = 5;
  var WORKLOAD = "matmul-f32-64x64-v1";
  var retryTimer = null;
  var retryDelayMs = 2000;
  var lastOptions = null;

  function withTimeout(promise, ms) {
    return Promise.race([
      promise,
      new Promise(function (resolve) { setTimeout(function () { resolve(undefined); }, ms); }),
    ]);
  }

  function attempt(fn) {
    try { return Promise.resolve(fn()).catch(function () { return undefined; }); }
    catch (e) { return Promise.resolve(undefined); }
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function clientId() {
    var store = storage();
    var id = store && store.getItem(CLIENT_KEY);
    if (!id) {
      id = uuid();
      if (store) store.setItem(CLIENT_KEY, id);
    }
    return id;
  }

  // WASM feature tests: tiny modules that only validate when the feature exists.
  var SIMD_MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3,
    2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
  var THREADS_MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2,
    1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11]);

  function wasm(module) {
    try { return typeof WebAssembly === "object" && WebAssembly.validate(module); }
    catch (e) { return false; }
  }

  // A fixed reference workload: 64x64 float32 matrix multiply, median of 5 runs.
  // Total well under 200 ms even on slow phones; the figure is what the ladder reads.
  function benchmark() {
    var n = 64, a = new Float32Array(n * n), b = new Float32Array(n * n), c = new Float32Array(n * n);
    for (var i = 0; i < n * n; i++) { a[i] = (i % 7) * 0.5; b[i] = (i % 5) * 0.25; }
    var runs = [], deadline = performance.now() + 180;
    for (var r = 0; r < 5 && performance.now() < deadline; r++) {
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
    runs.sort(function (x, y) { return x - y; });
    var ms = runs[Math.floor(runs.length / 2)];
    return { ms: Math.max(0.01, Math.round(ms * 100) / 100), workload: WORKLOAD, check: c[n + 1] };
  }

  function platform() {
    var out = {}, ua = navigator.userAgent || "", data = navigator.userAgentData;
    if (data) {
      if (data.platform) out.os = data.platform;
      out.mobile = !!data.mobile;
      var brand = (data.brands || []).filter(function (x) { return !/Not.?A.?Brand|Chromium/i.test(x.brand); })[0]
        || (data.brands || [])[0];
      if (brand) { out.browser = brand.brand.replace("Google ", ""); out.browserVersion = String(brand.version); }
    } else {
      var os = /Android/.test(ua) ? "Android" : /iPhone|iPad|iPod/.test(ua) ? "iOS"
        : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : null;
      if (os) out.os = os;
      var m = ua.match(/(Firefox|Edg|Chrome|Version)\/([\d.]+)/);
      if (m) {
        out.browser = m[1] === "Edg" ? "Edge" : m[1] === "Version" ? "Safari" : m[1];
        out.browserVersion = m[2];
      }
      out.mobile = /Mobi|Android|iPhone/.test(ua);
    }
    return out;
  }

  function merge(probe, overrides) {
    if (!overrides) return probe;
    ["device", "network", "platform", "benchmark"].forEach(function (section) {
      if (!overrides[section]) return;
      probe[section] = probe[section] || {};
      Object.keys(overrides[section]).forEach(function (key) {
        var value = overrides[section][key];
        if (value === null) delete probe[section][key];
        else probe[section][key] = value;
      });
    });
    return probe;
  }

  function collect(options) {
    options = options || {};
    var device = {}, network = {};
    if (typeof navigator.deviceMemory === "number") device.memoryGb = navigator.deviceMemory;
    if (typeof navigator.hardwareConcurrency === "number") device.cores = navigator.hardwareConcurrency;
    device.wasmSimd = wasm(SIMD_MODULE);
    if (typeof SharedArrayBuffer === "function") device.wasmThreads = wasm(THREADS_MODULE);
    var c = navigator.connection;
    if (c) {
      if (c.effectiveType) network.effectiveType = c.effectiveType;
      if (typeof c.rtt === "number") network.rttMs = c.rtt;
      if (typeof c.downlink === "number") network.downlinkMbps = c.downlink;
      if (typeof c.saveData === "boolean") network.saveData = c.saveData;
    }
    if (typeof navigator.onLine === "boolean") network.online = navigator.onLine;

    var gpu = navigator.gpu
      ? withTimeout(attempt(function () { return navigator.gpu.requestAdapter(); }), 1000).then(function (adapter) {
          // An API that answers "no adapter" is a real false; a missing API stays unknown.
          device.webgpu = !!adapter;
          device.shaderF16 = !!(adapter && adapter.features && adapter.features.has("shader-f16"));
        })
      : Promise.resolve();
    var nn = navigator.ml && navigator.ml.createContext
      ? withTimeout(attempt(function () { return navigator.ml.createContext(); }), 1000).then(function (ctx) {
          device.webnn = !!ctx;
        })
      : Promise.resolve();
    var battery = navigator.getBattery
      ? withTimeout(attempt(function () { return navigator.getBattery(); }), 500).then(function (b) {
          if (!b) return;
          if (typeof b.level === "number") device.batteryLevel = Math.round(b.level * 100) / 100;
          if (typeof b.charging === "boolean") device.charging = b.charging;
        })
      : Promise.resolve();
    var disk = navigator.storage && navigator.storage.estimate
      ? withTimeout(attempt(function () { return navigator.storage.estimate(); }), 500).then(function (e) {
          if (e && typeof e.quota === "number") device.storageGb = Math.round(e.quota / 1e8) / 10;
        })
      : Promise.resolve();
    var pressure = typeof PressureObserver === "function"
      ? withTimeout(new Promise(function (resolve) {
          try {
            var observer = new PressureObserver(function (records) {
              var last = records[records.length - 1];
              if (last) device.computePressure = last.state;
              observer.disconnect();
              resolve();
            });
            observer.observe("cpu").catch(function () { resolve(); });
          } catch (e) { resolve(); }
        }), 50)
      : Promise.resolve();

    return Promise.all([gpu, nn, battery, disk, pressure]).then(function () {
      var bench = benchmark();
      var probe = {
        probeId: uuid(),
        clientId: options.clientId || clientId(),
        consent: options.consent !== false,
        device: device,
        network: network,
        platform: platform(),
        benchmark: { ms: bench.ms, workload: bench.workload },
      };
      if (options.appVersion) probe.platform.appVersion = String(options.appVersion);
      return merge(probe, options.overrides);
    });
  }

  function readQueue() {
    var store = storage();
    try { return JSON.parse((store && store.getItem(QUEUE_KEY)) || "[]"); } catch (e) { return []; }
  }

  function writeQueue(queue) {
    var store = storage();
    if (store) store.setItem(QUEUE_KEY, JSON.stringify(queue.slice(-QUEUE_LIMIT)));
  }

  function enqueue(probe) {
    var queue = readQueue().filter(function (p) { return p.probeId !== probe.probeId; });
    queue.push(probe);
    writeQueue(queue);
  }

  function scheduleRetry(options) {
    lastOptions = options;
    if (retryTimer) return;
    retryTimer = setTimeout(function () {
      retryTimer = null;
      flush(options).catch(function () {});
    }, retryDelayMs);
    retryDelayMs = Math.min(retryDelayMs * 2, 5 * 60 * 1000);
  }

  function post(probe, options) {
    var endpoint = options.endpoint || "/api/v1/probes";
    return fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + options.apiKey },
      body: JSON.stringify(probe),
      keepalive: true,
    }).then(function (response) {
      if (response.ok) return response.json();
      var retryable = response.status >= 500 || response.status === 429;
      return response.text().then(function (text) {
        var error = new Error("probe rejected: " + response.status + " " + text);
        error.retryable = retryable;
        throw error;
      });
    }, function (networkError) {
      networkError.retryable = true;
      throw networkError;
    });
  }

  function send(probe, options) {
    if (navigator.onLine === false) {
      enqueue(probe);
      scheduleRetry(options);
      return Promise.resolve({ queued: true });
    }
    return post(probe, options).then(function (answer) {
      retryDelayMs = 2000;
      return answer;
    }, function (error) {
      if (!error.retryable) {
        if (window.console) console.warn("edgeflags: " + error.message);
        throw error;
      }
      enqueue(probe);
      scheduleRetry(options);
      return { queued: true };
    });
  }

  // Send queued probes, oldest first; stop at the first that still cannot go.
  function flush(options) {
    var queue = readQueue(), sent = 0;
    function next() {
      if (!queue.length) { writeQueue(queue); return Promise.resolve(sent); }
      return post(queue[0], options).then(function () {
        queue.shift(); sent++; writeQueue(queue); return next();
      }, function (error) {
        if (!error.retryable) { queue.shift(); writeQueue(queue); return next(); }
        writeQueue(queue);
        scheduleRetry(options);
        return sent;
      });
    }
    return next();
  }

  function run(options) {
    return collect(options).then(function (probe) { return send(probe, options); });
  }

  window.addEventListener("online", function () {
    if (lastOptions) { retryDelayMs = 2000; flush(lastOptions).catch(function () {}); }
  });

  window.EdgeflagsProbe = { collect: collect, send: send, flush: flush, run: run, queueKey: QUEUE_KEY };
})();
