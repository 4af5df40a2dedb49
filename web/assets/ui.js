// Shared widgets: state chips (icon + text, never colour alone), capacity meters, small bits.

import {fmtBytes, h} from './dom.js';

// icon, tone (colour family) per state name; the text always says the state as well.
const STATES = {
  // VMs
  running: ['▶', 'ok'],
  stopped: ['■', 'neutral'],
  suspended: ['❚❚', 'warn'],
  paused: ['❚❚', 'warn'],
  transitional: ['↻', 'info'],
  invalid: ['✕', 'bad'],
  unknown: ['?', 'muted'],
  // hosts
  online: ['✓', 'ok'],
  degraded: ['!', 'warn'],
  offline: ['✕', 'bad'],
  cordoned: ['⊘', 'warn'],
  // runs and actions
  succeeded: ['✓', 'ok'],
  partial: ['◐', 'warn'],
  failed: ['✕', 'bad'],
  cancelled: ['⊘', 'muted'],
  abandoned: ['⊘', 'warn'],
  intended: ['…', 'info'],
  // event levels
  info: ['i', 'info'],
  warn: ['!', 'warn'],
  error: ['✕', 'bad'],
  // plan actions
  create: ['+', 'ok'],
  replace: ['⇄', 'info'],
  delete: ['−', 'bad'],
  start: ['▶', 'ok'],
  stop: ['■', 'neutral'],
  prepull: ['↓', 'info'],
  adopt: ['⤓', 'info'],
  // findings
  unschedulable: ['⚠', 'bad'],
  conflict: ['≠', 'bad'],
  deferred: ['‖', 'warn'],
  refused: ['⊗', 'bad'],
  waiting: ['◷', 'warn'],
  drift: ['~', 'warn'],
  outdated: ['↑', 'warn'],
  // misc
  unmanaged: ['○', 'muted'],
  yes: ['✓', 'ok'],
  no: ['–', 'muted'],
};

export function stateInfo(state) {
  const [icon, tone] = STATES[state] || ['•', 'muted'];
  return {icon, tone};
}

// A chip: icon + text; data-state for the tests and the stylesheet, the tone for the colour.
export function chip(state, {label = state, title = null, cls = ''} = {}) {
  const {icon, tone} = stateInfo(state);
  return h(
    'span',
    {class: `chip ${cls}`.trim(), 'data-state': state, 'data-tone': tone, title},
    h('span', {class: 'chip-icon', 'aria-hidden': 'true'}, icon),
    h('span', {class: 'chip-text'}, label || '—'),
  );
}

export function badge(text, {tone = 'muted', title = null, cls = ''} = {}) {
  return h('span', {class: `badge ${cls}`.trim(), 'data-tone': tone, title}, text);
}

const KINDS = {
  cpu: {label: 'CPU', fmt: (v) => `${trim(v)}`, unit: (v) => (v === 1 ? 'core' : 'cores')},
  memory: {label: 'Memory', fmt: fmtBytes, unit: () => ''},
  disk: {label: 'Disk', fmt: fmtBytes, unit: () => ''},
  vms: {label: 'VMs', fmt: (v) => `${trim(v)}`, unit: () => ''},
  macos: {label: 'macOS VMs', fmt: (v) => `${trim(v)}`, unit: () => ''},
};

function trim(v) {
  return Number.isInteger(v) ? String(v) : Number(v).toFixed(1);
}

// A capacity meter: role=meter with numbers for assistive tech, the values in text beside it,
// and a fill whose pattern changes when the resource is nearly full (not only its colour).
export function meter(kind, used, total, {label = null, note = ''} = {}) {
  const k = KINDS[kind];
  const name = label || k.label;
  const known = Number.isFinite(used) && Number.isFinite(total) && total > 0;
  const ratio = known ? Math.min(1, Math.max(0, used / total)) : 0;
  const pct = Math.round(ratio * 100);
  // A count cap (VMs per host, macOS slots) that is reached is a fact, not an alarm.
  const cap = kind === 'vms' || kind === 'macos';
  const level = !known ? 'none' : ratio >= 0.9 && !cap ? 'full' : ratio >= 0.7 ? 'high' : 'ok';
  const unit = k.unit(total);
  const valueText = known
    ? `${k.fmt(used)} of ${k.fmt(total)}${unit ? ` ${unit}` : ''} used (${pct}%)${note ? `, ${note}` : ''}`
    : 'not reported';
  const fill = h('span', {class: 'bar-fill'});
  fill.style.width = `${pct}%`;
  const bar = h(
    'span',
    {
      class: 'bar',
      role: 'meter',
      'aria-label': name,
      'aria-valuemin': '0',
      'aria-valuemax': known ? String(total) : '0',
      'aria-valuenow': known ? String(Math.min(used, total)) : '0',
      'aria-valuetext': valueText,
      'data-kind': kind,
      'data-level': level,
      title: `${name}: ${valueText}`,
    },
    fill,
  );
  return h(
    'div',
    {class: 'meter'},
    h('span', {class: 'meter-label'}, name),
    bar,
    h(
      'span',
      {class: 'meter-value'},
      known ? `${k.fmt(used)} / ${k.fmt(total)}` : '—',
      known ? h('span', {class: 'meter-pct'}, ` ${pct}%`) : null,
      level === 'full' ? h('span', {class: 'meter-flag', title: 'nearly full'}, ' ⚠') : null,
    ),
  );
}

export function emptyState(text, extra = null) {
  return h('div', {class: 'empty'}, h('p', null, text), extra);
}

// Labelled <select> from [value, text] pairs.
export function selectField(id, label, options, value, onChange) {
  const select = h(
    'select',
    {id, onchange: (e) => onChange(e.target.value)},
    options.map(([v, text]) => h('option', {value: v, selected: v === value}, text)),
  );
  return h('label', {class: 'field', for: id}, h('span', {class: 'field-label'}, label), select);
}

// Labelled text input that calls onInput (debounced) as the user types.
export function searchField(id, label, value, onInput, {placeholder = '', delay = 120} = {}) {
  let timer = null;
  const input = h('input', {
    id,
    type: 'search',
    value,
    placeholder,
    autocomplete: 'off',
    spellcheck: 'false',
    oninput: (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => onInput(e.target.value), delay);
    },
  });
  return h('label', {class: 'field field-grow', for: id}, h('span', {class: 'field-label'}, label), input);
}

// Keep a <select>'s options in step with the data without rebuilding it while it is open.
const selectOptions = new WeakMap();
export function syncOptions(select, options, value) {
  const want = JSON.stringify(options);
  if (selectOptions.get(select) !== want) {
    selectOptions.set(select, want);
    select.replaceChildren(...options.map(([v, text]) => h('option', {value: v}, text)));
  }
  if (select.value !== value) {
    select.value = value;
  }
}

export function viewHeader(title, ...extra) {
  return h('div', {class: 'view-head'}, h('h1', null, title), ...extra);
}

// macOS guests a Mac host runs of Apple's 2 per Mac: {used, max} or null when not a Mac host.
export function macosSlots(host) {
  const m = host ? host.macos_vms : null;
  if (m === null || m === undefined) {
    return null;
  }
  if (typeof m === 'number') {
    return {used: m, max: Number.isFinite(host.macos_vms_max) ? host.macos_vms_max : 2};
  }
  if (typeof m === 'object') {
    const used = m.running ?? m.used ?? m.count ?? 0;
    const max = m.max ?? m.limit ?? m.slots ?? 2;
    return {used, max};
  }
  return null;
}

// Capacity meters for {total, available} resources (null: not observed).
export function resourceMeters(resources, {slots = null, vms = null} = {}) {
  const out = [];
  if (resources && resources.total) {
    const t = resources.total;
    const a = resources.available || {};
    out.push(meter('cpu', t.cpu - (a.cpu ?? t.cpu), t.cpu));
    out.push(meter('memory', t.memory_bytes - (a.memory_bytes ?? t.memory_bytes), t.memory_bytes));
    if (t.disk_bytes > 0) {
      out.push(meter('disk', t.disk_bytes - (a.disk_bytes ?? t.disk_bytes), t.disk_bytes));
    }
  }
  if (vms) {
    out.push(meter('vms', vms.used, vms.max));
  }
  if (slots) {
    out.push(meter('macos', slots.used, slots.max, {note: 'Apple allows 2 running macOS VMs per Mac'}));
  }
  return out;
}
