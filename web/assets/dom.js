// Tiny DOM helpers. Everything that comes from the fleet (VM names, commit subjects, error text)
// goes through textContent or setAttribute: never through innerHTML.

function applyAttrs(el, attrs) {
  if (!attrs) {
    return;
  }
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key === 'class') {
      el.setAttribute('class', value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) {
        if (v !== null && v !== undefined) {
          el.dataset[k] = String(v);
        }
      }
    } else if (key === 'style') {
      Object.assign(el.style, value); // CSSOM, allowed by the CSP (no style attribute text)
    } else if (key.startsWith('on')) {
      if (typeof value !== 'function') {
        throw new TypeError(`h(): ${key} must be a function`);
      }
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    if (Array.isArray(child)) {
      appendChildren(el, child);
    } else {
      el.append(child instanceof Node ? child : String(child)); // strings become text nodes
    }
  }
}

// h('a', {href: '/x', class: 'y'}, 'text', otherNode, [more])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

// Setters that leave the DOM alone when nothing changes, so an unchanged row stays untouched.
export function setText(el, text) {
  const value = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== value) {
    el.textContent = value;
  }
}

export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) {
      el.removeAttribute(name);
    }
    return;
  }
  const text = value === true ? '' : String(value);
  if (el.getAttribute(name) !== text) {
    el.setAttribute(name, text);
  }
}

export function clear(el) {
  while (el.firstChild) {
    el.firstChild.remove();
  }
}

export function replaceChildren(el, ...children) {
  clear(el);
  appendChildren(el, children);
}

// A region rebuilt only when its signature changes: slot(container, key, sig, build).
const slotSigs = new WeakMap();
export function patchSlot(el, sig, build) {
  const key = typeof sig === 'string' ? sig : JSON.stringify(sig);
  if (slotSigs.get(el) === key) {
    return false;
  }
  slotSigs.set(el, key);
  const content = build();
  replaceChildren(el, content);
  return true;
}

// Keyed list: the children of `parent` that patchList manages follow `items`' order; an item whose
// signature did not change keeps its element untouched; a changed one is rebuilt (or updated by
// `update(el, item)` when given, which may return a replacement element).
const lists = new WeakMap();
export function patchList(parent, items, keyOf, make, {update = null, sigOf = JSON.stringify} = {}) {
  let known = lists.get(parent);
  if (!known) {
    known = new Map();
    lists.set(parent, known);
  }
  const next = new Map();
  const els = [];
  for (const item of items) {
    const key = String(keyOf(item));
    if (next.has(key)) {
      continue; // a duplicate key: the first one wins
    }
    const sig = sigOf(item);
    const old = known.get(key);
    let el;
    if (!old) {
      el = make(item);
    } else if (old.sig !== sig) {
      el = update ? update(old.el, item) || old.el : make(item);
      if (el !== old.el) {
        old.el.replaceWith(el);
      }
    } else {
      el = old.el;
    }
    next.set(key, {el, sig});
    els.push(el);
  }
  for (const [key, old] of known) {
    if (!next.has(key)) {
      old.el.remove();
    }
  }
  // Order: walk the wanted elements and move only those out of place.
  const managed = new Set(els);
  let cursor = parent.firstChild;
  for (const el of els) {
    while (cursor && cursor !== el && !managed.has(cursor)) {
      cursor = cursor.nextSibling;
    }
    if (cursor === el) {
      cursor = cursor.nextSibling;
    } else {
      parent.insertBefore(el, cursor);
    }
  }
  lists.set(parent, next);
  return els;
}

// --- formatting -------------------------------------------------------------------------------

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) {
    return '—';
  }
  let value = Number(bytes);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value >= 100 || unit === 0 || Number.isInteger(value) ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) {
    return '—';
  }
  // The API's times are whole seconds: no false precision below that.
  if (ms < 1000) {
    return 'under 1 s';
  }
  const s = ms / 1000;
  if (s < 60) {
    return `${Math.round(s)} s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m}m ${String(Math.round(s % 60)).padStart(2, '0')}s`;
  }
  const hrs = Math.floor(m / 60);
  if (hrs < 48) {
    return `${hrs}h ${String(m % 60).padStart(2, '0')}m`;
  }
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function parseTime(text) {
  if (!text) {
    return null;
  }
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : t;
}

export function fmtAgo(text, now = Date.now()) {
  const t = parseTime(text);
  if (t === null) {
    return 'never';
  }
  const s = Math.round((now - t) / 1000);
  if (s < 5) {
    return 'just now';
  }
  if (s < 0) {
    return 'in the future';
  }
  if (s < 60) {
    return `${s} s ago`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ago`;
  }
  if (s < 86400 * 2) {
    return `${Math.floor(s / 3600)} h ago`;
  }
  return `${Math.floor(s / 86400)} days ago`;
}

const pad = (n) => String(n).padStart(2, '0');
export function fmtTime(text) {
  const t = parseTime(text);
  if (t === null) {
    return '—';
  }
  const d = new Date(t);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

// <time> with the local time as text and the UTC instant as datetime/title.
export function timeEl(text, {ago = false} = {}) {
  if (!text) {
    return h('span', {class: 'muted'}, '—');
  }
  return h('time', {datetime: text, title: `${fmtTime(text)} (${text})`}, ago ? fmtAgo(text) : fmtTime(text));
}

export function shortSha(sha) {
  return sha ? String(sha).slice(0, 7) : '';
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// Case-insensitive natural order ("vm-2" before "vm-10").
export const collator = new Intl.Collator(undefined, {numeric: true, sensitivity: 'base'});
