// The Saga ledger chart: accepted, placed, terminal and in-flight orders over time, with the
// fault windows shaded (the open one labelled "now"). Polls ./saga-ledger.json (harness.live's
// monitor, served by harness/load/webui.py) and draws plain SVG: no library, no network.
// On Locust's own page it sits above the Saga ledger tab's table while that tab is shown; on
// /saga-ledger it fills #saga-ledger-chart and the table below it.
(function () {
  "use strict";
  // key in the JSON, legend, colour, line width (wider first: equal lines stay visible)
  const SERIES = [
    ["accepted", "accepted", "#4e9fe5", 5],
    ["placed", "placed", "#f2a03d", 3],
    ["terminal", "terminal (completed + cancelled)", "#5cc26f", 2],
    ["in_flight", "in flight (whole system)", "#e5616b", 2],
  ];
  const W = 960, H = 300, L = 60, R = 20, T = 44, B = 28;
  const TAB = "saga-ledger";
  let last = null;

  function esc(s) {
    return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }

  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1))));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function clock(t) {
    return new Date(t * 1000).toTimeString().slice(0, 8);
  }

  function draw(el, d) {
    const s = d.series, t = s.t;
    if (!t.length) {
      el.innerHTML = '<p class="saga-ledger-empty">no figures yet</p>';
      return;
    }
    const t0 = t[0], t1 = Math.max(d.now, t[t.length - 1], t0 + 1);
    let top = 1;
    for (const [k] of SERIES) for (const v of s[k]) if (v != null && v > top) top = v;
    top = niceMax(top);
    const x = (v) => L + ((v - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => H - B - (v / top) * (H - T - B);
    const out = [];
    out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="saga-ledger-chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="Saga ledger over time" style="max-width:${W}px;font:12px system-ui,sans-serif">`);
    // fault windows: a band each, labelled where the label fits (the hover title always);
    // the faults on now are darker and named in full at the top right
    const active = [];
    d.faults.forEach((f, i) => {
      const a = Math.max(f.started_at, t0), b = f.ended_at == null ? t1 : Math.min(f.ended_at, t1);
      if (b < t0 || a > t1) return;
      const on = f.ended_at == null, width = Math.max(x(b) - x(a), 2);
      if (on && !active.includes(f.label)) active.push(f.label);
      out.push(`<rect class="fault${on ? " active" : ""}" x="${x(a).toFixed(1)}" y="${T}" width="${width.toFixed(1)}" height="${H - T - B}" fill="#b07aa1" fill-opacity="${on ? 0.32 : 0.18}"><title>${esc((on ? "now: " : "") + f.label)}</title></rect>`);
      const room = Math.floor((width - 6) / 6.5);
      if (!on && room >= 6) {
        const label = f.label.length > room ? f.label.slice(0, room - 1) + "…" : f.label;
        out.push(`<text class="fault-label" x="${(x(a) + 3).toFixed(1)}" y="${T + 14 + (i % 2) * 14}" fill="#c99ac0">${esc(label)}</text>`);
      }
    });
    if (active.length) {
      out.push(`<text class="fault-label active" x="${W - R}" y="${T - 6}" text-anchor="end" fill="#c99ac0" font-weight="bold">fault now: ${esc(active.join(", "))}</text>`);
    }
    for (const frac of [0, 0.25, 0.5, 0.75, 1]) {
      const v = top * frac, yy = y(v).toFixed(1);
      out.push(`<line x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}" stroke="currentColor" stroke-opacity="0.15"/>`);
      out.push(`<text x="${L - 6}" y="${yy}" dy="4" text-anchor="end" fill="currentColor">${Math.round(v).toLocaleString()}</text>`);
    }
    for (let i = 0; i <= 4; i++) {
      const tt = t0 + ((t1 - t0) * i) / 4;
      out.push(`<text x="${x(tt).toFixed(1)}" y="${H - 8}" text-anchor="${i === 0 ? "start" : i === 4 ? "end" : "middle"}" fill="currentColor">${clock(tt)}</text>`);
    }
    let lx = L;
    for (const [k, name, color, width] of SERIES) {
      const pts = [];
      s[k].forEach((v, j) => { if (v != null) pts.push(`${x(t[j]).toFixed(1)},${y(v).toFixed(1)}`); });
      out.push(`<polyline class="series ${k}" data-series="${k}" fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round" points="${pts.join(" ")}"/>`);
      const now = s[k].filter((v) => v != null).pop();
      const text = `${name}: ${now == null ? "-" : now.toLocaleString()}`;
      out.push(`<g class="legend" data-series="${k}"><rect x="${lx}" y="9" width="16" height="5" fill="${color}"/><text x="${lx + 22}" y="16" fill="currentColor">${esc(text)}</text></g>`);
      lx += 40 + text.length * 6.5;
    }
    out.push("</svg>");
    el.innerHTML = out.join("");
  }

  function table(d) {
    const body = document.querySelector("#saga-ledger-table tbody");
    if (!body) return;
    body.innerHTML = "";
    for (const row of d.rows) {
      const tr = document.createElement("tr");
      for (const k of ["metric", "value", "note"]) {
        const td = document.createElement("td");
        td.textContent = row[k];
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  // On Locust's page: a container above the tab's table while the tab is shown, none otherwise.
  function container() {
    const own = document.getElementById("saga-ledger-chart");
    if (document.getElementById("saga-ledger-table")) return own;
    const shown = new URLSearchParams(location.search).get("tab") === TAB;
    const tableBox = document.querySelector(".MuiTableContainer-root");
    if (!shown || !tableBox) {
      if (own) own.remove();
      return null;
    }
    if (own && own.nextElementSibling === tableBox) return own;
    if (own) own.remove();
    const el = document.createElement("div");
    el.id = "saga-ledger-chart";
    el.style.margin = "0 0 1em 0";
    tableBox.parentElement.insertBefore(el, tableBox);
    if (last) draw(el, last);
    return el;
  }

  async function tick() {
    try {
      const r = await fetch("saga-ledger.json", { cache: "no-store" });
      last = await r.json();
    } catch (e) {
      return;
    }
    const el = container();
    if (el) draw(el, last);
    table(last);
  }

  tick();
  setInterval(tick, 2000);
  setInterval(container, 500);
})();
