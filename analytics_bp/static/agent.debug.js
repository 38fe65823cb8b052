(function(w, d, nav, loc) {
  var script = d.currentScript;
  var options = script.dataset;
  var endpoint = options.endpoint || script.src.replace(/\/[^/]*$/, "");
  var hashRouting = "hash" in options;
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
  function send(kind, event, note, pages, loadMs) {
    var reason = skipReason();
    var url = endpoint + "/" + kind;
    var body = JSON.stringify({
      domain: loc.hostname,
      page: currentPage(),
      referrer: lastPage || d.referrer,
      timezone: (/* @__PURE__ */ new Date()).getTimezoneOffset(),
      platform: nav.platform,
      sess_id: tab.analytics_sess,
      pages,
      load_ms: loadMs,
      event,
      note
    });
    if (true) console.log("analytics: " + (reason ? "not sent (" + reason + ")" : "send"), url, body);
    if (!reason) {
      try {
        w.fetch ? fetch(url, { method: "POST", keepalive: true, body }).catch(String) : nav.sendBeacon(url, body);
      } catch (e) {
      }
    }
  }
  function pageview() {
    var page = currentPage();
    var timing = performance.timing;
    if (page != lastPage) {
      send(
        "pageview",
        void 0,
        void 0,
        tab.analytics_pages = ++tab.analytics_pages || 1,
        lastPage ? void 0 : timing.loadEventEnd - timing.navigationStart
      );
      lastPage = page;
    }
  }
  function recordEvent(name, note) {
    send("event", name, note);
  }
  w.recordEvent = recordEvent;
  (queued && queued.q || []).forEach(function(args) {
    recordEvent.apply(w, args);
  });
  d.addEventListener("click", function(event) {
    var el = event.target.closest && event.target.closest("[data-analytics-event]");
    if (el) recordEvent(el.dataset.analyticsEvent, el.dataset.analyticsNote);
  }, true);
  setInterval(function() {
    d.prerendering || d.readyState != "complete" || pageview();
  }, 100);
})(window, document, navigator, location);
