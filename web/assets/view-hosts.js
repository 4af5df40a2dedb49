// Hosts: one card per host (pool, arch, state, last seen, capacity bars, its VMs as chips),
// filtered by pool, tag, state and name; the filters live in the URL (/hosts?pool=x&state=offline).

import {getJson} from './api.js';
import {collator, h, patchList, patchSlot, plural, setAttr, setText, timeEl} from './dom.js';
import {
  badge,
  chip,
  emptyState,
  stateInfo,
  macosSlots,
  resourceMeters,
  searchField,
  selectField,
  syncOptions,
  viewHeader,
} from './ui.js';

const PAGE = 60;
const STATES = [
  ['', 'Any state'],
  ['online', 'Online'],
  ['degraded', 'Degraded'],
  ['offline', 'Offline'],
  ['unknown', 'Unknown'],
  ['cordoned', 'Cordoned'],
];

function vmChip(vm) {
  const owner = vm.managed ? `managed by ${vm.vmset || 'Flotilla'}` : 'unmanaged';
  const {icon, tone} = stateInfo(vm.state);
  return h(
    'span',
    {
      class: 'chip vm-chip',
      role: 'listitem',
      'data-vm': vm.name,
      'data-state': vm.state,
      'data-tone': tone,
      'data-managed': vm.managed ? 'true' : 'false',
      title: `${vm.name}: ${vm.state}, ${owner}`,
    },
    h('span', {class: 'chip-icon', 'aria-hidden': 'true'}, icon),
    h('span', {class: 'chip-text'}, vm.name),
    h('span', {class: 'visually-hidden'}, ` (${vm.state}${vm.managed ? '' : ', unmanaged'})`),
  );
}

function hostMeta(host) {
  const bits = [
    h(
      'span',
      null,
      h('span', {class: 'muted'}, 'pool '),
      h('a', {href: `/hosts?pool=${encodeURIComponent(host.pool)}`}, host.pool),
    ),
    host.arch ? h('span', null, host.arch) : null,
    h('span', null, host.provider),
    host.os
      ? h('span', {class: 'muted', title: host.agent_version ? `agent ${host.agent_version}` : null}, host.os)
      : null,
    h(
      'span',
      null,
      h('span', {class: 'muted'}, 'seen '),
      host.last_seen ? timeEl(host.last_seen, {ago: true}) : 'never',
    ),
  ].filter(Boolean);
  return h('p', {class: 'host-meta'}, bits);
}

function hostNotes(host) {
  const notes = [];
  if (host.error) {
    notes.push(
      h(
        'li',
        {class: 'note-bad'},
        h('span', {'aria-hidden': 'true'}, '✕ '),
        host.failed_observations > 1 ? `${host.failed_observations} failed observations: ` : '',
        host.error,
      ),
    );
  } else if (host.error_rate > 0) {
    notes.push(
      h('li', {class: 'note-warn'}, `${Math.round(host.error_rate * 100)}% of recent observations failed`),
    );
  }
  for (const c of host.conditions || []) {
    notes.push(h('li', {class: 'note-warn'}, h('span', {'aria-hidden': 'true'}, '! '), c));
  }
  if ((host.tags || []).length > 0) {
    notes.push(
      h(
        'li',
        {class: 'tags'},
        host.tags.map((t) => badge(t, {cls: 'tag', title: `tag ${t}`})),
      ),
    );
  }
  return notes.length > 0 ? h('ul', {class: 'host-notes'}, notes) : null;
}

function hostMeters(host, vmCount) {
  const vms = host.max_vms > 0 ? {used: vmCount, max: host.max_vms} : null;
  const meters = resourceMeters(host.resources, {slots: macosSlots(host), vms});
  return meters.length > 0 ? meters : h('p', {class: 'muted small'}, 'Capacity not reported.');
}

function makeCard(entry) {
  const {host} = entry;
  const title = h('h2', {class: 'host-name'});
  const stateSlot = h('span', {class: 'host-state'});
  const meta = h('div');
  const notes = h('div');
  const meters = h('div', {class: 'meters'});
  const chips = h('div', {class: 'vm-chips', role: 'list', 'aria-label': `VMs on ${host.name}`});
  const vmLink = h('a', {href: `/vms?q=${encodeURIComponent(`host:${host.name}`)}`, class: 'small'});
  const el = h(
    'article',
    {class: 'card host-card', 'data-host': host.name},
    h('header', {class: 'host-head'}, title, stateSlot),
    meta,
    notes,
    meters,
    chips,
    h('footer', {class: 'host-foot'}, vmLink),
  );
  el._parts = {title, stateSlot, meta, notes, meters, chips, vmLink};
  return updateCard(el, entry);
}

function updateCard(el, {host, vms}) {
  const p = el._parts;
  setAttr(el, 'data-state', host.state);
  setAttr(el, 'data-cordoned', host.cordoned ? 'true' : 'false');
  setAttr(el, 'aria-label', `Host ${host.name}, ${host.state}${host.cordoned ? ', cordoned' : ''}`);
  setText(p.title, host.name);
  patchSlot(p.stateSlot, [host.state, host.cordoned], () => [
    chip(host.state),
    host.cordoned ? chip('cordoned', {title: 'Cordoned: no new VMs; managed VMs are drained'}) : null,
  ]);
  patchSlot(p.meta, [host.pool, host.arch, host.provider, host.os, host.agent_version, host.last_seen], () =>
    hostMeta(host),
  );
  patchSlot(
    p.notes,
    [host.error, host.error_rate, host.failed_observations, host.conditions, host.tags],
    () => hostNotes(host),
  );
  patchSlot(p.meters, [host.resources, host.macos_vms, host.max_vms, vms.length], () =>
    hostMeters(host, vms.length),
  );
  patchList(p.chips, vms, (v) => v.name, vmChip, {sigOf: (v) => `${v.state}|${v.managed}|${v.vmset}`});
  setText(p.vmLink, vms.length > 0 ? `${plural(vms.length, 'VM')} in the table →` : 'No VMs');
  return el;
}

function matches(host, f) {
  if (f.pool && host.pool !== f.pool) {
    return false;
  }
  if (f.state === 'cordoned' ? !host.cordoned : f.state && host.state !== f.state) {
    return false;
  }
  if (f.q && !host.name.toLowerCase().includes(f.q.toLowerCase())) {
    return false;
  }
  if (f.tag) {
    const tags = (host.tags || []).map((t) => t.toLowerCase());
    for (const want of f.tag
      .toLowerCase()
      .split(/[\s,]+/)
      .filter(Boolean)) {
      if (!tags.some((t) => t.includes(want))) {
        return false;
      }
    }
  }
  return true;
}

export default {
  name: 'hosts',
  nav: 'hosts',
  title: 'Hosts',
  create(ctx) {
    const params = ctx.params();
    const filters = {
      pool: params.get('pool') || '',
      tag: params.get('tag') || '',
      state: params.get('state') || '',
      q: params.get('q') || '',
    };
    let limit = PAGE;
    let data = null;

    const poolField = selectField('host-pool', 'Pool', [['', 'All pools']], filters.pool, (v) =>
      set('pool', v),
    );
    const poolSelect = poolField.querySelector('select');
    const summary = h('p', {class: 'muted view-sub', id: 'host-count', 'aria-live': 'polite'});
    const grid = h('div', {class: 'host-grid'});
    const empty = h('div');
    const more = h('button', {
      type: 'button',
      class: 'more',
      hidden: true,
      onclick: () => {
        limit += PAGE;
        render();
      },
    });
    ctx.root.append(
      viewHeader('Hosts', summary),
      h(
        'form',
        {class: 'toolbar', role: 'search', onsubmit: (e) => e.preventDefault()},
        poolField,
        selectField('host-state', 'State', STATES, filters.state, (v) => set('state', v)),
        searchField('host-tag', 'Tag', filters.tag, (v) => set('tag', v), {placeholder: 'e.g. gpu'}),
        searchField('host-filter', 'Name', filters.q, (v) => set('q', v), {placeholder: 'Filter by name'}),
      ),
      empty,
      grid,
      more,
    );

    function set(key, value) {
      filters[key] = value;
      limit = PAGE;
      ctx.setParams({[key]: value});
      render();
    }

    function render() {
      if (!data) {
        return;
      }
      const [hosts, vms] = data;
      const pools = [...new Set(hosts.hosts.map((x) => x.pool))].sort(collator.compare);
      syncOptions(poolSelect, [['', 'All pools'], ...pools.map((x) => [x, x])], filters.pool);
      const byHost = new Map();
      for (const vm of vms.vms) {
        const list = byHost.get(vm.host);
        if (list) {
          list.push(vm);
        } else {
          byHost.set(vm.host, [vm]);
        }
      }
      for (const list of byHost.values()) {
        list.sort((a, b) => collator.compare(a.name, b.name));
      }
      const shown = hosts.hosts.filter((x) => matches(x, filters));
      const page = shown.slice(0, limit).map((host) => ({host, vms: byHost.get(host.name) || []}));
      patchList(grid, page, (e) => e.host.name, makeCard, {
        update: updateCard,
        sigOf: (e) =>
          JSON.stringify([e.host, e.vms.map((v) => `${v.name}|${v.state}|${v.managed}|${v.vmset}`)]),
      });
      const online = hosts.hosts.filter((x) => x.state === 'online' || x.state === 'degraded').length;
      setText(
        summary,
        shown.length === hosts.hosts.length
          ? `${plural(hosts.hosts.length, 'host')}, ${online} online`
          : `${shown.length} of ${plural(hosts.hosts.length, 'host')} match`,
      );
      patchSlot(empty, [shown.length === 0, hosts.hosts.length === 0], () =>
        shown.length > 0
          ? null
          : emptyState(
              hosts.hosts.length === 0
                ? 'No hosts are declared in the repository.'
                : 'No host matches these filters.',
            ),
      );
      more.hidden = shown.length <= limit;
      setText(more, `Show ${Math.min(PAGE, shown.length - limit)} more (${shown.length - limit} hidden)`);
    }

    return {
      async load() {
        data = await Promise.all([
          getJson('/api/v1/hosts', {signal: ctx.signal}),
          getJson('/api/v1/vms', {signal: ctx.signal}),
        ]);
        render();
      },
    };
  },
};
