// Privacy-sensitive analytics agent: pageviews, SPA navigation and recordEvent, no cookies.
// Readable source; `npm run build` minifies it (budget: 850 bytes gzip -9). ES2015 at most.
// DEBUG is replaced at build time: false in agent.min.js, true in agent.debug.js (which logs
// why a beacon was not sent); reason texts exist only in the debug build.
/* global DEBUG */
(function (w, d, nav, loc) {
  var script = d.currentScript;
  var options = script.dataset;
  var endpoint = options.endpoint || script.src.replace(/\/[^/]*$/, '');
  var hashRouting = 'hash' in options;
  var lastPage, tab, queued = w.recordEvent;

  // Per-tab session state lives in sessionStorage; when storage is blocked, in a plain object.
  try {
    tab = sessionStorage;
  } catch (e) {}
  tab = tab || {};
  tab.analytics_sess = tab.analytics_sess || (Math.random() + '').slice(2);

  // Why this visit must not be recorded (a text in the debug build), or 0 when it may be.
  function skipReason() {
    var optOut;
    try {
      optOut = localStorage.analytics_ignore == 'true';
    } catch (e) {}
    return nav.doNotTrack == '1' ? DEBUG ? 'DNT' : 1
      : nav.globalPrivacyControl ? DEBUG ? 'GPC' : 1
      : optOut ? DEBUG ? 'opt-out' : 1
      : 'allowLocal' in options ? 0
      : nav.webdriver ? DEBUG ? 'webdriver' : 1
      : /^(localhost|127\.|\[::1\]|$)/.test(loc.hostname) ? DEBUG ? 'local' : 1
      : 0;
  }

  // The page URL; the collector keeps only its path (and UTM tags). The fragment counts only
  // with data-hash (hash routing), so jumping to an #anchor is not a pageview.
  function currentPage() {
    return hashRouting ? loc.href : loc.href.split('#')[0];
  }

  // POST one beacon; sendBeacon where fetch is missing. A string body is sent as
  // `text/plain;charset=UTF-8` by both, a CORS-safelisted type: no preflight request.
  // Undefined arguments are left out of the JSON.
  function send(kind, event, note, pages, loadMs) {
    var reason = skipReason();
    var url = endpoint + '/' + kind;
    var body = JSON.stringify({
      domain: loc.hostname,
      page: currentPage(),
      referrer: lastPage || d.referrer,
      timezone: new Date().getTimezoneOffset(),
      platform: nav.platform,
      sess_id: tab.analytics_sess,
      pages: pages,
      load_ms: loadMs,
      event: event,
      note: note
    });
    if (DEBUG) console.log('analytics: ' + (reason ? 'not sent (' + reason + ')' : 'send'), url, body);
    if (!reason) {
      try {
        w.fetch
          ? fetch(url, { method: 'POST', keepalive: true, body: body }).catch(String)
          : nav.sendBeacon(url, body);
      } catch (e) {}
    }
  }

  // Record a pageview unless this page is the one recorded last; the first one of a document
  // carries its load time. The referrer of an SPA navigation is the page before it.
  function pageview() {
    var page = currentPage();
    var timing = performance.timing;
    if (page != lastPage) {
      send('pageview', undefined, undefined, tab.analytics_pages = ++tab.analytics_pages || 1,
        lastPage ? undefined : timing.loadEventEnd - timing.navigationStart);
      lastPage = page;
    }
  }

  // recordEvent(name, note): the original agent's API; note is optional. Both are strings
  // (the collector answers 400 to anything else).
  function recordEvent(name, note) {
    send('event', name, note);
  }

  // Calls made before we loaded were queued by the README's one-line stub: replay them.
  w.recordEvent = recordEvent;
  (queued && queued.q || []).forEach(function (args) {
    recordEvent.apply(w, args);
  });

  // Declarative events: a click on (or inside) an element with data-analytics-event.
  d.addEventListener('click', function (event) {
    var el = event.target.closest && event.target.closest('[data-analytics-event]');
    if (el) recordEvent(el.dataset.analyticsEvent, el.dataset.analyticsNote);
  }, true);

  // One poll finds every pageview: the first once the page is shown (not prerendering) and
  // loaded, then each URL change (pushState, replaceState, popstate, hash routing) without
  // wrapping history. Browsers slow it to once a second in background tabs.
  setInterval(function () {
    d.prerendering || d.readyState != 'complete' || pageview();
  }, 100);
})(window, document, navigator, location);
