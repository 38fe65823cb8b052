// Privacy-sensitive analytics agent: pageviews, SPA navigation and recordEvent, no cookies.
// Readable source; `npm run build` minifies it (budget: 850 bytes gzip -9). ES2015 at most.
// DEBUG is replaced at build time: false in agent.min.js, true in agent.debug.js (which logs
// why a beacon was not sent); reason texts exist only in the debug build.
// EXTRAS is replaced at build time too: true in agent.extras.js (budget 1,100 bytes) and the debug
// build, which then read data-outbound, data-downloads and data-engagement; false in agent.min.js,
// whose minifier drops that code, so sites that do not use them never download it.
/* global DEBUG, EXTRAS */
(function (w, d, nav, loc) {
  var script = d.currentScript;
  var options = script.dataset;
  var endpoint = options.endpoint || script.src.replace(/\/[^/]*$/, '');
  var hashRouting = 'hash' in options, view;
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

  // POST one beacon. A string body is sent as `text/plain;charset=UTF-8`, a CORS-safelisted type:
  // no preflight request. `fields` adds to (or replaces) the common ones; undefined values are
  // left out of the JSON. keepalive lets the request outlive the page: a beacon sent on a click
  // that leaves the site, or on pagehide, still arrives, and the click is never delayed. (Every
  // browser with Object.assign has fetch; fetch never throws, it rejects, hence catch.)
  function send(kind, fields) {
    var reason = skipReason();
    var url = endpoint + '/' + kind;
    var body = JSON.stringify(Object.assign({
      domain: loc.hostname,
      page: currentPage(),
      referrer: lastPage || d.referrer,
      timezone: new Date().getTimezoneOffset(),
      platform: nav.platform,
      sess_id: tab.analytics_sess
    }, fields));
    if (DEBUG) console.log('analytics: ' + (reason ? 'not sent (' + reason + ')' : 'send'), url, body);
    if (!reason) fetch(url, { method: 'POST', keepalive: true, body: body }).catch(String);
  }

  // Record a pageview unless this page is the one recorded last; the first one of a document
  // carries its load time. The referrer of an SPA navigation is the page before it.
  function pageview() {
    var page = currentPage();
    var timing = performance.timing;
    if (page != lastPage) {
      // A new page first sends the engaged time of the one it replaces, then starts its own.
      if (EXTRAS) engagement(), ticks = sentSeconds = 0;
      send('pageview', {
        pages: view = tab.analytics_pages = ++tab.analytics_pages || 1,
        load_ms: lastPage ? undefined : timing.loadEventEnd - timing.navigationStart
      });
      lastPage = page;
    }
  }

  // recordEvent(name, note): the original agent's API; note is optional. Both are strings
  // (the collector answers 400 to anything else).
  function recordEvent(name, note) {
    send('event', { event: name, note: note });
  }

  // Calls made before we loaded were queued by the README's one-line stub: replay them.
  w.recordEvent = recordEvent;
  (queued && queued.q || []).forEach(function (args) {
    recordEvent.apply(w, args);
  });

  // Declarative events: a click on (or inside) an element with data-analytics-event.
  // With the extras, also outbound links and downloads: a left click, a middle click (auxclick)
  // or Enter on a link (a click too) sends the link's host and path, never its query or fragment
  // (the collector keeps a download's path alone when it is on the site's own host). Links
  // without a host (mailto:, tel:, javascript:) are not counted.
  function onClick(event) {
    var target = event.target, el = target.closest && target.closest('[data-analytics-event]');
    if (el) recordEvent(el.dataset.analyticsEvent, el.dataset.analyticsNote);
    if (EXTRAS) {
      let link = target.closest && target.closest('a[href]') || {}, host = link.hostname, url = host + link.pathname;
      let name = 'downloads' in options && fileTypes.test(url) ? 'download'
        : host != loc.hostname && 'outbound' in options && 'outbound';
      if (host && name && event.button < 2) recordEvent(name, url);
    }
  }
  d.addEventListener('click', onClick, true);

  if (EXTRAS) {
    // The default list, or data-downloads="pdf,zip".
    var fileTypes = RegExp('\\.(' + (options.downloads || 'pdf,zip,gz,7z,dmg,exe,msi,apk,csv,xlsx?,docx?,'
      + 'pptx?,mp[34]').replace(/,/g, '|') + ')$', 'i');
    d.addEventListener('auxclick', onClick, true);

    // Engaged time: tenths of a second the page was visible, counted by the 100 ms poll below
    // (which does not run while the page is hidden, frozen or in the back/forward cache, and is
    // not slowed while it is visible). It is sent when the page is hidden or left
    // (visibilitychange, which browsers fire before pagehide, and pagehide: both bfcache-safe,
    // unlike unload) or an SPA navigation replaces the page: never while it is open and visible.
    // Each send carries the pageview's running total in whole seconds (the collector caps it at
    // an hour) and the pageview's number in the session, so a page hidden and shown again sends a
    // larger total and the rollups keep the last one per pageview.
    var ticks = 0, sentSeconds = 0;
    var engagement = function () {
      let seconds = Math.round(ticks / 10);
      if ('engagement' in options && lastPage && seconds > sentSeconds) {
        send('event', { event: 'engagement', page: lastPage, pages: view, engaged: sentSeconds = seconds });
      }
    };
    d.addEventListener('visibilitychange', engagement);
    w.addEventListener('pagehide', engagement);
  }

  // One poll finds every pageview: the first once the page is shown (not prerendering) and
  // loaded, then each URL change (pushState, replaceState, popstate, hash routing) without
  // wrapping history. Browsers slow it to once a second in background tabs.
  setInterval(function () {
    if (EXTRAS && !d.hidden) ticks++; // engaged time (see above)
    d.prerendering || d.readyState != 'complete' || pageview();
  }, 100);
})(window, document, navigator, location);
