// The streamflow console: the app's topology, live throughput and lag, and a table browser.
// Everything comes from the worker's JSON API (/topology, /stats, /tables); no libraries.
(function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 2000;
  const PAGE_SIZE = 20;
  const ROLE_ORDER = ["source", "repartition", "retry", "sink", "changelog", "dead-letter"];
  const KIND_CAPTIONS = {
    source: "source topic",
    sink: "sink topic",
    repartition: "repartition topic",
    retry: "retry topic",
    table: "table",
  };

  const $ = (selector) => document.querySelector(selector);

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svgElement(tag, attributes) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  // Every request answers {ok, status, body}; a body that is not JSON is null.
  async function getJSON(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    return { ok: response.ok, status: response.status, body };
  }

  function errorMessage(result) {
    return (result.body && result.body.error) || "HTTP " + result.status;
  }

  function formatValue(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function formatCount(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
  }

  function formatRate(rate) {
    if (rate === null || rate === undefined) return "—";
    return rate < 10 ? rate.toFixed(1) : Math.round(rate).toLocaleString("en-US");
  }

  function setStatus(state, text) {
    const status = $("#status");
    status.dataset.state = state;
    status.textContent = text;
  }

  // ---------------------------------------------------------------- topology layout

  const LINE_HEIGHT = 15;
  const CHAR_WIDTH = 7;
  const MAX_LINE = 24;
  const COLUMN_GAP = 56;
  const ROW_GAP = 22;
  const MARGIN = 16;
  // Room for the live line ("in 1,234/s · out 1,234/s · lag 12") of topics and tables.
  const LIVE_WIDTH = { source: 150, sink: 120, repartition: 190, table: 110 };

  // Long topic names wrap at their separators so that columns stay narrow.
  function wrapLabel(label) {
    const lines = [];
    let line = "";
    for (const part of label.split(/(?<=[-_.])/)) {
      if (line && (line + part).length > MAX_LINE) {
        lines.push(line);
        line = "";
      }
      line += part;
    }
    if (line) lines.push(line);
    return lines;
  }

  function caption(node) {
    if (node.kind === "operator") return node.operator || "operator";
    return KIND_CAPTIONS[node.kind] || node.kind;
  }

  // Edges closing a cycle (a topic the app writes and reads back upstream) are drawn apart
  // and left out of the layering; they are found by a depth-first walk from the sources.
  function findBackEdges(nodes, successors) {
    const state = new Map();
    const back = new Set();
    const visit = (start) => {
      const stack = [[start, 0]];
      state.set(start, "open");
      while (stack.length) {
        const top = stack[stack.length - 1];
        const next = (successors.get(top[0]) || [])[top[1]++];
        if (next === undefined) {
          state.set(top[0], "done");
          stack.pop();
        } else if (state.get(next) === "open") {
          back.add(top[0] + "\u0000" + next);
        } else if (!state.has(next)) {
          state.set(next, "open");
          stack.push([next, 0]);
        }
      }
    };
    const hasInput = new Set();
    for (const targets of successors.values()) targets.forEach((t) => hasInput.add(t));
    nodes.filter((n) => !hasInput.has(n.id)).forEach((n) => state.has(n.id) || visit(n.id));
    nodes.forEach((n) => state.has(n.id) || visit(n.id));
    return back;
  }

  // Layers by longest path from the sources, then a few barycentre sweeps to order each
  // layer so that edges cross less.
  function layout(graph) {
    const successors = new Map(graph.nodes.map((n) => [n.id, []]));
    for (const edge of graph.edges) {
      if (successors.has(edge.from) && successors.has(edge.to))
        successors.get(edge.from).push(edge.to);
    }
    const back = findBackEdges(graph.nodes, successors);
    const isBack = (edge) => back.has(edge.from + "\u0000" + edge.to);
    const forward = graph.edges.filter(
      (e) => successors.has(e.from) && successors.has(e.to) && !isBack(e),
    );

    const layerOf = new Map(graph.nodes.map((n) => [n.id, 0]));
    const indegree = new Map(graph.nodes.map((n) => [n.id, 0]));
    forward.forEach((e) => indegree.set(e.to, indegree.get(e.to) + 1));
    const queue = graph.nodes.filter((n) => indegree.get(n.id) === 0).map((n) => n.id);
    while (queue.length) {
      const id = queue.shift();
      for (const e of forward) {
        if (e.from !== id) continue;
        layerOf.set(e.to, Math.max(layerOf.get(e.to), layerOf.get(id) + 1));
        indegree.set(e.to, indegree.get(e.to) - 1);
        if (indegree.get(e.to) === 0) queue.push(e.to);
      }
    }

    const boxes = graph.nodes.map((node) => {
      const lines = wrapLabel(node.label);
      const longest = Math.max(caption(node).length, ...lines.map((l) => l.length));
      const extra = node.kind === "operator" ? 0 : 1; // a live line under topics and tables
      return {
        node,
        lines,
        layer: layerOf.get(node.id),
        width: Math.max(LIVE_WIDTH[node.kind] || 96, longest * CHAR_WIDTH + 28),
        height: 16 + (lines.length + 1 + extra) * LINE_HEIGHT,
      };
    });
    const layerCount = Math.max(0, ...boxes.map((b) => b.layer)) + 1;
    const layers = Array.from({ length: layerCount }, () => []);
    boxes.forEach((b) => layers[b.layer].push(b));

    const byId = new Map(boxes.map((b) => [b.node.id, b]));
    const position = (b) => layers[b.layer].indexOf(b);
    const sweep = (layer, neighbours) => {
      const weight = new Map();
      layer.forEach((b, i) => {
        const near = neighbours(b.node.id)
          .map((id) => byId.get(id))
          .filter(Boolean);
        weight.set(b, near.length ? near.reduce((s, n) => s + position(n), 0) / near.length : i);
      });
      layer.sort((a, b) => weight.get(a) - weight.get(b));
    };
    const preds = (id) => forward.filter((e) => e.to === id).map((e) => e.from);
    const succs = (id) => forward.filter((e) => e.from === id).map((e) => e.to);
    for (let round = 0; round < 4; round++) {
      for (let i = 1; i < layerCount; i++) sweep(layers[i], preds);
      for (let i = layerCount - 2; i >= 0; i--) sweep(layers[i], succs);
    }

    const columnHeights = layers.map(
      (l) => l.reduce((s, b) => s + b.height, 0) + ROW_GAP * (l.length - 1),
    );
    const height = Math.max(...columnHeights, 0);
    let x = MARGIN;
    layers.forEach((layer, i) => {
      const columnWidth = Math.max(...layer.map((b) => b.width));
      let y = MARGIN + (height - columnHeights[i]) / 2;
      for (const b of layer) {
        b.x = x + (columnWidth - b.width) / 2;
        b.y = y;
        y += b.height + ROW_GAP;
      }
      x += columnWidth + COLUMN_GAP;
    });
    const hasBack = graph.edges.some(isBack);
    return {
      boxes,
      byId,
      edges: graph.edges
        .filter((e) => byId.has(e.from) && byId.has(e.to))
        .map((e) => ({ ...e, back: isBack(e) })),
      width: x - COLUMN_GAP + MARGIN,
      height: height + 2 * MARGIN + (hasBack ? 40 : 0),
      contentBottom: height + MARGIN,
    };
  }

  // ---------------------------------------------------------------- topology drawing

  function shapeFor(box) {
    const { x, y, width: w, height: h } = box;
    switch (box.node.kind) {
      case "source":
      case "sink":
        return svgElement("rect", { x, y, width: w, height: h, rx: 14, ry: 14, class: "shape" });
      case "repartition":
      case "retry": {
        const d = 12;
        const points = [
          [x + d, y],
          [x + w - d, y],
          [x + w, y + h / 2],
          [x + w - d, y + h],
          [x + d, y + h],
          [x, y + h / 2],
        ];
        return svgElement("polygon", {
          points: points.map((p) => p.join(",")).join(" "),
          class: "shape",
        });
      }
      case "table": {
        const r = 6;
        const d =
          `M${x},${y + r} a${w / 2},${r} 0 0,0 ${w},0 a${w / 2},${r} 0 0,0 ${-w},0 ` +
          `v${h - 2 * r} a${w / 2},${r} 0 0,0 ${w},0 v${-(h - 2 * r)}`;
        return svgElement("path", { d, class: "shape" });
      }
      default:
        return svgElement("rect", { x, y, width: w, height: h, rx: 3, ry: 3, class: "shape" });
    }
  }

  function drawNode(box) {
    const node = box.node;
    const group = svgElement("g", {
      class: "node kind-" + node.kind,
      "data-id": node.id,
      "data-kind": node.kind,
    });
    if (node.topic) group.setAttribute("data-topic", node.topic);
    if (node.table) group.setAttribute("data-table", node.table);
    const title = svgElement("title");
    const where =
      node.subtopology === null ? "between sub-topologies" : "sub-topology " + node.subtopology;
    const steps = node.steps.join(", ") || "—";
    title.textContent = `${node.label} (${caption(node)}, ${where}; steps: ${steps})`;
    group.appendChild(title);
    group.appendChild(shapeFor(box));
    const centre = box.x + box.width / 2;
    let y = box.y + 10 + LINE_HEIGHT;
    for (const line of box.lines) {
      const text = svgElement("text", { x: centre, y, class: "label" });
      text.textContent = line;
      group.appendChild(text);
      y += LINE_HEIGHT;
    }
    const kind = svgElement("text", { x: centre, y, class: "caption" });
    kind.textContent = caption(node);
    group.appendChild(kind);
    if (node.kind !== "operator") {
      const live = svgElement("text", { x: centre, y: y + LINE_HEIGHT, class: "live" });
      group.appendChild(live);
    }
    if (node.table) {
      group.addEventListener("click", () => chooseTable(node.table));
    }
    return group;
  }

  function edgePath(edge, model) {
    const a = model.byId.get(edge.from);
    const b = model.byId.get(edge.to);
    if (edge.back) {
      const bottom = model.contentBottom + 30;
      const sx = a.x + a.width / 2;
      const tx = b.x + b.width / 2;
      const ty = b.y + b.height + 6;
      return `M${sx},${a.y + a.height} C${sx},${bottom} ${tx},${bottom} ${tx},${ty}`;
    }
    const sx = a.x + a.width;
    const sy = a.y + a.height / 2;
    const tx = b.x - 6;
    const ty = b.y + b.height / 2;
    const bend = Math.max(24, (tx - sx) / 2);
    return `M${sx},${sy} C${sx + bend},${sy} ${tx - bend},${ty} ${tx},${ty}`;
  }

  function drawTopology(graph) {
    if (!graph.nodes.length) {
      $("#topology").replaceChildren(
        element("p", { class: "muted" }, "this app declares no streams or tables"),
      );
      return;
    }
    const model = layout(graph);
    // Shrinks to the panel's width (never grows past its natural size); see console.css.
    const svg = svgElement("svg", {
      viewBox: `0 0 ${model.width} ${model.height}`,
      width: model.width,
      height: model.height,
      style: `max-width: ${model.width}px`,
      role: "img",
      "aria-label": "topology of " + graph.app,
    });
    const defs = svgElement("defs");
    const marker = svgElement("marker", {
      id: "arrow",
      viewBox: "0 0 10 10",
      refX: 1,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto",
    });
    marker.appendChild(svgElement("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
    defs.appendChild(marker);
    svg.appendChild(defs);
    for (const edge of model.edges) {
      svg.appendChild(
        svgElement("path", {
          d: edgePath(edge, model),
          class: edge.back ? "edge back" : "edge",
          "marker-end": "url(#arrow)",
          "data-from": edge.from,
          "data-to": edge.to,
        }),
      );
    }
    model.boxes.forEach((box) => svg.appendChild(drawNode(box)));
    $("#topology").replaceChildren(svg);
  }

  async function loadTopology() {
    try {
      const result = await getJSON("topology");
      if (!result.ok) throw new Error(errorMessage(result));
      $("#app-name").textContent = result.body.app;
      document.title = "streamflow · " + result.body.app;
      drawTopology(result.body);
    } catch (error) {
      $("#topology").replaceChildren(
        element("p", { class: "error" }, "topology unavailable: " + error.message),
      );
    }
  }

  // ---------------------------------------------------------------- throughput and lag

  const stats = { previous: null, tableKeys: new Map() };

  function rates(current, previous) {
    const result = new Map();
    if (!previous) return result;
    const seconds = current.time - previous.time;
    if (!(seconds > 0)) return result;
    const before = new Map(previous.topics.map((t) => [t.topic, t]));
    for (const topic of current.topics) {
      const old = before.get(topic.topic);
      if (!old) continue;
      const din = topic.records_in_total - old.records_in_total;
      const dout = topic.records_out_total - old.records_out_total;
      // A counter that went down means the worker restarted: no rate this round.
      result.set(topic.topic, {
        in: din >= 0 ? din / seconds : null,
        out: dout >= 0 ? dout / seconds : null,
      });
    }
    return result;
  }

  function renderThroughput(current, perTopic) {
    const order = (role) => ROLE_ORDER.indexOf(role) + 1 || ROLE_ORDER.length + 1;
    const topics = [...current.topics].sort(
      (a, b) => order(a.role) - order(b.role) || a.topic.localeCompare(b.topic),
    );
    const rows = topics.map((t) => {
      const rate = perTopic.get(t.topic) || {};
      const row = element("tr", { "data-topic": t.topic, "data-role": t.role });
      row.appendChild(element("td", {}, t.topic));
      row.appendChild(element("td", { class: "role role-" + t.role }, t.role));
      row.appendChild(element("td", { class: "num rate-in" }, formatRate(rate.in)));
      row.appendChild(element("td", { class: "num rate-out" }, formatRate(rate.out)));
      row.appendChild(element("td", { class: "num lag" }, formatCount(t.lag)));
      row.appendChild(element("td", { class: "num" }, formatCount(t.records_in_total)));
      row.appendChild(element("td", { class: "num" }, formatCount(t.records_out_total)));
      return row;
    });
    $("#throughput tbody").replaceChildren(...rows);
  }

  function annotateTopology(current, perTopic) {
    const byTopic = new Map(current.topics.map((t) => [t.topic, t]));
    for (const group of document.querySelectorAll("#topology g.node[data-topic]")) {
      const topic = byTopic.get(group.dataset.topic);
      const live = group.querySelector("text.live");
      if (!topic || !live) continue;
      const rate = perTopic.get(topic.topic) || {};
      const kind = group.dataset.kind;
      const parts = [];
      if (topic.records_in_total > 0 || kind !== "sink")
        parts.push("in " + formatRate(rate.in) + "/s");
      if (topic.records_out_total > 0 || kind !== "source")
        parts.push("out " + formatRate(rate.out) + "/s");
      if (topic.lag !== null && topic.lag !== undefined)
        parts.push("lag " + formatCount(topic.lag));
      live.textContent = parts.join(" · ");
    }
    for (const group of document.querySelectorAll("#topology g.node[data-table]")) {
      const live = group.querySelector("text.live");
      const keys = stats.tableKeys.get(group.dataset.table);
      if (live && keys !== undefined) live.textContent = formatCount(keys) + " keys";
    }
  }

  async function refreshStats() {
    try {
      const result = await getJSON("stats");
      if (!result.ok) throw new Error(errorMessage(result));
      const current = result.body;
      const perTopic = rates(current, stats.previous);
      stats.previous = current;
      stats.tableKeys = new Map((current.tables || []).map((t) => [t.table, t.keys]));
      renderThroughput(current, perTopic);
      annotateTopology(current, perTopic);
      showTableInfo();
      const when = new Date(current.time * 1000).toLocaleTimeString();
      const readiness = current.ready ? "ready" : "not ready (rebalancing or recovering)";
      setStatus(
        current.ready ? "ready" : "not-ready",
        `${readiness} · ${current.worker} · ${when}`,
      );
    } catch (error) {
      setStatus("unreachable", "worker unreachable: " + error.message);
    } finally {
      window.setTimeout(refreshStats, REFRESH_MS);
    }
  }

  // ---------------------------------------------------------------- tables

  const tables = { byName: new Map(), browse: null };

  function showTableInfo() {
    const table = tables.byName.get($("#lookup-table").value);
    if (!table) {
      $("#table-info").textContent = "";
      return;
    }
    const parts = [
      `${table.key_type} → ${table.value_type}`,
      `${table.partitions} partitions`,
      `changelog ${table.changelog}`,
      `${Object.keys(table.workers || {}).length} worker(s)`,
    ];
    const keys = stats.tableKeys.get(table.name);
    if (keys !== undefined) parts.push(`${formatCount(keys)} keys here`);
    $("#table-info").textContent = parts.join(" · ");
  }

  function chooseTable(name) {
    const select = $("#lookup-table");
    if (![...select.options].some((o) => o.value === name)) {
      select.appendChild(element("option", { value: name }, name));
    }
    select.value = name;
    onTableChange();
  }

  function onTableChange() {
    showTableInfo();
    tables.browse = null;
    $("#browse-items tbody").replaceChildren();
    $("#browse-items").dataset.state = "idle";
    $("#browse-next").disabled = true;
    $("#browse-status").textContent = "";
  }

  async function loadTables() {
    const select = $("#lookup-table");
    try {
      const result = await getJSON("tables");
      if (!result.ok) throw new Error(errorMessage(result));
      tables.byName = new Map(result.body.tables.map((t) => [t.name, t]));
      select.replaceChildren(
        ...result.body.tables.map((t) => element("option", { value: t.name }, t.name)),
      );
      if (!result.body.tables.length) $("#table-info").textContent = "this app has no tables";
    } catch (error) {
      $("#table-info").textContent = "tables unavailable: " + error.message;
    }
    showTableInfo();
  }

  function tablePath(table, key) {
    const base = "tables/" + encodeURIComponent(table);
    return key === undefined ? base : base + "/" + encodeURIComponent(key);
  }

  function showLookup(state, children) {
    const box = $("#lookup-result");
    box.dataset.state = state;
    box.replaceChildren(...children);
  }

  async function lookup() {
    const table = $("#lookup-table").value;
    const key = $("#lookup-key").value;
    if (!table || key === "") {
      showLookup("error", [
        element("p", { class: "error" }, table ? "enter a key" : "choose a table"),
      ]);
      return;
    }
    const url = new URL(window.location.href);
    url.searchParams.set("table", table);
    url.searchParams.set("key", key);
    window.history.replaceState(null, "", url);
    showLookup("pending", [element("p", { class: "muted" }, "looking up…")]);
    try {
      const result = await getJSON(tablePath(table, key));
      if (!result.ok) {
        showLookup("error", [
          element(
            "p",
            { class: "error", "data-status": result.status },
            `${result.status}: ${errorMessage(result)}`,
          ),
        ]);
        return;
      }
      const body = result.body;
      const line = element("p", { class: "found" });
      line.appendChild(
        element("code", { class: "key", "data-field": "key" }, formatValue(body.key)),
      );
      line.appendChild(document.createTextNode(" = "));
      line.appendChild(
        element("code", { class: "value", "data-field": "value" }, formatValue(body.value)),
      );
      line.appendChild(element("span", { class: "muted" }, ` (partition ${body.partition})`));
      showLookup("found", [line]);
    } catch (error) {
      showLookup("error", [element("p", { class: "error" }, "request failed: " + error.message)]);
    }
  }

  async function browse(after) {
    const table = $("#lookup-table").value;
    if (!table) return;
    if (!after) tables.browse = { table, prefix: $("#browse-prefix").value, page: 0, next: null };
    const state = tables.browse;
    const query = new URLSearchParams({ prefix: state.prefix, limit: String(PAGE_SIZE) });
    if (after) query.set("after", after);
    const items = $("#browse-items");
    items.dataset.state = "pending";
    $("#browse-next").disabled = true;
    const result = await getJSON(tablePath(state.table) + "?" + query).catch((error) => ({
      ok: false,
      status: 0,
      body: { error: error.message },
    }));
    if (tables.browse !== state) return; // the table was changed meanwhile
    if (!result.ok) {
      items.dataset.state = "error";
      $("#browse-status").textContent = errorMessage(result);
      return;
    }
    state.page += 1;
    state.next = result.body.next;
    const rows = result.body.items.map((item) => {
      const row = element("tr", { "data-key": formatValue(item.key) });
      const keyCell = element("td");
      const open = element("button", { type: "button", class: "link" }, formatValue(item.key));
      open.addEventListener("click", () => {
        $("#lookup-key").value = formatValue(item.key);
        lookup();
      });
      keyCell.appendChild(open);
      row.appendChild(keyCell);
      row.appendChild(element("td", { class: "value" }, formatValue(item.value)));
      return row;
    });
    if (!rows.length) {
      rows.push(element("tr", { class: "empty" }));
      rows[0].appendChild(
        element(
          "td",
          { colspan: "2" },
          state.prefix ? `no keys starting with ${state.prefix}` : "no keys",
        ),
      );
    }
    $("#browse-items tbody").replaceChildren(...rows);
    items.dataset.state = "loaded";
    $("#browse-next").disabled = !state.next;
    $("#browse-status").textContent = `page ${state.page}` + (state.next ? "" : " (last)");
  }

  // ---------------------------------------------------------------- start

  async function start() {
    $("#lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      lookup();
    });
    $("#browse-form").addEventListener("submit", (event) => {
      event.preventDefault();
      browse(null);
    });
    $("#browse-next").addEventListener(
      "click",
      () => tables.browse && tables.browse.next && browse(tables.browse.next),
    );
    $("#lookup-table").addEventListener("change", onTableChange);

    loadTopology();
    refreshStats();
    await loadTables();
    const params = new URLSearchParams(window.location.search);
    if (params.get("table")) chooseTable(params.get("table"));
    if (params.get("key") !== null) {
      $("#lookup-key").value = params.get("key");
      lookup();
    }
  }

  start();
})();
