// VMs: a sortable, filterable table that stays fast at 10,000 rows. Only the rows in sight are in
// the DOM (fixed row height, spacer rows above and below); rows are cached by VM name and a live
// update touches only the cells whose values changed. Filter and sort live in the URL
// (/vms?q=host:mac-01%20state:stopped&sort=-cpu).

import {getJson} from './api.js';
import {fmtBytes, h, setAttr, setText} from './dom.js';
import {badge, chip, emptyState, searchField, viewHeader} from './ui.js';

const ROW_H = 32; // px; keep in step with #vm-table tbody tr in app.css
const OVERSCAN = 10;
const CACHE_MAX = 4000;

const COLS = [
  {col: 'name', label: 'Name', get: (v) => v.name},
  {col: 'state', label: 'State', get: (v) => v.state},
  {col: 'vmset', label: 'Set', get: (v) => v.vmset},
  {col: 'pool', label: 'Pool', get: (v) => v.pool},
  {col: 'host', label: 'Host', get: (v) => v.host},
  {col: 'managed', label: 'Managed', get: (v) => (v.managed ? 1 : 0), num: true},
  {col: 'cpu', label: 'CPU', get: (v) => v.cpu, num: true},
  {col: 'memory', label: 'Memory', get: (v) => v.memory_bytes, num: true},
  {col: 'ip', label: 'IP', get: (v) => v.ip},
  {col: 'template', label: 'Template', get: (v) => v.template_hash},
  {
    col: 'outdated',
    label: 'Outdated',
    get: (v) => (v.outdated === true ? 2 : v.outdated === false ? 1 : 0),
    num: true,
  },
  {col: 'ssh', label: 'SSH', get: (v) => (v.state === 'running' ? 1 : 0), num: true},
];
const BY_COL = new Map(COLS.map((c) => [c.col, c]));
const FIELDS = [
  'name',
  'vmset',
  'pool',
  'host',
  'state',
  'managed',
  'cpu',
  'memory_bytes',
  'ip',
  'template_hash',
  'outdated',
  'os',
  'host_state',
];

const TOKEN_KEYS = {
  name: 'name',
  set: 'vmset',
  vmset: 'vmset',
  pool: 'pool',
  host: 'host',
  state: 'state',
  ip: 'ip',
  os: 'os',
  template: 'template_hash',
  managed: 'managed',
  outdated: 'outdated',
};
const YES = new Set(['yes', 'true', '1', 'y']);
const NO = new Set(['no', 'false', '0', 'n']);

// "web host:mac-01 managed:no" -> predicate
function compileFilter(text) {
  const tests = [];
  for (const term of text.toLowerCase().split(/\s+/).filter(Boolean)) {
    const colon = term.indexOf(':');
    const key = colon > 0 ? TOKEN_KEYS[term.slice(0, colon)] : undefined;
    const value = key ? term.slice(colon + 1) : term;
    if (key === 'managed' || key === 'outdated') {
      const want = YES.has(value) ? true : NO.has(value) ? false : null;
      tests.push((v) => (want === null ? v[key] === null || v[key] === undefined : v[key] === want));
    } else if (key) {
      tests.push((v) =>
        String(v[key] ?? '')
          .toLowerCase()
          .includes(value),
      );
    } else {
      tests.push((v) => haystack(v).includes(value));
    }
  }
  return tests.length === 0 ? null : (v) => tests.every((t) => t(v));
}

const hay = new WeakMap();
function haystack(v) {
  let s = hay.get(v);
  if (s === undefined) {
    s = [v.name, v.vmset, v.pool, v.host, v.state, v.ip, v.os, v.managed ? '' : 'unmanaged']
      .join('\u0001')
      .toLowerCase();
    hay.set(v, s);
  }
  return s;
}

// Natural, case-insensitive sort keys ("vm-2" < "vm-10"): digit runs padded, cached per object
// (objects are reused while a VM is unchanged), so sorting 10,000 rows compares plain strings.
const sortKeys = new WeakMap();
function sortKey(v, col) {
  let keys = sortKeys.get(v);
  if (!keys) {
    keys = {};
    sortKeys.set(v, keys);
  }
  let key = keys[col.col];
  if (key === undefined) {
    const raw = col.get(v);
    key = col.num
      ? Number(raw) || 0
      : String(raw ?? '')
          .toLowerCase()
          .replace(/\d+/g, (d) => d.padStart(12, '0'));
    keys[col.col] = key;
  }
  return key;
}

function parseSort(text) {
  const desc = text.startsWith('-');
  const col = desc ? text.slice(1) : text;
  return BY_COL.has(col) ? {col, desc} : {col: 'name', desc: false};
}

function sameVm(a, b) {
  for (const f of FIELDS) {
    if (a[f] !== b[f]) {
      return false;
    }
  }
  return true;
}

// --- cells --------------------------------------------------------------------------------------

function dash() {
  return h('span', {class: 'muted'}, '—');
}

// A word as the shell reads it: quoted unless it is plain.
function shellWord(text) {
  return /^[A-Za-z0-9._@%+=:,/-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

// The command line that logs in to `v` through this loop (docs/api.md, "Tunnels"); it needs a
// token with the access role, from --token-file or FLOTILLA_TOKEN.
function sshCommand(v) {
  return `flotilla ssh --server ${shellWord(location.origin)} ${shellWord(v.name)}`;
}

function copyButton(v) {
  const command = sshCommand(v);
  const button = h(
    'button',
    {
      type: 'button',
      class: 'copy-ssh',
      dataset: {command},
      title: `Copy: ${command}`,
      'aria-label': `Copy the command line that logs in to ${v.name}`,
    },
    'copy',
  );
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(command);
      setText(button, 'copied');
    } catch {
      // No clipboard (an http page that is not loopback): the command is in the title to copy.
      setText(button, 'see title');
    }
    setTimeout(() => setText(button, 'copy'), 1500);
  });
  return button;
}

const CELL = {
  name: (v) =>
    h(
      'div',
      {class: 'cell-flex'},
      h('span', {class: 'cell-text'}, v.name),
      v.managed
        ? null
        : badge('unmanaged', {cls: 'unmanaged', title: 'Not managed by Flotilla: it is left alone'}),
    ),
  vmset: (v) => (v.vmset ? v.vmset : dash()),
  pool: (v) => v.pool,
  host: (v) =>
    h(
      'div',
      {class: 'cell-flex'},
      h('span', {class: 'cell-text'}, v.host),
      v.host_state && v.host_state !== 'online' && v.host_state !== 'degraded'
        ? badge(v.host_state, {
            tone: 'bad',
            title: `The host is ${v.host_state}: the VM is shown as last seen`,
          })
        : null,
    ),
  state: (v) => chip(v.state),
  managed: (v) => (v.managed ? 'yes' : 'no'),
  cpu: (v) => String(v.cpu),
  memory: (v) => fmtBytes(v.memory_bytes),
  ip: (v) => (v.ip ? v.ip : dash()),
  template: (v) => (v.template_hash ? h('code', null, v.template_hash.slice(0, 8)) : dash()),
  outdated: (v) =>
    v.outdated === true
      ? chip('outdated', {label: 'yes', title: 'The template changed: a replace is due'})
      : v.outdated === false
        ? 'no'
        : dash(),
  ssh: (v) => (v.state === 'running' ? copyButton(v) : dash()),
};
const CELL_FIELDS = {
  name: ['name', 'managed'],
  host: ['host', 'host_state'],
  memory: ['memory_bytes'],
  template: ['template_hash'],
  ssh: ['name', 'state'],
};

function makeRow(v) {
  const tr = document.createElement('tr');
  tr.dataset.vm = v.name;
  const cells = COLS.map((c) => {
    const td = document.createElement('td');
    td.dataset.col = c.col;
    return td;
  });
  tr.append(...cells);
  tr._cells = cells;
  fillRow(tr, v, null);
  return tr;
}

function fillRow(tr, v, old) {
  setAttr(tr, 'data-managed', v.managed ? 'true' : 'false');
  setAttr(tr, 'data-state', v.state);
  setAttr(tr, 'data-outdated', v.outdated === true ? 'true' : v.outdated === false ? 'false' : null);
  COLS.forEach((c, i) => {
    const fields = CELL_FIELDS[c.col] || [c.col];
    if (old && fields.every((f) => old[f] === v[f])) {
      return;
    }
    const td = tr._cells[i];
    td.replaceChildren();
    const content = CELL[c.col](v);
    for (const part of [content].flat()) {
      if (part !== null && part !== undefined) {
        td.append(part);
      }
    }
    if (c.col === 'name' || c.col === 'host' || c.col === 'template') {
      setAttr(td, 'title', c.col === 'template' ? v.template_hash || null : v[c.col]);
    }
  });
}

// --- view -----------------------------------------------------------------------------------------

export default {
  name: 'vms',
  nav: 'vms',
  title: 'VMs',
  create(ctx) {
    const params = ctx.params();
    let query = params.get('q') || '';
    let sort = parseSort(params.get('sort') || 'name');
    let all = []; // normalised VMs, objects reused while unchanged
    let rows = []; // filtered and sorted
    let usePlan = null; // null: unknown yet; true: the API has no `outdated`, derive it
    let interactive = false;
    const cache = new Map(); // name -> {tr, v}
    let frame = 0;

    const count = h('p', {class: 'muted view-sub', id: 'vm-count', 'aria-live': 'polite'}, 'Loading…');
    const heads = COLS.map((c) =>
      h(
        'th',
        {scope: 'col', 'data-sort': c.col, 'data-col': c.col, class: c.num ? 'num' : null},
        h(
          'button',
          {type: 'button', class: 'sort', onclick: () => sortBy(c.col)},
          h('span', null, c.label),
          h('span', {class: 'sort-icon', 'aria-hidden': 'true'}),
        ),
      ),
    );
    const spacerTop = h(
      'tr',
      {class: 'spacer', 'aria-hidden': 'true', hidden: true},
      h('td', {colspan: String(COLS.length)}),
    );
    const spacerBottom = h(
      'tr',
      {class: 'spacer', 'aria-hidden': 'true', hidden: true},
      h('td', {colspan: String(COLS.length)}),
    );
    const tbody = h('tbody', null, spacerTop, spacerBottom);
    const table = h(
      'table',
      {id: 'vm-table', class: 'data vm-table', 'aria-describedby': 'vm-count'},
      h('caption', {class: 'visually-hidden'}, 'VMs on the hosts; only the rows in sight are rendered'),
      h(
        'colgroup',
        null,
        COLS.map((c) => h('col', {class: `col-${c.col}`})),
      ),
      h('thead', null, h('tr', null, heads)),
      tbody,
    );
    const scroller = h(
      'div',
      {class: 'table-scroll vm-scroll', tabindex: '0', role: 'region', 'aria-label': 'VM table'},
      table,
    );
    const empty = h('div', {class: 'vm-empty', hidden: true});
    const filter = searchField(
      'vm-filter',
      'Filter',
      query,
      (value) => {
        query = value;
        ctx.setParams({q: value.trim() || null});
        recompute(true);
      },
      {placeholder: 'name, host:mac-01, state:stopped, managed:no, outdated:yes', delay: 80},
    );
    ctx.root.append(
      viewHeader('VMs', count),
      h(
        'form',
        {class: 'toolbar', role: 'search', onsubmit: (e) => e.preventDefault()},
        filter,
        h(
          'p',
          {class: 'hint muted small'},
          'Words match any column; ',
          h('code', null, 'key:value'),
          ' matches one (name, set, pool, host, state, ip, os, template, managed, outdated).',
        ),
      ),
      scroller,
      empty,
    );

    const onScroll = () => {
      if (!frame) {
        frame = requestAnimationFrame(() => {
          frame = 0;
          renderWindow();
        });
      }
    };
    scroller.addEventListener('scroll', onScroll, {passive: true});
    window.addEventListener('resize', onScroll);

    function sortBy(col) {
      sort = sort.col === col ? {col, desc: !sort.desc} : {col, desc: false};
      ctx.setParams({sort: sort.col === 'name' && !sort.desc ? null : `${sort.desc ? '-' : ''}${sort.col}`});
      recompute(true);
    }

    function paintHeads() {
      for (const th of heads) {
        const on = th.dataset.sort === sort.col;
        setAttr(th, 'aria-sort', on ? (sort.desc ? 'descending' : 'ascending') : 'none');
        setText(th.querySelector('.sort-icon'), on ? (sort.desc ? '▼' : '▲') : '↕');
      }
    }

    function recompute(resetScroll) {
      const test = compileFilter(query);
      const list = test ? all.filter(test) : all.slice();
      const c = BY_COL.get(sort.col);
      const dir = sort.desc ? -1 : 1;
      const byName = BY_COL.get('name');
      list.sort((a, b) => {
        const x = sortKey(a, c);
        const y = sortKey(b, c);
        if (x !== y) {
          return (x < y ? -1 : 1) * dir;
        }
        const m = sortKey(a, byName);
        const n = sortKey(b, byName);
        return m < n ? -1 : m > n ? 1 : 0;
      });
      rows = list;
      paintHeads();
      setAttr(table, 'aria-rowcount', String(rows.length + 1));
      setText(
        count,
        rows.length === all.length ? `${all.length} VMs` : `${rows.length} of ${all.length} VMs`,
      );
      empty.hidden = rows.length > 0;
      if (rows.length === 0) {
        empty.replaceChildren(
          emptyState(all.length === 0 ? 'No VMs on the hosts yet.' : 'No VM matches the filter.'),
        );
      }
      if (resetScroll) {
        scroller.scrollTop = 0;
      }
      renderWindow();
    }

    function rowFor(v) {
      const entry = cache.get(v.name);
      if (!entry) {
        const tr = makeRow(v);
        cache.set(v.name, {tr, v});
        return tr;
      }
      if (entry.v !== v) {
        fillRow(entry.tr, v, entry.v);
        entry.v = v;
      }
      return entry.tr;
    }

    function renderWindow() {
      const total = rows.length;
      const view = scroller.clientHeight || 600;
      const head = table.tHead ? table.tHead.offsetHeight : ROW_H;
      const top = Math.max(0, scroller.scrollTop - head);
      const start = Math.max(0, Math.min(total, Math.floor(top / ROW_H) - OVERSCAN));
      const end = Math.min(total, Math.ceil((top + view) / ROW_H) + OVERSCAN);
      const wanted = [];
      for (let i = start; i < end; i += 1) {
        const tr = rowFor(rows[i]);
        setAttr(tr, 'aria-rowindex', String(i + 2));
        wanted.push(tr);
      }
      const keep = new Set(wanted);
      for (let node = spacerTop.nextSibling; node && node !== spacerBottom;) {
        const next = node.nextSibling;
        if (!keep.has(node)) {
          node.remove();
        }
        node = next;
      }
      let cursor = spacerTop.nextSibling;
      for (const tr of wanted) {
        if (cursor === tr) {
          cursor = cursor.nextSibling;
        } else {
          tbody.insertBefore(tr, cursor);
        }
      }
      sizeSpacer(spacerTop, start * ROW_H);
      sizeSpacer(spacerBottom, (total - end) * ROW_H);
      if (cache.size > CACHE_MAX) {
        for (const [name, entry] of cache) {
          if (!entry.tr.isConnected) {
            cache.delete(name);
          }
        }
      }
    }

    function sizeSpacer(tr, px) {
      tr.hidden = px <= 0;
      const td = tr.firstChild;
      const want = `${px}px`;
      if (td.style.height !== want) {
        td.style.height = want;
      }
    }

    function outdatedFrom(plan) {
      const names = new Set();
      for (const a of plan.actions || []) {
        if (a.kind === 'replace' && a.vm) {
          names.add(a.vm);
        }
      }
      for (const f of plan.findings || []) {
        if (f.kind === 'outdated' && f.vm) {
          names.add(f.vm);
        }
      }
      return names;
    }

    return {
      async load() {
        const signal = ctx.signal;
        const [body, plan] = await Promise.all([
          getJson('/api/v1/vms', {signal}),
          usePlan ? getJson('/api/v1/plan', {signal}).catch(() => null) : null,
        ]);
        let vms = body.vms || [];
        if (usePlan === null && vms.length > 0 && !('outdated' in vms[0])) {
          usePlan = true; // this server has no `outdated` yet: derive it from the plan's replacements
          const fresh = await getJson('/api/v1/plan', {signal}).catch(() => null);
          return this.apply(vms, fresh);
        }
        return this.apply(vms, plan);
      },
      apply(vms, plan) {
        const stale = plan ? outdatedFrom(plan) : null;
        const before = new Map(all.map((v) => [v.name, v]));
        let changed = vms.length !== all.length;
        const next = vms.map((raw) => {
          const v = {...raw};
          if (!('outdated' in raw) || raw.outdated === undefined) {
            v.outdated = !v.managed ? null : stale ? stale.has(v.name) : null;
          }
          const old = before.get(v.name);
          if (old && sameVm(old, v)) {
            return old;
          }
          changed = true;
          return v;
        });
        if (!changed && rows.length > 0) {
          return; // nothing moved: leave the DOM alone
        }
        all = next;
        recompute(false);
        if (!interactive) {
          interactive = true;
          performance.mark('flotilla:vms-interactive');
        }
      },
      destroy() {
        scroller.removeEventListener('scroll', onScroll);
        window.removeEventListener('resize', onScroll);
        cancelAnimationFrame(frame);
      },
    };
  },
};
