// The dashboard shell: sign-in, path routing (history.pushState, Back works), the view lifecycle
// and live updates (refetch the current view's endpoints and patch the DOM).

import {AuthError, HttpError, checkToken, token} from './api.js';
import {h, replaceChildren} from './dom.js';
import {LiveUpdates} from './live.js';
import overview from './view-overview.js';
import hosts from './view-hosts.js';
import vms from './view-vms.js';
import plan from './view-plan.js';
import runs from './view-runs.js';
import run from './view-run.js';
import events from './view-events.js';

const ROUTES = [
  {re: /^\/$/, view: overview},
  {re: /^\/hosts\/?$/, view: hosts},
  {re: /^\/vms\/?$/, view: vms},
  {re: /^\/plan\/?$/, view: plan},
  {re: /^\/runs\/?$/, view: runs},
  {re: /^\/runs\/(\d+)\/?$/, view: run},
  {re: /^\/events\/?$/, view: events},
];

const notFound = {
  name: 'not-found',
  nav: '',
  title: 'Not found',
  create(ctx) {
    return {
      async load() {
        replaceChildren(
          ctx.root,
          h('h1', {tabindex: '-1'}, 'Page not found'),
          h(
            'p',
            null,
            'No view lives at ',
            h('code', null, location.pathname),
            '. ',
            h('a', {href: '/'}, 'Go to the overview'),
            '.',
          ),
        );
      },
    };
  },
};

const $ = (sel) => document.querySelector(sel);
const els = {
  nav: $('#nav'),
  main: $('#view'),
  live: $('#live'),
  logout: $('#logout'),
  loginPanel: $('#login-panel'),
  loginForm: $('#login'),
  loginInput: $('#token'),
  loginError: $('#login-error'),
};

window.__flotilla = {updates: 0};

let current = null; // {view, instance, controller, alert, body}
let refreshing = false;
let refreshAgain = false;
let retryTimer = null;

const live = new LiveUpdates({
  indicator: els.live,
  onChange: () => refresh(),
  onAuthError: (err) => signOut(refusedMessage(err)),
});

function refusedMessage() {
  return 'The token was refused. Sign in again.';
}

// --- navigation -------------------------------------------------------------------------------

function matchRoute(path) {
  for (const route of ROUTES) {
    const match = route.re.exec(path);
    if (match) {
      return {view: route.view, match};
    }
  }
  return {view: notFound, match: null};
}

export function navigate(url, {replace = false} = {}) {
  if (replace) {
    history.replaceState(null, '', url);
  } else {
    history.pushState(null, '', url);
  }
  mount({focus: true});
}

// Filters and sort live in the query string, replaced (not pushed) as the user types.
function setParams(values) {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of Object.entries(values)) {
    if (value === null || value === undefined || value === '' || value === false) {
      params.delete(key);
    } else {
      params.set(key, String(value));
    }
  }
  const query = params.toString();
  const url = `${location.pathname}${query ? `?${query}` : ''}`;
  if (url !== `${location.pathname}${location.search}`) {
    history.replaceState(null, '', url);
  }
  mountedUrl = url;
}

function unmount() {
  if (!current) {
    return;
  }
  current.controller.abort();
  current.instance.destroy?.();
  current = null;
  clearTimeout(retryTimer);
}

let mountedUrl = '';

function mount({focus = false} = {}) {
  unmount();
  mountedUrl = `${location.pathname}${location.search}`;
  const {view, match} = matchRoute(location.pathname);
  const main = els.main;
  const alert = h('div', {class: 'view-alert', role: 'status', 'aria-live': 'polite'});
  const body = h('div', {class: 'view-body'});
  replaceChildren(main, alert, body);
  main.dataset.view = view.name;
  delete main.dataset.ready;
  for (const a of els.nav.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === view.nav) {
      a.setAttribute('aria-current', 'page');
    } else {
      a.removeAttribute('aria-current');
    }
  }
  document.title = `${view.title} · Flotilla`;
  const controller = new AbortController();
  const ctx = {
    root: body,
    match,
    signal: controller.signal,
    params: () => new URLSearchParams(location.search),
    setParams,
    navigate,
    reload: () => load(current, false),
    setTitle: (title) => {
      document.title = `${title} · Flotilla`;
    },
  };
  current = {view, controller, alert, body, instance: view.create(ctx)};
  if (focus) {
    main.focus({preventScroll: true});
    window.scrollTo(0, 0);
  }
  load(current, false);
}

// --- loading and live refresh -------------------------------------------------------------------

function showAlert(target, err) {
  let text;
  let level = 'error';
  if (err instanceof HttpError && err.waiting) {
    text = `Waiting for the loop: ${err.message}. This page fills in by itself.`;
    level = 'info';
  } else if (err instanceof HttpError && err.status === 0) {
    text = `${err.message} Showing what was last loaded; retrying.`;
  } else {
    text = `Could not load ${err.path || 'the data'}: ${err.message}`;
  }
  const content = h(
    'p',
    {class: `alert alert-${level}`},
    h('span', {class: 'alert-icon', 'aria-hidden': 'true'}, level === 'info' ? 'i' : '!'),
    text,
  );
  replaceChildren(target.alert, content);
}

async function load(target, isUpdate) {
  if (isUpdate) {
    performance.mark('flotilla:update-start');
  }
  try {
    await target.instance.load();
    if (target !== current) {
      return;
    }
    if (target.alert.firstChild) {
      replaceChildren(target.alert);
    }
    els.main.dataset.ready = 'true';
    if (isUpdate) {
      performance.mark('flotilla:update-end');
      window.__flotilla.updates += 1;
    }
  } catch (err) {
    if (err && err.name === 'AbortError') {
      return;
    }
    if (err instanceof AuthError) {
      signOut(refusedMessage(err));
      return;
    }
    if (target !== current) {
      return;
    }
    if (!(err instanceof HttpError)) {
      throw err; // a bug: let it surface
    }
    showAlert(target, err);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => refresh(), err.waiting ? 3000 : 5000);
  }
}

// A change refetches the current view's endpoints once; changes that arrive meanwhile collapse
// into one more refresh, and refreshes start at most every MIN_REFRESH_GAP_MS (a rollout records
// progress many times a second; the page need not refetch 10,000 VMs that often).
const MIN_REFRESH_GAP_MS = 700;
let lastRefresh = -Infinity;
let refreshTimer = null;

function refresh() {
  if (!current) {
    return;
  }
  if (refreshTimer) {
    return; // a refresh is already due
  }
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  const wait = lastRefresh + MIN_REFRESH_GAP_MS - performance.now();
  if (wait > 0) {
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, wait);
    return;
  }
  refreshing = true;
  lastRefresh = performance.now();
  load(current, true).finally(() => {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      refresh();
    }
  });
}

// --- sign-in --------------------------------------------------------------------------------

function showLogin(message = '') {
  els.nav.hidden = true;
  els.main.hidden = true;
  els.logout.hidden = true;
  els.loginPanel.hidden = false;
  els.loginError.textContent = message;
  els.loginError.hidden = !message;
  document.title = 'Sign in · Flotilla';
  els.loginInput.focus();
}

function signOut(message) {
  token.clear();
  live.stop();
  unmount();
  replaceChildren(els.main);
  delete els.main.dataset.ready;
  showLogin(message);
}

async function startApp() {
  els.loginPanel.hidden = true;
  els.nav.hidden = false;
  els.main.hidden = false;
  els.logout.hidden = false;
  try {
    await live.baseline();
  } catch (err) {
    signOut(refusedMessage(err));
    return;
  }
  mount();
  live.start();
}

els.loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const value = els.loginInput.value.trim();
  const button = els.loginForm.querySelector('button[type=submit]');
  if (!value) {
    showLogin('Enter the API token.');
    return;
  }
  button.disabled = true;
  try {
    if (!(await checkToken(value))) {
      showLogin('The token was refused.');
      els.loginInput.select();
      return;
    }
    token.set(value);
    els.loginInput.value = '';
    startApp();
  } catch (err) {
    showLogin(err.message);
  } finally {
    button.disabled = false;
  }
});

els.logout.addEventListener('click', () => signOut('Signed out.'));

// --- links ------------------------------------------------------------------------------------

document.addEventListener('click', (event) => {
  if (
    event.defaultPrevented ||
    event.button !== 0 ||
    event.metaKey ||
    event.ctrlKey ||
    event.shiftKey ||
    event.altKey
  ) {
    return;
  }
  const a = event.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) {
    return;
  }
  if (a.getAttribute('href') === '#view') {
    // the skip link: move focus, keep the URL
    event.preventDefault();
    els.main.focus();
    return;
  }
  if (a.pathname.startsWith('/api/') || a.pathname.startsWith('/assets/') || a.hash) {
    return;
  }
  event.preventDefault();
  if (els.main.hidden) {
    return;
  }
  if (a.pathname === location.pathname && a.search === location.search) {
    refresh();
    return;
  }
  navigate(a.pathname + a.search);
});

window.addEventListener('popstate', () => {
  // Back/Forward between views (or filters of one view); a change of the #fragment alone is not.
  if (!els.main.hidden && `${location.pathname}${location.search}` !== mountedUrl) {
    mount();
  }
});

// --- boot -------------------------------------------------------------------------------------

function boot() {
  // `flotilla dev` prints a URL with #token=...: keep the token in this tab, drop it from the URL.
  if (location.hash.length > 1) {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const handed = fragment.get('token');
    if (handed) {
      token.set(handed.trim());
      history.replaceState(null, '', location.pathname + location.search);
    }
  }
  if (token.get()) {
    startApp();
  } else {
    showLogin();
  }
}

boot();
