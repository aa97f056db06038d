/* The demo page: renders the smart-compose rung this browser is served (templates/demo/index.html). */
(function () {
  "use strict";
  // What the server put on the page (a JSON data block: no inline script, so a strict CSP holds).
  var config = JSON.parse(document.getElementById("demo-config").textContent);
  var emulate = config.emulate, overrides = config.overrides, templates = config.templates;
  var panel = document.getElementById("smart-compose");
  var list = document.getElementById("sc-suggestions");

  document.getElementById("emulate").addEventListener("change", function (event) {
    var value = event.target.value;
    location.search = value ? "?emulate=" + encodeURIComponent(value) : "";
  });

  // The "edge" rung: a tiny stand-in model that runs in the page (keywords -> replies).
  function localModel(message) {
    var text = message.toLowerCase(), replies = [];
    if (/pric/.test(text)) replies.push("Happy to share our enterprise pricing — attached is the overview for 40 seats.");
    if (/sso|sign-on/.test(text)) replies.push("Yes, we support single sign-on (SAML and OIDC) on every enterprise plan.");
    if (/eu|residency/.test(text)) replies.push("Your data can stay in our EU region; residency is contractually guaranteed.");
    replies.push("Would a 20-minute call this week help? I can walk your team through it.");
    return replies.slice(0, 3);
  }

  function show(suggestions) {
    list.innerHTML = "";
    suggestions.forEach(function (text) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = text;
      button.addEventListener("click", function () { document.getElementById("reply").value = text; });
      list.appendChild(button);
    });
  }

  function render() {
    var decision = Edgeflags.decision("smart-compose");
    var rung = decision ? decision.variant : "lite";
    var ui = (decision && decision.uiState) || {};
    var copy = ui.copy || {}, options = ui.options || {};
    panel.dataset.rung = rung;
    document.getElementById("sc-title").textContent = copy.title || "";
    document.getElementById("sc-badge").textContent = copy.badge || rung;
    var unmet = decision && decision.unmet ? Object.keys(decision.unmet).map(function (key) {
      return key + ": " + decision.unmet[key].join(", ");
    }) : [];
    document.getElementById("sc-why").textContent = unmet.length ? "Not available here: " + unmet.join("; ") : "";
    // What this browser does not report (Safari, Firefox: memory) the server estimated.
    var estimated = decision && decision.metadata && decision.metadata.estimated;
    document.getElementById("sc-estimated").textContent = estimated
      ? "Estimated by the server (this browser does not report it): " + estimated : "";
    document.getElementById("source").textContent = "decisions from " + Edgeflags.source()
      + (Edgeflags.snapshotVersion() ? " · v" + Edgeflags.snapshotVersion() : "");
    var message = document.getElementById("lead-message").textContent;
    var started = performance.now();
    function inference(ok) {  // telemetry for the guardrails (sent in batches)
      Edgeflags.track("smart-compose", "inference",
        { ms: Math.max(0.01, performance.now() - started), ok: ok });
    }
    if (rung === "edge") {
      show(localModel(message));
      inference(true);
    } else if (rung === "cloud") {
      show(["Generating…"]);
      fetch(options.endpoint || "/demo/compose", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ message: message }),
      }).then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (body) { inference(true); show(body.suggestions || []); panel.dataset.ready = "true"; },
              function () { inference(false); show(options.templates || templates); });
      return;
    } else if (rung === "lite") {
      show(options.templates || templates);
    } else {
      list.innerHTML = "";
    }
    panel.dataset.ready = "true";
  }

  var clientKey = "edgeflags.demoClient." + (emulate || "browser");
  var clientId = localStorage.getItem(clientKey);
  if (!clientId) {
    clientId = "demo-" + (emulate || "browser") + "-" + Math.random().toString(36).slice(2, 10);
    localStorage.setItem(clientKey, clientId);
  }
  Edgeflags.on("change", render);
  Edgeflags.start({
    apiKey: config.apiKey,
    clientId: clientId,
    overrides: overrides,
    offline: emulate === "offline",
    intervalMs: 15000,
    defaults: { "smart-compose": { variant: "lite", uiState: {
      component: "TemplateReplies", copy: { title: "Quick replies" }, options: { templates: templates } } } },
  }).then(render, render);
})();
