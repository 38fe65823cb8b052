(function(w, d, nav, loc) {
  var script = d.currentScript;
  var options = script.dataset;
  var endpoint = options.endpoint || script.src.replace(/\/[^/]*$/, "");
  var hashRouting = "hash" in options, view;
  var lastPage, tab, queued = w.recordEvent;
  try {
    tab = sessionStorage;
  } catch (e) {
  }
  tab = tab || {};
  tab.analytics_sess = tab.analytics_sess || (Math.random() + "").slice(2);
  function skipReason() {
    var optOut;
    try {
      optOut = localStorage.analytics_ignore == "true";
    } catch (e) {
    }
    return nav.doNotTrack == "1" ? true ? "DNT" : 1 : nav.globalPrivacyControl ? true ? "GPC" : 1 : optOut ? true ? "opt-out" : 1 : "allowLocal" in options ? 0 : nav.webdriver ? true ? "webdriver" : 1 : /^(localhost|127\.|\[::1\]|$)/.test(loc.hostname) ? true ? "local" : 1 : 0;
  }
  function currentPage() {
    return hashRouting ? loc.href : loc.href.split("#")[0];
  }
  function send(kind, fields) {
    var reason = skipReason();
    var url = endpoint + "/" + kind;
    var body = JSON.stringify(Object.assign({
      domain: loc.hostname,
      page: currentPage(),
      referrer: lastPage || d.referrer,
      timezone: (/* @__PURE__ */ new Date()).getTimezoneOffset(),
      platform: nav.platform,
      sess_id: tab.analytics_sess
    }, fields));
    if (true) console.log("analytics: " + (reason ? "not sent (" + reason + ")" : "send"), url, body);
    if (!reason) fetch(url, { method: "POST", keepalive: true, body }).catch(String);
  }
  function pageview() {
    var page = currentPage();
    var timing = performance.timing;
    if (page != lastPage) {
      if (true) engagement(), ticks = sentSeconds = 0;
      send("pageview", {
        pages: view = tab.analytics_pages = ++tab.analytics_pages || 1,
        load_ms: lastPage ? void 0 : timing.loadEventEnd - timing.navigationStart
      });
      lastPage = page;
    }
  }
  function recordEvent(name, note) {
    send("event", { event: name, note });
  }
  w.recordEvent = recordEvent;
  (queued && queued.q || []).forEach(function(args) {
    recordEvent.apply(w, args);
  });
  function onClick(event) {
    var target = event.target, el = target.closest && target.closest("[data-analytics-event]");
    if (el) recordEvent(el.dataset.analyticsEvent, el.dataset.analyticsNote);
    if (true) {
      let link = target.closest && target.closest("a[href]") || {}, host = link.hostname, url = host + link.pathname;
      let name = "downloads" in options && fileTypes.test(url) ? "download" : host != loc.hostname && "outbound" in options && "outbound";
      if (host && name && event.button < 2) recordEvent(name, url);
    }
  }
  d.addEventListener("click", onClick, true);
  if (true) {
    var fileTypes = RegExp("\\.(" + (options.downloads || "pdf,zip,gz,7z,dmg,exe,msi,apk,csv,xlsx?,docx?,pptx?,mp[34]").replace(/,/g, "|") + ")$", "i");
    d.addEventListener("auxclick", onClick, true);
    var ticks = 0, sentSeconds = 0;
    var engagement = function() {
      let seconds = Math.round(ticks / 10);
      if ("engagement" in options && lastPage && seconds > sentSeconds) {
        send("event", { event: "engagement", page: lastPage, pages: view, engaged: sentSeconds = seconds });
      }
    };
    d.addEventListener("visibilitychange", engagement);
    w.addEventListener("pagehide", engagement);
  }
  setInterval(function() {
    if (!d.hidden) ticks++;
    d.prerendering || d.readyState != "complete" || pageview();
  }, 100);
})(window, document, navigator, location);
