// The run timeline: one lane per host, one bar per action attempt from its start to its finish,
// on a shared time axis with ticks. Bars carry their outcome as colour, pattern, icon and text;
// overlapping actions on a host stack in sub-rows. The timeline is one tab stop: arrow keys move
// between bars, and the focused or hovered bar is described in #timeline-detail.

import {collator, fmtDuration, h, parseTime, patchList, patchSlot, setAttr, setText} from './dom.js';
import {stateInfo} from './ui.js';

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
const MAX_TICKS = 8;

export function outcomeOf(action) {
  switch (action.state) {
    case 'succeeded':
    case 'failed':
    case 'abandoned':
      return action.state;
    default:
      return 'running'; // intended or running: not finished
  }
}

export function fmtOffset(seconds) {
  if (seconds === 0) {
    return '0s';
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `+${s}s`;
  }
  if (s < 3600) {
    return `+${Math.floor(s / 60)}m${s % 60 ? `${String(s % 60).padStart(2, '0')}s` : ''}`;
  }
  return `+${Math.floor(s / 3600)}h${s % 3600 ? `${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : ''}`;
}

function actionWhat(a) {
  return `${a.kind} ${a.vm || '(image)'}`;
}

export function describe(a, t0, now) {
  const start = parseTime(a.started_at);
  const end = parseTime(a.finished_at);
  const outcome = outcomeOf(a);
  const parts = [`${actionWhat(a)} on ${a.host}`];
  if (a.from_host && a.from_host !== a.host) {
    parts[0] += ` (from ${a.from_host})`;
  }
  parts.push(outcome);
  if (start !== null) {
    parts.push(`started ${fmtOffset((start - t0) / 1000)}`);
    parts.push(end !== null ? `took ${fmtDuration(end - start)}` : `running for ${fmtDuration(now - start)}`);
  }
  if (a.attempt > 1) {
    parts.push(`attempt ${a.attempt}`);
  }
  let text = parts.join(' · ');
  if (a.error) {
    text += `. Error: ${a.error}`;
  } else if (a.doing && outcome === 'running') {
    text += `. ${a.doing}`;
  }
  return text;
}

// Time range and ticks for the run.
function scale(run, actions, now) {
  const starts = actions.map((a) => parseTime(a.started_at)).filter((t) => t !== null);
  const ends = actions
    .map((a) => parseTime(a.finished_at) ?? (outcomeOf(a) === 'running' ? now : null))
    .filter((t) => t !== null);
  const t0 = Math.min(parseTime(run.started_at) ?? Infinity, ...starts);
  const runEnd = parseTime(run.finished_at) ?? (run.outcome === 'running' ? now : null);
  let t1 = Math.max(runEnd ?? -Infinity, ...ends, ...starts);
  const start = Number.isFinite(t0) ? t0 : now;
  if (!Number.isFinite(t1) || t1 - start < 1000) {
    t1 = start + 1000;
  }
  const span = (t1 - start) / 1000;
  const step = STEPS.find((s) => span / s <= MAX_TICKS) || STEPS[STEPS.length - 1];
  const ticks = [];
  for (let s = 0; s <= span + 1e-9; s += step) {
    ticks.push(s);
  }
  return {t0: start, t1, span, step, ticks};
}

// Stack overlapping bars of one lane into rows; returns row index per action id.
function pack(actions, minGapMs) {
  const rows = [];
  const place = new Map();
  const sorted = [...actions].sort((a, b) => a._start - b._start || a.id - b.id);
  for (const a of sorted) {
    let row = rows.findIndex((end) => end + minGapMs <= a._start);
    if (row < 0) {
      row = rows.length;
      rows.push(0);
    }
    rows[row] = a._end;
    place.set(a.id, row);
  }
  return {place, rows: Math.max(1, rows.length)};
}

function pct(ms, sc) {
  return ((ms - sc.t0) / (sc.t1 - sc.t0)) * 100;
}

function makeBar(a, lane) {
  const icon = h('span', {class: 'bar-icon', 'aria-hidden': 'true'});
  const label = h('span', {class: 'bar-label'});
  const bar = h(
    'div',
    {class: 'bar', role: 'listitem', tabindex: '-1', 'data-id': String(a.id)},
    icon,
    label,
  );
  bar._parts = {icon, label};
  return updateBar(bar, a, lane);
}

function updateBar(bar, a, lane) {
  const {sc, now, place} = lane;
  const outcome = outcomeOf(a);
  setAttr(bar, 'data-vm', a.vm);
  setAttr(bar, 'data-kind', a.kind);
  setAttr(bar, 'data-outcome', outcome);
  setAttr(bar, 'data-attempt', String(a.attempt || 1));
  const text = describe(a, sc.t0, now);
  setAttr(bar, 'title', text);
  setAttr(bar, 'aria-label', text);
  setText(bar._parts.icon, stateInfo(outcome === 'running' ? 'transitional' : outcome).icon);
  setText(bar._parts.label, `${actionWhat(a)}${a.attempt > 1 ? ` #${a.attempt}` : ''}`);
  const left = pct(a._start, sc);
  const width = Math.max(0, pct(a._end, sc) - left);
  bar.style.left = `${left.toFixed(3)}%`;
  bar.style.width = `${width.toFixed(3)}%`;
  bar.style.top = `${place.get(a.id) * 28 + 4}px`;
  return bar;
}

function makeLane(lane) {
  const label = h('div', {class: 'lane-label'});
  const track = h('div', {class: 'lane-track', role: 'list'});
  const el = h('div', {class: 'lane', role: 'listitem', 'data-host': lane.host}, label, track);
  el._parts = {label, track};
  return updateLane(el, lane);
}

function updateLane(el, lane) {
  const {label, track} = el._parts;
  const failed = lane.actions.filter((a) => outcomeOf(a) === 'failed').length;
  patchSlot(label, [lane.host, lane.actions.length, failed], () => [
    h('span', {class: 'lane-host', title: lane.host}, lane.host || '(no host)'),
    h(
      'span',
      {class: 'lane-count muted small'},
      `${lane.actions.length} action${lane.actions.length === 1 ? '' : 's'}`,
      failed ? h('span', {class: 'count-bad'}, ` · ✕ ${failed}`) : null,
    ),
  ]);
  setAttr(track, 'aria-label', `Actions on ${lane.host}`);
  track.style.height = `${lane.rows * 28 + 8}px`;
  track.style.setProperty('--tick', `${(lane.sc.step / lane.sc.span) * 100}%`);
  patchList(
    track,
    lane.actions,
    (a) => a.id,
    (a) => makeBar(a, lane),
    {
      update: (bar, a) => updateBar(bar, a, lane),
      sigOf: (a) => `${JSON.stringify(a)}|${lane.sig}|${lane.place.get(a.id)}`,
    },
  );
  return el;
}

// Build or patch the timeline inside `root` (a #timeline element). Returns whether anything runs.
export function renderTimeline(root, run, actions, now = Date.now()) {
  if (!root._parts) {
    const axis = h('div', {class: 'axis', 'aria-hidden': 'true'});
    const lanes = h('div', {class: 'lanes', role: 'list', 'aria-label': 'Hosts'});
    root.append(axis, lanes);
    root._parts = {axis, lanes};
    root.addEventListener('keydown', onKey);
  }
  const sc = scale(run, actions, now);
  const prepared = actions.map((a) => {
    const start = parseTime(a.started_at) ?? sc.t0;
    const end = parseTime(a.finished_at) ?? (outcomeOf(a) === 'running' ? now : start);
    return {...a, _start: start, _end: Math.max(start, end)};
  });
  const byHost = new Map();
  for (const a of prepared) {
    const list = byHost.get(a.host) || [];
    list.push(a);
    byHost.set(a.host, list);
  }
  const minGap = 0;
  const sig = `${sc.t0}|${sc.t1}|${sc.step}`;
  const lanes = [...byHost.keys()].sort(collator.compare).map((host) => {
    const list = byHost.get(host).sort((a, b) => a._start - b._start || a.id - b.id);
    const {place, rows} = pack(list, minGap);
    return {host, actions: list, place, rows, sc, now, sig};
  });
  const {axis} = root._parts;
  patchSlot(axis, sig, () => [
    h('div', {class: 'axis-label'}, 'since start'),
    h(
      'div',
      {class: 'axis-track'},
      sc.ticks.map((s) => {
        const tick = h('span', {class: s / sc.span > 0.94 && s > 0 ? 'tick tick-end' : 'tick'}, fmtOffset(s));
        tick.style.left = `${(s / sc.span) * 100}%`;
        return tick;
      }),
    ),
  ]);
  patchList(root._parts.lanes, lanes, (l) => l.host, makeLane, {
    update: updateLane,
    sigOf: (l) =>
      `${l.sig}|${l.rows}|${JSON.stringify(l.actions.map((a) => [a.id, a.state, a.finished_at, a.error, a.doing]))}`,
  });
  const bars = [...root.querySelectorAll('.bar')];
  if (bars.length > 0 && !bars.some((b) => b.tabIndex === 0)) {
    bars[0].tabIndex = 0;
  }
  return prepared.some((a) => outcomeOf(a) === 'running') || run.outcome === 'running';
}

function onKey(event) {
  const root = event.currentTarget;
  const bars = [...root.querySelectorAll('.bar')];
  const at = bars.indexOf(document.activeElement);
  if (at < 0 || bars.length === 0) {
    return;
  }
  const moves = {
    ArrowRight: at + 1,
    ArrowDown: at + 1,
    ArrowLeft: at - 1,
    ArrowUp: at - 1,
    Home: 0,
    End: bars.length - 1,
  };
  if (!(event.key in moves)) {
    return;
  }
  event.preventDefault();
  const next = bars[Math.max(0, Math.min(bars.length - 1, moves[event.key]))];
  for (const b of bars) {
    b.tabIndex = b === next ? 0 : -1;
  }
  next.focus();
}
