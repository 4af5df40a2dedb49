// Plan: what the next pass will do, grouped by pool and VMSet like the Markdown plan, with every
// finding (unschedulable and why, deferred deletions, conflicts, outdated VMs waiting for
// maxUnavailable) beside the actions of its group.

import {getJson} from './api.js';
import {collator, h, patchList, patchSlot, plural, setAttr, setText} from './dom.js';
import {chip, emptyState, searchField, selectField, viewHeader} from './ui.js';

const ACTION_KINDS = ['create', 'replace', 'delete', 'start', 'stop', 'prepull', 'adopt'];
const FINDING_KINDS = [
  'unschedulable',
  'conflict',
  'deferred',
  'refused',
  'waiting',
  'outdated',
  'drift',
  'unknown',
];
const GROUP_CAP = 200; // items a group shows at first when the plan is small
const PAGE_BUDGET = 300; // items the page shows at first in all (a 10,000-VM rollout stays light)

function actionKey(a) {
  return `${a.kind}|${a.vm}|${a.host}|${a.from_host || ''}|${a.vm ? '' : (a.template && a.template.image) || a.id}`;
}

function findingKey(f) {
  return `${f.kind}|${f.vm}|${f.host}|${f.message}`;
}

function where(a) {
  switch (a.kind) {
    case 'replace':
      return a.from_host && a.from_host !== a.host
        ? [h('span', {class: 'host'}, a.from_host), ' → ', h('span', {class: 'host'}, a.host)]
        : ['on ', h('span', {class: 'host'}, a.host)];
    case 'delete':
      return ['from ', h('span', {class: 'host'}, a.host)];
    default:
      return a.host ? ['on ', h('span', {class: 'host'}, a.host)] : null;
  }
}

function templateText(t) {
  if (!t) {
    return null;
  }
  return [t.image, `${t.os}/${t.arch}`, `${t.cpu} CPU`, t.memory, t.disk, t.state]
    .filter(Boolean)
    .join(' · ');
}

function makeAction(a) {
  const notes = [];
  if (a.depends_on && a.depends_on.length > 0) {
    notes.push(`after ${a.depends_on.map((d) => `#${d}`).join(', ')}`);
  }
  if (a.create_first) {
    notes.push('new VM first, then the old one goes');
  }
  if (a.assumed_placement) {
    notes.push('placed on assumed host facts');
  }
  return h(
    'li',
    {class: 'plan-action', 'data-vm': a.vm, 'data-kind': a.kind, 'data-id': String(a.id)},
    h('span', {class: 'plan-id muted', title: 'Position in the plan'}, `#${a.id}`),
    chip(a.kind),
    h(
      'span',
      {class: 'plan-what'},
      h('strong', {class: 'vm-name'}, a.vm || (a.template && a.template.image) || '—'),
      ' ',
      where(a),
    ),
    a.reason ? h('span', {class: 'plan-reason'}, a.reason) : null,
    a.template
      ? h(
          'span',
          {class: 'plan-template muted small', title: a.template_hash ? `template ${a.template_hash}` : null},
          templateText(a.template),
        )
      : null,
    notes.length > 0 ? h('span', {class: 'plan-notes muted small'}, notes.join(' · ')) : null,
  );
}

function makeFinding(f) {
  return h(
    'li',
    {class: 'finding', 'data-kind': f.kind, 'data-vm': f.vm || null},
    chip(f.kind),
    h(
      'span',
      {class: 'finding-what'},
      f.vm ? h('strong', {class: 'vm-name'}, f.vm) : null,
      f.host ? h('span', {class: 'muted'}, ' on ', f.host) : null,
    ),
    h('span', {class: 'finding-message'}, f.message),
  );
}

function capped(list, cap) {
  return list.slice(0, cap);
}

function makeGroup(g, state) {
  const title = h('h2', {class: 'group-title'});
  const counts = h('p', {class: 'group-counts muted small'});
  const actions = h('ol', {class: 'plan-actions', 'aria-label': 'Actions'});
  const findings = h('ul', {class: 'findings', 'aria-label': 'Findings'});
  const more = h('button', {
    type: 'button',
    class: 'more',
    hidden: true,
    onclick: () => {
      state.expanded.add(g.key);
      state.render();
    },
  });
  const el = h(
    'section',
    {class: 'card plan-group', 'data-pool': g.pool, 'data-vmset': g.vmset},
    h('header', {class: 'group-head'}, title, counts),
    findings,
    actions,
    more,
  );
  el._parts = {title, counts, actions, findings, more};
  return updateGroup(el, g, state);
}

function updateGroup(el, g, state) {
  const p = el._parts;
  patchSlot(p.title, [g.pool, g.vmset], () => [
    h('span', {class: 'muted'}, 'pool '),
    g.pool || '—',
    h('span', {class: 'sep', 'aria-hidden': 'true'}, ' › '),
    g.vmset ? [h('span', {class: 'muted'}, 'set '), g.vmset] : h('span', {class: 'muted'}, 'no VMSet'),
  ]);
  const kinds = new Map();
  for (const a of g.actions) {
    kinds.set(a.kind, (kinds.get(a.kind) || 0) + 1);
  }
  setText(
    p.counts,
    [
      ...[...kinds].map(([k, n]) => `${k} ${n}`),
      g.findings.length > 0 ? plural(g.findings.length, 'finding') : null,
    ]
      .filter(Boolean)
      .join(' · '),
  );
  // g.cap: how many items this group shows (the page shows about PAGE_BUDGET in all at first).
  const shownFindings = capped(g.findings, g.cap);
  const shownActions = capped(g.actions, Math.max(0, g.cap - shownFindings.length));
  patchList(p.findings, shownFindings, findingKey, makeFinding);
  patchList(p.actions, shownActions, actionKey, makeAction);
  p.findings.hidden = shownFindings.length === 0;
  p.actions.hidden = shownActions.length === 0;
  const hidden = g.findings.length + g.actions.length - shownFindings.length - shownActions.length;
  p.more.hidden = hidden === 0;
  setText(p.more, `Show ${hidden} more in ${g.vmset || 'this group'}`);
  return el;
}

function groupsOf(plan, test) {
  const groups = new Map();
  const group = (pool, vmset) => {
    const key = `${pool}\u0000${vmset}`;
    let g = groups.get(key);
    if (!g) {
      g = {key, pool, vmset, actions: [], findings: []};
      groups.set(key, g);
    }
    return g;
  };
  for (const a of plan.actions || []) {
    if (test(a, [a.vm, a.host, a.from_host, a.reason, a.kind, a.pool, a.vmset])) {
      group(a.pool || '', a.vmset || '').actions.push(a);
    }
  }
  for (const f of plan.findings || []) {
    if (test(f, [f.vm, f.host, f.message, f.kind, f.pool, f.vmset])) {
      group(f.pool || '', f.vmset || '').findings.push(f);
    }
  }
  for (const g of groups.values()) {
    g.findings.sort((a, b) => collator.compare(a.kind, b.kind) || collator.compare(a.vm || '', b.vm || ''));
  }
  return [...groups.values()].sort(
    (a, b) =>
      collator.compare(a.pool, b.pool) ||
      (a.vmset === '' ? 1 : 0) - (b.vmset === '' ? 1 : 0) ||
      collator.compare(a.vmset, b.vmset),
  );
}

function summary(plan) {
  const s = plan.summary || {};
  const kinds = [...ACTION_KINDS, ...FINDING_KINDS.filter((k) => k in s)];
  return h(
    'ul',
    {class: 'state-counts summary-counts'},
    kinds
      .filter((k) => (s[k] || 0) > 0 || ACTION_KINDS.slice(0, 5).includes(k))
      .map((k) =>
        h(
          'li',
          {'data-kind': k, class: s[k] ? null : 'zero'},
          chip(k),
          h('span', {class: 'count'}, String(s[k] || 0)),
        ),
      ),
  );
}

export default {
  name: 'plan',
  nav: 'plan',
  title: 'Plan',
  create(ctx) {
    const params = ctx.params();
    const state = {
      q: params.get('q') || '',
      kind: params.get('kind') || '',
      expanded: new Set(),
      plan: null,
      render,
    };
    const sub = h('p', {class: 'muted view-sub'});
    const summaryEl = h('section', {id: 'plan-summary', 'aria-label': 'Plan summary'});
    const groupsEl = h('div', {class: 'plan-groups'});
    const empty = h('div');
    const kinds = [
      ['', 'All kinds'],
      ...ACTION_KINDS.map((k) => [k, k]),
      ...FINDING_KINDS.map((k) => [k, `${k} (finding)`]),
    ];
    ctx.root.append(
      viewHeader('Plan', sub),
      summaryEl,
      h(
        'form',
        {class: 'toolbar', role: 'search', onsubmit: (e) => e.preventDefault()},
        selectField('plan-kind', 'Kind', kinds, state.kind, (v) => set('kind', v)),
        searchField('plan-filter', 'Filter', state.q, (v) => set('q', v), {placeholder: 'VM, host, reason'}),
      ),
      empty,
      groupsEl,
    );

    function set(key, value) {
      state[key] = value;
      ctx.setParams({[key]: value.trim() || null});
      render();
    }

    function render() {
      const plan = state.plan;
      if (!plan) {
        return;
      }
      const s = plan.summary || {};
      const total = ACTION_KINDS.reduce((n, k) => n + (s[k] || 0), 0);
      setText(
        sub,
        `${total === 0 ? 'Nothing to do' : plural(total, 'action')} · ${plural(s.findings || 0, 'finding')}` +
          (plan.revision ? ` · revision ${plan.revision}` : ''),
      );
      setAttr(summaryEl, 'data-actions', String(total));
      patchSlot(summaryEl, s, () => summary(plan));
      const q = state.q.trim().toLowerCase();
      const test = (item, fields) =>
        (!state.kind || item.kind === state.kind) &&
        (!q || fields.some((f) => f && String(f).toLowerCase().includes(q)));
      const groups = groupsOf(plan, test);
      let budget = PAGE_BUDGET;
      for (const g of groups) {
        const size = g.actions.length + g.findings.length;
        g.cap = state.expanded.has(g.key) ? size : Math.min(size, GROUP_CAP, Math.max(budget, 0));
        budget -= g.cap;
      }
      patchList(
        groupsEl,
        groups,
        (g) => g.key,
        (g) => makeGroup(g, state),
        {
          update: (el, g) => updateGroup(el, g, state),
          sigOf: (g) => JSON.stringify([g.actions, g.findings, g.cap]),
        },
      );
      patchSlot(empty, [groups.length === 0, total, state.q, state.kind], () =>
        groups.length > 0
          ? null
          : emptyState(
              total === 0 && (plan.findings || []).length === 0
                ? `Nothing to do: the fleet matches ${plan.revision || 'the repository'}.`
                : 'Nothing in the plan matches the filter.',
            ),
      );
    }

    return {
      async load() {
        state.plan = await getJson('/api/v1/plan', {signal: ctx.signal});
        render();
      },
    };
  },
};
