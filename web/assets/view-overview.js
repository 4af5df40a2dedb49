// Overview: the revision in force (and the fail-static banner when the newest one was rejected),
// hosts online, managed VMs by state, the last run, what the plan would do, capacity per pool
// and per arch.

import {HttpError, getJson} from './api.js';
import {fmtDuration, h, parseTime, patchList, patchSlot, plural, shortSha, timeEl} from './dom.js';
import {chip, emptyState, macosSlots, resourceMeters, viewHeader} from './ui.js';

const VM_STATE_ORDER = ['running', 'stopped', 'suspended', 'paused', 'transitional', 'unknown', 'invalid'];
const PENDING = ['create', 'replace', 'delete', 'start', 'stop', 'prepull', 'adopt'];
const BLOCKED = ['unschedulable', 'conflict', 'deferred'];

// Fetch, but let a 503 (no observation yet) through as null so the rest still shows.
async function optional(path, signal) {
  try {
    return await getJson(path, {signal});
  } catch (err) {
    if (err instanceof HttpError && err.waiting) {
      return null;
    }
    throw err;
  }
}

function card(id, title, ...rest) {
  return h(
    'section',
    {class: 'card', 'aria-labelledby': `${id}-title`},
    h('h2', {class: 'card-title', id: `${id}-title`}, title),
    ...rest,
  );
}

function diagnosticText(d) {
  return d.text || `${d.file}:${d.line}:${d.column}: ${d.message}`;
}

function failStatic(status) {
  const rejected = status.rejected;
  const problem = status.latest_problem;
  if (!rejected && !status.fail_static) {
    return null;
  }
  const who = rejected
    ? [
        h('code', null, shortSha(rejected.sha)),
        rejected.subject ? [' “', rejected.subject, '”'] : null,
        rejected.author ? [' by ', rejected.author] : null,
        rejected.time ? [', ', timeEl(rejected.time, {ago: true})] : null,
      ]
    : problem
      ? h('code', null, shortSha(problem.sha))
      : 'The newest revision';
  const reason = (rejected && rejected.reason) || (problem && problem.reason) || 'it could not be used';
  const inForce = status.revision ? shortSha(status.revision.sha) : shortSha(status.in_force);
  const diagnostics = (rejected && rejected.diagnostics) || [];
  return h(
    'section',
    {id: 'fail-static', class: 'banner banner-bad', role: 'alert', 'aria-labelledby': 'fail-static-title'},
    h(
      'h2',
      {id: 'fail-static-title'},
      h('span', {class: 'banner-icon', 'aria-hidden': 'true'}, '⚠'),
      'Fail static: the newest revision was rejected',
    ),
    h('p', null, who, ' could not be used: ', h('strong', null, reason), '.'),
    h(
      'p',
      {class: 'muted'},
      inForce
        ? [
            'The last good revision ',
            h('code', null, inForce),
            ' stays in force and deletions are held until a fixed commit lands.',
          ]
        : 'No good revision is in force yet.',
    ),
    diagnostics.length > 0
      ? h(
          'ul',
          {class: 'diagnostics', 'aria-label': 'Diagnostics'},
          diagnostics.map((d) =>
            h('li', {class: 'diagnostic', 'data-severity': d.severity || 'error'}, diagnosticText(d)),
          ),
        )
      : null,
  );
}

function revisionCard(status) {
  const rev = status.revision;
  const sha = rev ? rev.sha : status.in_force || status.applied;
  return card(
    'revision-card',
    'Revision in force',
    h(
      'div',
      {id: 'revision'},
      sha
        ? [
            h('p', {class: 'big mono', title: sha}, shortSha(sha)),
            rev && rev.subject ? h('p', {class: 'subject'}, rev.subject) : null,
            h(
              'p',
              {class: 'muted'},
              rev && rev.author ? [rev.author, ' · '] : null,
              rev && rev.time
                ? timeEl(rev.time, {ago: true})
                : status.applied_at
                  ? ['applied ', timeEl(status.applied_at, {ago: true})]
                  : null,
            ),
          ]
        : h('p', {class: 'muted'}, 'No revision applied yet.'),
    ),
  );
}

function hostsCard(status) {
  const hostInfo = status.hosts || {total: 0, online: 0, degraded: [], offline: []};
  const troubled = [
    ...(hostInfo.degraded || []).map((x) => ({...x, state: 'degraded'})),
    ...(hostInfo.offline || []).map((x) => ({...x, state: 'offline'})),
  ];
  return card(
    'hosts-card',
    'Hosts online',
    h(
      'p',
      {class: 'big'},
      h('a', {href: '/hosts', id: 'hosts-online'}, `${hostInfo.online} / ${hostInfo.total}`),
    ),
    troubled.length === 0
      ? h('p', {class: 'muted'}, hostInfo.total > 0 ? 'All hosts answer.' : 'No hosts declared.')
      : h(
          'ul',
          {class: 'mini-list'},
          troubled
            .slice(0, 6)
            .map((x) =>
              h(
                'li',
                null,
                chip(x.state),
                ' ',
                h('a', {href: `/hosts?state=${x.state}`}, x.name),
                x.error ? h('span', {class: 'muted small', title: x.error}, ` ${x.error}`) : null,
              ),
            ),
        ),
    troubled.length > 6 ? h('p', {class: 'muted small'}, `and ${troubled.length - 6} more`) : null,
  );
}

function vmStatesCard(status, vms) {
  const counts = new Map();
  let unmanaged = 0;
  for (const vm of vms ? vms.vms : []) {
    if (!vm.managed) {
      unmanaged += 1;
      continue;
    }
    counts.set(vm.state, (counts.get(vm.state) || 0) + 1);
  }
  const states = [...counts.keys()].sort((a, b) => VM_STATE_ORDER.indexOf(a) - VM_STATE_ORDER.indexOf(b));
  return card(
    'vm-states-card',
    'Managed VMs by state',
    h('p', {class: 'big'}, String(status.managed_vms ?? 0)),
    vms === null ? h('p', {class: 'muted'}, 'Waiting for the first observation.') : null,
    h(
      'ul',
      {id: 'vm-states', class: 'state-counts'},
      states.map((state) =>
        h(
          'li',
          {'data-state': state},
          h(
            'a',
            {href: `/vms?q=${encodeURIComponent(`state:${state} managed:yes`)}`},
            chip(state),
            h('span', {class: 'count'}, String(counts.get(state))),
          ),
        ),
      ),
    ),
    unmanaged > 0
      ? h(
          'p',
          {class: 'muted small'},
          h('a', {href: '/vms?q=managed:no'}, plural(unmanaged, 'unmanaged VM')),
          ' on the hosts too',
        )
      : null,
  );
}

function lastRunCard(status) {
  const r = status.last_run;
  if (!r) {
    return card(
      'last-run-card',
      'Last run',
      h('div', {id: 'last-run'}, h('p', {class: 'muted'}, 'No run yet.')),
    );
  }
  const start = parseTime(r.started_at);
  const end = parseTime(r.finished_at);
  const duration = start !== null ? (end ?? Date.now()) - start : null;
  return card(
    'last-run-card',
    'Last run',
    h(
      'div',
      {id: 'last-run', 'data-outcome': r.outcome},
      h('p', {class: 'big'}, h('a', {href: `/runs/${r.id}`}, `#${r.id}`), ' ', chip(r.outcome)),
      h(
        'p',
        null,
        r.outcome === 'running' ? 'running for ' : 'took ',
        h('strong', null, fmtDuration(duration)),
        ' · ',
        r.planned === 0
          ? 'nothing to do'
          : `${r.succeeded} of ${r.planned} action${r.planned === 1 ? '' : 's'} succeeded`,
        r.failed ? `, ${r.failed} failed` : '',
        r.abandoned ? `, ${r.abandoned} abandoned` : '',
      ),
      h(
        'p',
        {class: 'muted'},
        r.trigger,
        ' · ',
        timeEl(r.started_at, {ago: true}),
        r.revision ? [' · ', h('code', null, shortSha(r.revision))] : null,
      ),
    ),
  );
}

function pendingCard(plan) {
  if (!plan) {
    return card(
      'pending-card',
      'Next pass',
      h('div', {id: 'pending'}, h('p', {class: 'muted'}, 'Waiting for the first observation.')),
    );
  }
  const s = plan.summary || {};
  const items = PENDING.filter((k) => s[k] > 0);
  const blocked = BLOCKED.filter((k) => s[k] > 0);
  const total = items.reduce((n, k) => n + s[k], 0);
  return card(
    'pending-card',
    'Next pass',
    h(
      'div',
      {id: 'pending', 'data-actions': String(total)},
      h(
        'p',
        {class: 'big'},
        h(
          'a',
          {href: '/plan'},
          total > 0 ? plural(total, 'action') : blocked.length > 0 ? 'Nothing runs' : 'In sync',
        ),
      ),
      items.length > 0 || blocked.length > 0
        ? h(
            'ul',
            {class: 'state-counts'},
            [...items, ...blocked].map((k) =>
              h('li', {'data-kind': k}, chip(k), h('span', {class: 'count'}, String(s[k]))),
            ),
          )
        : h('p', {class: 'muted'}, 'The fleet matches the repository.'),
      s.findings > 0
        ? h('p', {class: 'muted small'}, h('a', {href: '/plan'}, plural(s.findings, 'finding')))
        : null,
    ),
  );
}

// Sum per-host macOS slots and VM caps by pool and by arch.
function hostSums(hosts) {
  const byPool = new Map();
  const byArch = new Map();
  for (const host of hosts ? hosts.hosts : []) {
    const slots = macosSlots(host);
    for (const [map, key] of [
      [byPool, host.pool],
      [byArch, host.arch || 'unknown'],
    ]) {
      const sum = map.get(key) || {slotsUsed: 0, slotsMax: 0, macs: 0};
      if (slots && host.state !== 'offline' && host.state !== 'unknown') {
        sum.slotsUsed += slots.used;
        sum.slotsMax += slots.max;
        sum.macs += 1;
      }
      map.set(key, sum);
    }
  }
  return {byPool, byArch};
}

function capacityCard(kind, entry, sums) {
  const name = entry[kind];
  const sum = sums.get(name);
  const slots = sum && sum.macs > 0 ? {used: sum.slotsUsed, max: sum.slotsMax} : null;
  const attrs = {
    class: 'card capacity',
    'aria-label': `${kind === 'pool' ? 'Pool' : 'Architecture'} ${name}`,
  };
  attrs[`data-${kind}`] = name;
  const link = kind === 'pool' ? `/hosts?pool=${encodeURIComponent(name)}` : null;
  return h(
    'section',
    attrs,
    h('h3', {class: 'card-title'}, link ? h('a', {href: link}, name) : name),
    h(
      'p',
      {class: 'muted small'},
      `${entry.online_hosts} / ${entry.hosts} hosts online · ${plural(entry.vms, 'VM')}`,
    ),
    entry.online_hosts > 0
      ? resourceMeters({total: entry.total, available: entry.available}, {slots})
      : h('p', {class: 'muted'}, 'No host online: no capacity.'),
  );
}

function eventsCard(status) {
  const list = status.events || [];
  return card(
    'recent-events',
    'Recent events',
    list.length === 0
      ? h('p', {class: 'muted'}, 'Nothing recorded yet.')
      : h(
          'ul',
          {class: 'event-list'},
          list.map((e) =>
            h(
              'li',
              {'data-level': e.level},
              chip(e.level),
              ' ',
              h('span', {class: 'event-subject'}, e.subject),
              ' ',
              h('span', {class: 'event-message'}, e.message),
              ' ',
              h('span', {class: 'muted small'}, timeEl(e.at, {ago: true})),
            ),
          ),
        ),
    h('p', {class: 'small'}, h('a', {href: '/events'}, 'All events →')),
  );
}

export default {
  name: 'overview',
  nav: 'overview',
  title: 'Overview',
  create(ctx) {
    const observed = h('p', {class: 'muted view-sub'});
    const banner = h('div', {class: 'banner-slot'});
    const slots = {
      revision: h('div', {class: 'slot'}),
      hosts: h('div', {class: 'slot'}),
      vms: h('div', {class: 'slot'}),
      run: h('div', {class: 'slot'}),
      pending: h('div', {class: 'slot'}),
    };
    const pools = h('div', {class: 'capacity-grid'});
    const arches = h('div', {class: 'capacity-grid'});
    const events = h('div', {class: 'slot events-slot'});
    const capacityNote = h('div', {class: 'slot'});
    ctx.root.append(
      viewHeader('Overview', observed),
      banner,
      h('div', {class: 'cards'}, Object.values(slots)),
      h('h2', {class: 'section-title'}, 'Capacity by pool'),
      capacityNote,
      pools,
      h('h2', {class: 'section-title'}, 'Capacity by architecture'),
      arches,
      events,
    );

    return {
      async load() {
        const signal = ctx.signal;
        const [status, resources, hosts, plan, vms] = await Promise.all([
          getJson('/api/v1/status', {signal}),
          optional('/api/v1/overview/resources', signal),
          optional('/api/v1/hosts', signal),
          optional('/api/v1/plan', signal),
          optional('/api/v1/vms?managed=true', signal),
        ]);
        patchSlot(observed, [status.observed_at], () =>
          status.observed_at
            ? ['Observed ', timeEl(status.observed_at, {ago: true})]
            : 'Waiting for the first observation of the hosts…',
        );
        const rejectedKey = [
          status.rejected,
          status.fail_static,
          status.latest_problem,
          status.revision,
          status.in_force,
        ];
        patchSlot(banner, rejectedKey, () => failStatic(status));
        patchSlot(slots.revision, [status.revision, status.in_force, status.applied, status.applied_at], () =>
          revisionCard(status),
        );
        patchSlot(slots.hosts, status.hosts, () => hostsCard(status));
        const vmKey = vms
          ? vms.vms
              .map((v) => `${v.managed ? 1 : 0}${v.state}`)
              .sort()
              .join()
          : null;
        patchSlot(slots.vms, [status.managed_vms, vmKey], () => vmStatesCard(status, vms));
        patchSlot(
          slots.run,
          [status.last_run, status.last_run && status.last_run.outcome === 'running' ? Date.now() : 0],
          () => lastRunCard(status),
        );
        patchSlot(slots.pending, plan ? plan.summary : null, () => pendingCard(plan));
        const sums = hostSums(hosts);
        if (resources) {
          patchList(
            pools,
            resources.pools,
            (p) => p.pool,
            (p) => capacityCard('pool', p, sums.byPool),
            {sigOf: (p) => JSON.stringify([p, sums.byPool.get(p.pool)])},
          );
          patchList(
            arches,
            resources.arches,
            (a) => a.arch,
            (a) => capacityCard('arch', a, sums.byArch),
            {sigOf: (a) => JSON.stringify([a, sums.byArch.get(a.arch)])},
          );
        }
        patchSlot(capacityNote, resources ? resources.pools.length === 0 : 'waiting', () =>
          !resources
            ? emptyState('Waiting for the first observation of the hosts…')
            : resources.pools.length === 0
              ? emptyState('No pools declared.')
              : null,
        );
        patchSlot(events, status.events, () => eventsCard(status));
      },
    };
  },
};
