/// The page: one HTML document, its script and its style. The charts are Debian's dygraphs,
/// served from /assets like everything else: the page loads nothing from the internet.
enum Page {
    static func html(title: String) -> String {
        let escaped = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: "\"", with: "&quot;")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>track-ui · \(escaped)</title>
            <link rel="stylesheet" href="/assets/dygraph.min.css"><link rel="stylesheet" href="/assets/app.css">
            </head>
            <body><header><a href="#/" class="brand">swift-track</a><span id="db">\(escaped)</span>
            <span id="live" class="live off" title="live updates">●</span><span id="damage"></span></header>
            <main id="main"><p class="muted">Loading…</p></main>
            <script src="/assets/app.js"></script></body></html>
            """
    }

    static let style = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
        header { display: flex; gap: 1em; align-items: center; padding: .5em 1em; background: #23395d; color: #fff; }
        header a { color: #fff; text-decoration: none; font-weight: 600; }
        #db { font-family: monospace; opacity: .85; }
        .live { font-size: 18px; } .live.on { color: #5ee07a; } .live.off { color: #aaa; }
        #damage { color: #ffb4a8; }
        main { padding: 1em; }
        .muted { color: #777; } .error { color: #b00020; white-space: pre-wrap; }
        .controls { display: flex; flex-wrap: wrap; gap: .6em; align-items: center; margin-bottom: .8em; }
        .controls input[type=text] { width: 28em; font-family: monospace; }
        table { border-collapse: collapse; background: #fff; }
        th, td { border-bottom: 1px solid #e4e4e4; padding: .25em .6em; text-align: left; vertical-align: top; }
        th { cursor: pointer; user-select: none; background: #f0f3f8; position: sticky; top: 0; }
        th.sorted::after { content: " ▲"; } th.sorted.desc::after { content: " ▼"; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        td .range { color: #888; font-size: 12px; display: block; }
        .status-Completed { color: #1a7f37; } .status-Running { color: #0b61c4; } .status-Exception, .status-Broken, .status-Interrupted { color: #b00020; }
        .details { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 0 2em; margin-top: 1.2em; }
        .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1em; }
        .chart { background: #fff; border: 1px solid #e4e4e4; padding: .5em; }
        .chart h3 { margin: 0 0 .3em; font-size: 14px; }
        .plot { height: 280px; }
        .plot.big { height: 480px; }
        .legend { font-size: 12px; min-height: 1.4em; }
        dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 0 0 1em; }
        dl.kv dt { color: #555; } dl.kv dd { margin: 0; font-family: monospace; overflow-wrap: anywhere; min-width: 0; }
        section { margin-bottom: 1.2em; }
        h2 { margin: .2em 0 .6em; font-size: 18px; }
        """

    static let script = #"""
        'use strict';
        const $ = (selector, root = document) => root.querySelector(selector);
        function h(tag, attrs = {}, ...children) {
          const e = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs)) {
            if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
            else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? '' : v);
          }
          for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
          return e;
        }
        async function api(path) {
          const response = await fetch(path);
          const body = await response.json();
          if (!response.ok) throw new Error(body.error || response.statusText);
          return body;
        }
        function fmt(v) {
          if (v === null || v === undefined) return '';
          if (typeof v === 'number') {
            if (Number.isInteger(v)) return String(v);
            const a = Math.abs(v);
            return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
          }
          return typeof v === 'object' ? JSON.stringify(v) : String(v);
        }
        const esc = text => String(text).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
        const num = v => typeof v === 'number' ? v : (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : null);

        // Charts: dygraphs, downsampled on the server to about the chart's width. The library is
        // loaded when the first chart needs it: the runs table does not wait for it.
        let dygraphLoading = null;
        function loadDygraph() {
          if (window.Dygraph) return Promise.resolve();
          if (!dygraphLoading) dygraphLoading = new Promise((resolve, reject) => {
            const script = document.createElement('script');
            script.src = '/assets/dygraph.min.js';
            script.onload = resolve;
            script.onerror = () => { dygraphLoading = null; reject(new Error('cannot load the charting library (/assets/dygraph.min.js)')); };
            document.head.append(script);
          });
          return dygraphLoading;
        }
        let charts = [];
        function destroyCharts() { for (const c of charts) c.destroy(); charts = []; }
        function smooth(values, weight) {
          if (!weight) return values;
          let last = 0, n = 0;
          return values.map(v => {
            if (v === null || !isFinite(v)) return v;
            last = last * weight + (1 - weight) * v; n++;
            return last / (1 - Math.pow(weight, n));
          });
        }
        // Rows for dygraphs from several curves: the union of their x, null where a curve has no point.
        function mergeCurves(curves, x, weight) {
          const rows = new Map();
          curves.forEach((curve, i) => {
            const ys = smooth(curve.points.map(p => p[1]), weight);
            curve.points.forEach((p, j) => {
              let row = rows.get(p[0]);
              if (!row) { row = new Array(curves.length).fill(null); rows.set(p[0], row); }
              row[i] = ys[j];
            });
          });
          return [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([k, row]) => [x === 'time' ? new Date(k * 1000) : k, ...row]);
        }
        function chartOptions(labels, x, log, extra = {}) {
          return Object.assign({ labels, logscale: log, connectSeparatedPoints: true, legend: 'follow',
                                 xlabel: x === 'time' ? 'time' : 'step', animatedZooms: false, strokeWidth: 1.4,
                                 labelsKMB: true }, extra);
        }

        // Live: the server pushes what changed; the view fetches only that.
        let view = null;
        function listen() {
          const events = new EventSource('/api/events');
          events.onmessage = e => {
            $('#live').className = 'live on';
            const update = JSON.parse(e.data);
            document.body.dataset.version = update.version;
            if (view && view.update && (update.trials.length || update.series.length)) view.update(update);
          };
          events.onerror = () => { $('#live').className = 'live off'; };
        }
        async function info() {
          try {
            const i = await api('/api/info');
            if (i.damage) $('#damage').textContent = `⚠ ${i.damage} damaged frame(s) skipped (track-replay verify tells more): ${i.damageText}`;
          } catch (e) { /* shown by the views */ }
        }
        function route() {
          destroyCharts();
          const [path, query] = (location.hash || '#/').slice(1).split('?');
          const params = new URLSearchParams(query || '');
          const main = $('#main');
          main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
          const fail = e => main.replaceChildren(h('p', { class: 'error' }, String(e.message || e)));
          if (path.startsWith('/run/')) view = runView(main, decodeURIComponent(path.slice(5)), params, fail);
          else if (path === '/compare') view = compareView(main, params, fail);
          else view = runsView(main, params, fail);
        }
        function throttled(fn, ms) {
          let timer = null, again = false;
          return () => {
            if (timer) { again = true; return; }
            fn();
            timer = setTimeout(() => { timer = null; if (again) { again = false; fn(); } }, ms);
          };
        }

        // The runs table.
        function runsView(main, params, fail) {
          const state = { where: params.get('where') || '', project: params.get('project') || '', group: params.get('group') || '',
                          sort: params.get('sort') || '', desc: params.get('desc') === '1', selected: new Set(), data: null,
                          page: 0, pageSize: 100 };
          const whereInput = h('input', { type: 'text', id: 'where', placeholder: '{"parameters.lr": {"$gt": 0.01}}', value: state.where });
          const projectSelect = h('select', { id: 'project' }, h('option', { value: '' }, 'all projects'));
          const groupSelect = h('select', { id: 'group' }, h('option', { value: '' }, 'all groups'));
          const compare = h('button', { id: 'compare', disabled: true, onclick: () => {
            location.hash = '#/compare?runs=' + [...state.selected].map(encodeURIComponent).join(',');
          } }, 'Compare selected');
          const count = h('span', { class: 'muted', id: 'count' });
          // Pages of 100 rows: a browser lays out a thousand rows in about a second on a small
          // machine; sorting and filtering still cover every run.
          const pager = h('span', { class: 'pager' });
          const turn = page => { state.page = page; render(); };
          const table = h('table', { id: 'runs' });
          table.addEventListener('change', event => {
            const row = event.target.closest('tr[data-uid]');
            if (!row || event.target.type !== 'checkbox') return;
            if (event.target.checked) state.selected.add(row.dataset.uid); else state.selected.delete(row.dataset.uid);
            compare.disabled = state.selected.size === 0;
          });
          const message = h('p', { class: 'error' });
          const apply = () => {
            state.where = whereInput.value.trim(); state.project = projectSelect.value; state.group = groupSelect.value; state.page = 0;
            const q = new URLSearchParams();
            for (const k of ['where', 'project', 'group']) if (state[k]) q.set(k, state[k]);
            if (state.sort) { q.set('sort', state.sort); if (state.desc) q.set('desc', '1'); }
            history.replaceState(null, '', '#/?' + q);
            load();
          };
          whereInput.addEventListener('keydown', e => { if (e.key === 'Enter') apply(); });
          projectSelect.addEventListener('change', apply);
          groupSelect.addEventListener('change', apply);
          main.replaceChildren(h('h2', {}, 'Runs'),
            h('div', { class: 'controls' }, projectSelect, groupSelect, h('label', {}, 'query ', whereInput),
              h('button', { onclick: apply }, 'Filter'), compare, count, pager), message, table);
          api('/api/projects').then(p => {
            for (const x of p.projects) projectSelect.append(h('option', { value: x.uid, selected: x.uid === state.project }, `${x.name} (${x.trials})`));
            for (const g of p.groups) groupSelect.append(h('option', { value: g.uid, selected: g.uid === state.group }, `${g.name} · ${g.project} (${g.trials})`));
          }).catch(fail);
          function sortValue(run, key) {
            if (key === 'name') return run.name || '';
            if (key === 'status') return run.status;
            if (key.startsWith('p:')) return run.parameters[key.slice(2)];
            if (key.startsWith('m:')) { const m = run.metrics[key.slice(2)]; return m ? num(m.last) : null; }
            return run[key];
          }
          function render() {
            const d = state.data;
            const runs = [...d.runs];
            if (state.sort) {
              runs.sort((a, b) => {
                const x = sortValue(a, state.sort), y = sortValue(b, state.sort);
                if (x === y) return 0;
                if (x === null || x === undefined) return 1;
                if (y === null || y === undefined) return -1;
                const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
                return state.desc ? -c : c;
              });
            }
            count.textContent = `${runs.length} of ${d.total} runs`;
            const pages = state.pageSize ? Math.max(1, Math.ceil(runs.length / state.pageSize)) : 1;
            state.page = Math.min(state.page, pages - 1);
            const shown = state.pageSize ? runs.slice(state.page * state.pageSize, (state.page + 1) * state.pageSize) : runs;
            pager.replaceChildren(...(pages > 1 ? [
              h('button', { id: 'previous', disabled: state.page === 0, onclick: () => turn(state.page - 1) }, '‹'),
              ` rows ${state.page * state.pageSize + 1}–${state.page * state.pageSize + shown.length} `,
              h('button', { id: 'next', disabled: state.page === pages - 1, onclick: () => turn(state.page + 1) }, '›'), ' ',
              h('button', { id: 'all', onclick: () => { state.pageSize = 0; state.page = 0; render(); } }, 'show all')] : []));
            const header = (key, text) => h('th', { class: state.sort === key ? (state.desc ? 'sorted desc' : 'sorted') : null, onclick: () => {
              state.desc = state.sort === key ? !state.desc : false; state.sort = key; state.page = 0; render();
            } }, text);
            const head = h('tr', {}, h('th', {}, ''), header('name', 'name'), h('th', {}, 'id'), header('status', 'status'),
              header('project', 'project'), ...d.differing.map(p => header('p:' + p, p)), h('th', {}, 'tags'),
              ...d.metrics.map(m => header('m:' + m, m)));
            // The body as one HTML string (a thousand rows in one parse), every text escaped;
            // the checkboxes answer through one listener on the table.
            const e = esc;
            const body = shown.map(run => '<tr data-uid="' + e(run.uid) + '">' +
              '<td><input type="checkbox"' + (state.selected.has(run.uid) ? ' checked' : '') + '></td>' +
              '<td><a href="#/run/' + e(encodeURIComponent(run.uid)) + '">' + e(run.name || '(no name)') + '</a></td>' +
              '<td class="muted">' + e(run.short) + '</td>' +
              '<td class="status-' + e(run.status) + '">' + e(run.status) + '</td>' +
              '<td>' + e(run.project || '') + '</td>' +
              d.differing.map(p => '<td class="num">' + e(fmt(run.parameters[p])) + '</td>').join('') +
              '<td>' + e(Object.entries(run.tags).map(([k, v]) => v === true ? k : `${k}=${fmt(v)}`).join(' ')) + '</td>' +
              d.metrics.map(m => {
                const s = run.metrics[m];
                if (!s) return '<td></td>';
                return '<td class="num" title="' + e(`${s.count} points, last at step ${fmt(s.step)}`) + '">' + e(fmt(s.last)) +
                  (s.min !== null ? '<span class="range">' + e(`${fmt(s.min)} – ${fmt(s.max)}`) + '</span>' : '') + '</td>';
              }).join('') + '</tr>').join('');
            const tbody = h('tbody');
            tbody.innerHTML = body;
            table.replaceChildren(h('thead', {}, head), tbody);
          }
          function load() {
            const q = new URLSearchParams();
            for (const k of ['where', 'project', 'group']) if (state[k]) q.set(k, state[k]);
            return api('/api/runs?' + q).then(d => {
              performance.mark('runs-fetched');
              message.textContent = ''; state.data = d; render();
              performance.mark('runs-rendered');
              requestAnimationFrame(() => setTimeout(() => performance.mark('runs-painted')));
            })
              .catch(e => { message.textContent = String(e.message || e); });
          }
          load();
          return { update: throttled(load, 500) };
        }

        // One run: what it is, and a chart per metric.
        function runView(main, uid, params, fail) {
          const state = { x: params.get('x') || 'step', log: params.get('log') === '1', smooth: Number(params.get('smooth') || 0), plots: new Map() };
          const head = h('div');
          const details = h('div', { class: 'details' });
          const grid = h('div', { class: 'charts' });
          const xSelect = h('select', { id: 'x' }, h('option', { value: 'step', selected: state.x === 'step' }, 'x: step'), h('option', { value: 'time', selected: state.x === 'time' }, 'x: time'));
          const logBox = h('input', { type: 'checkbox', id: 'log', checked: state.log });
          const smoothRange = h('input', { type: 'range', id: 'smooth', min: 0, max: 0.99, step: 0.01, value: state.smooth });
          const reconfigure = () => {
            state.x = xSelect.value; state.log = logBox.checked; state.smooth = Number(smoothRange.value);
            history.replaceState(null, '', `#/run/${encodeURIComponent(uid)}?x=${state.x}&log=${state.log ? 1 : 0}&smooth=${state.smooth}`);
            for (const name of state.plots.keys()) loadSeries(name);
          };
          xSelect.addEventListener('change', reconfigure); logBox.addEventListener('change', reconfigure); smoothRange.addEventListener('input', reconfigure);
          // The curves first, what the run is below them.
          main.replaceChildren(head, h('div', { class: 'controls' }, xSelect, h('label', {}, logBox, ' log scale'), h('label', {}, 'smoothing ', smoothRange)), grid, details);
          function kv(object) {
            const entries = Object.entries(object || {});
            if (!entries.length) return h('p', { class: 'muted' }, 'none');
            return h('dl', { class: 'kv' }, entries.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, fmt(v))]));
          }
          function chrono(value) {
            if (value && typeof value === 'object' && 'avg' in value) return `avg ${fmt(value.avg)} s over ${value.count ?? '?'} (min ${fmt(value.min)}, max ${fmt(value.max)})`;
            return fmt(value);
          }
          function renderInfo(run) {
            const t = run.trial;
            const metadata = Object.fromEntries(Object.entries(t.metadata || {}).filter(([k]) => !k.startsWith('_')));
            const changed = run.trial.metadata && run.trial.metadata._last_change;
            head.replaceChildren(h('h2', {}, t.name || '(no name)', ' ', h('span', { class: 'muted' }, run.short), ' ', h('span', { class: 'status-' + run.status, id: 'status' }, run.status)));
            details.replaceChildren(...[
              h('section', {}, h('h3', {}, 'Run'), h('dl', { class: 'kv' }, h('dt', {}, 'uid'), h('dd', {}, run.uid), h('dt', {}, 'project'), h('dd', {}, t.project_id || ''),
                h('dt', {}, 'group'), h('dd', {}, t.group_id || ''), h('dt', {}, 'version'), h('dd', {}, fmt(t.version)),
                h('dt', {}, 'last change'), h('dd', {}, typeof changed === 'number' ? new Date(changed * 1000).toLocaleString() : ''))),
              h('section', {}, h('h3', {}, 'Parameters'), kv(t.parameters)),
              h('section', {}, h('h3', {}, 'Metadata'), kv(metadata)),
              h('section', {}, h('h3', {}, 'Tags'), kv(t.tags)),
              h('section', {}, h('h3', {}, 'Chronos'), Object.keys(t.chronos || {}).length
                ? h('dl', { class: 'kv' }, Object.entries(t.chronos).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, chrono(v))])) : h('p', { class: 'muted' }, 'none')),
              (t.errors || []).length ? h('section', {}, h('h3', {}, 'Errors'), h('pre', { class: 'error' }, t.errors.join('\n'))) : null].filter(Boolean));
            for (const name of Object.keys(run.metrics)) {
              if (!state.plots.has(name)) {
                const plot = h('div', { class: 'plot' });
                const legend = h('div', { class: 'legend' });
                const box = h('div', { class: 'chart', 'data-metric': name }, h('h3', {}, name, ' ', h('span', { class: 'muted count' }, '')), plot, legend);
                grid.append(box);
                state.plots.set(name, { plot, legend, box, graph: null });
                loadSeries(name);
              }
            }
          }
          function loadSeries(name) {
            const p = state.plots.get(name);
            const width = Math.max(200, Math.round(p.plot.clientWidth || 600));
            return Promise.all([api(`/api/series?trial=${encodeURIComponent(uid)}&metric=${encodeURIComponent(name)}&x=${state.x}&width=${width}`), loadDygraph()]).then(([curve]) => {
              const rows = mergeCurves([curve], state.x, state.smooth);
              p.box.dataset.points = curve.count;
              $('.count', p.box).textContent = `${curve.count} points`;
              const options = chartOptions([state.x, name], state.x, state.log, { labelsDiv: p.legend, file: rows });
              if (!rows.length) return;
              if (p.graph) p.graph.updateOptions(options);
              else { p.graph = new Dygraph(p.plot, rows, options); charts.push(p.graph); }
            }).catch(fail);
          }
          const loadRun = () => api('/api/runs/' + encodeURIComponent(uid)).then(renderInfo).catch(fail);
          loadRun();
          const refreshInfo = throttled(loadRun, 500);
          const pending = new Set();
          const refreshSeries = throttled(() => { for (const m of pending) if (state.plots.has(m)) loadSeries(m); pending.clear(); }, 250);
          return { update: u => {
            if (u.trials.includes(uid)) refreshInfo();
            const mine = u.series.filter(s => s.trial === uid);
            for (const s of mine) pending.add(s.metric);
            if (mine.length) refreshSeries();
          } };
        }

        // Several runs on one chart: a metric, x by step or time, smoothing, log scale, and
        // optionally grouped by a parameter (mean, with the min–max band of the group's runs).
        function compareView(main, params, fail) {
          const uids = (params.get('runs') || '').split(',').filter(Boolean).map(decodeURIComponent);
          const state = { metric: params.get('metric') || '', x: params.get('x') || 'step', log: params.get('log') === '1',
                          smooth: Number(params.get('smooth') || 0), group: params.get('group') || '', runs: [], differing: [], graph: null };
          const metricSelect = h('select', { id: 'metric' });
          const xSelect = h('select', { id: 'x' }, h('option', { value: 'step', selected: state.x === 'step' }, 'x: step'), h('option', { value: 'time', selected: state.x === 'time' }, 'x: time'));
          const groupSelect = h('select', { id: 'groupby' }, h('option', { value: '' }, 'no grouping'));
          const logBox = h('input', { type: 'checkbox', id: 'log', checked: state.log });
          const smoothRange = h('input', { type: 'range', id: 'smooth', min: 0, max: 0.99, step: 0.01, value: state.smooth });
          const plot = h('div', { class: 'plot big' });
          const legend = h('div', { class: 'legend' });
          const box = h('div', { class: 'chart', id: 'compare-chart' }, plot, legend);
          main.replaceChildren(h('h2', {}, `Compare ${uids.length} runs`),
            h('div', { class: 'controls' }, metricSelect, xSelect, groupSelect, h('label', {}, logBox, ' log scale'), h('label', {}, 'smoothing ', smoothRange)), box);
          const reconfigure = () => {
            state.metric = metricSelect.value; state.x = xSelect.value; state.log = logBox.checked; state.smooth = Number(smoothRange.value); state.group = groupSelect.value;
            const q = new URLSearchParams({ runs: uids.join(','), metric: state.metric, x: state.x, log: state.log ? 1 : 0, smooth: state.smooth });
            if (state.group) q.set('group', state.group);
            history.replaceState(null, '', '#/compare?' + q);
            draw();
          };
          for (const c of [metricSelect, xSelect, groupSelect, logBox]) c.addEventListener('change', reconfigure);
          smoothRange.addEventListener('input', reconfigure);
          const label = run => [run.name || run.short, ...state.differing.map(p => `${p}=${fmt(run.parameters[p])}`)].join(' ');
          function draw() {
            const runs = state.runs.filter(r => r.metrics[state.metric]);
            if (!runs.length) { legend.textContent = `none of these runs has the metric ${state.metric}`; return; }
            const width = Math.max(200, Math.round(plot.clientWidth || 800));
            Promise.all([loadDygraph(), ...runs.map(r => api(`/api/series?trial=${encodeURIComponent(r.uid)}&metric=${encodeURIComponent(state.metric)}&x=${state.x}&width=${width}`))]).then(([, ...curves]) => {
              box.dataset.points = curves.reduce((a, c) => a + c.count, 0);
              let rows, labels, extra = { labelsDiv: legend };
              if (state.group) {
                // One line per value of the parameter: the mean of its runs, with their min–max band.
                const groups = new Map();
                runs.forEach((r, i) => {
                  const key = fmt(r.parameters[state.group]);
                  if (!groups.has(key)) groups.set(key, []);
                  groups.get(key).push(i);
                });
                const merged = mergeCurves(curves, state.x, state.smooth);
                const keys = [...groups.keys()];
                rows = merged.map(row => [row[0], ...keys.map(k => {
                  const vs = groups.get(k).map(i => row[i + 1]).filter(v => v !== null && isFinite(v));
                  if (!vs.length) return null;
                  return [Math.min(...vs), vs.reduce((a, b) => a + b, 0) / vs.length, Math.max(...vs)];
                })]);
                labels = [state.x, ...keys.map(k => `${state.group}=${k} (${groups.get(k).length})`)];
                extra.customBars = true;
              } else {
                rows = mergeCurves(curves, state.x, state.smooth);
                labels = [state.x, ...runs.map(label)];
              }
              const options = chartOptions(labels, state.x, state.log, Object.assign(extra, { file: rows, legend: 'always' }));
              if (state.graph) { state.graph.destroy(); charts = charts.filter(c => c !== state.graph); }
              state.graph = new Dygraph(plot, rows, options);
              charts.push(state.graph);
            }).catch(fail);
          }
          api('/api/runs').then(d => {
            state.runs = d.runs.filter(r => uids.includes(r.uid));
            if (!state.runs.length) throw new Error('none of these runs is in the database');
            state.differing = d.differing.filter(p => new Set(state.runs.map(r => fmt(r.parameters[p]))).size > 1);
            const metrics = [...new Set(state.runs.flatMap(r => Object.keys(r.metrics)))];
            if (!state.metric || !metrics.includes(state.metric)) state.metric = metrics[0] || '';
            for (const m of metrics) metricSelect.append(h('option', { value: m, selected: m === state.metric }, m));
            for (const p of state.differing) groupSelect.append(h('option', { value: p, selected: p === state.group }, 'group by ' + p));
            draw();
          }).catch(fail);
          const redraw = throttled(draw, 500);
          return { update: u => { if (u.series.some(s => uids.includes(s.trial) && s.metric === state.metric)) redraw(); } };
        }

        window.addEventListener('hashchange', route);
        info();
        listen();
        route();
        """#
}
