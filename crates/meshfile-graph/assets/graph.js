// meshfile graph: pan, zoom, search, and click a node to highlight what it reaches.
(function () {
  "use strict";
  var svg = document.getElementById("graph");
  var scene = document.getElementById("scene");
  var full = svg.viewBox.baseVal;
  var view = {};
  // The first view: the whole picture when it fits the window's shape; else its full width,
  // from the top, at the window's proportions (a tall picture is scrolled, not shrunk).
  function home() {
    var aspect = svg.clientHeight / Math.max(1, svg.clientWidth) || 0.6;
    if (full.height / full.width <= aspect) {
      view = { x: full.x, y: full.y, w: full.width, h: full.height };
    } else {
      view = { x: full.x, y: full.y, w: full.width, h: full.width * aspect };
    }
    apply();
  }
  var nodes = {}, byId = {}, out = {}, edgesOut = {};
  Array.prototype.forEach.call(document.querySelectorAll(".n"), function (g) {
    nodes[g.id] = g;
    byId[g.getAttribute("data-id")] = g.id;
    out[g.id] = [];
    edgesOut[g.id] = [];
  });
  Array.prototype.forEach.call(document.querySelectorAll(".e"), function (p) {
    var f = p.getAttribute("data-f"), t = p.getAttribute("data-t");
    if (out[f]) { out[f].push(t); edgesOut[f].push(p); }
  });
  function apply() { svg.setAttribute("viewBox", view.x + " " + view.y + " " + view.w + " " + view.h); }
  function clear() {
    svg.classList.remove("focus");
    Array.prototype.forEach.call(document.querySelectorAll(".reach,.selected,.match"), function (el) {
      el.classList.remove("reach", "selected", "match");
    });
  }
  // What a node reaches: every node on a path of edges leaving it.
  function reach(start) {
    var seen = {}, stack = [start], edges = [];
    seen[start] = true;
    while (stack.length) {
      var v = stack.pop();
      out[v].forEach(function (w, i) {
        edges.push(edgesOut[v][i]);
        if (!seen[w]) { seen[w] = true; stack.push(w); }
      });
    }
    return { nodes: Object.keys(seen), edges: edges };
  }
  function describe(g) {
    var title = g.querySelector("title");
    var lines = (title ? title.textContent : "").split("\n");
    lines.splice(1, 0, "id: " + g.getAttribute("data-id"));
    document.getElementById("details-text").textContent = lines.join("\n");
  }
  function select(domId) {
    clear();
    var g = nodes[domId];
    if (!g) return [];
    var r = reach(domId);
    svg.classList.add("focus");
    r.nodes.forEach(function (id) { nodes[id].classList.add("reach"); });
    r.edges.forEach(function (p) { p.classList.add("reach"); });
    g.classList.add("selected");
    describe(g);
    document.getElementById("details-reach").textContent =
      "reaches " + (r.nodes.length - 1) + " node" + (r.nodes.length === 2 ? "" : "s");
    return r.nodes.map(function (id) { return nodes[id].getAttribute("data-id"); });
  }
  // Marks the nodes of a finding (their element ids).
  function mark(domIds) {
    clear();
    svg.classList.add("focus");
    domIds.forEach(function (d) { if (nodes[d]) nodes[d].classList.add("reach", "match"); });
    if (domIds.length && nodes[domIds[0]]) center(nodes[domIds[0]]);
  }
  function center(g) {
    var box = g.getBBox(), m = g.transform.baseVal.consolidate();
    var x = (m ? m.matrix.e : 0) + box.width / 2, y = (m ? m.matrix.f : 0) + box.height / 2;
    view.w = Math.min(view.w, Math.max(600, full.width / 4));
    view.h = view.w * svg.clientHeight / Math.max(1, svg.clientWidth);
    view.x = x - view.w / 2; view.y = y - view.h / 2;
    apply();
  }
  function search(text) {
    clear();
    var q = text.trim().toLowerCase(), found = [];
    if (q) {
      Object.keys(nodes).forEach(function (id) {
        var g = nodes[id];
        if (g.getAttribute("data-id").toLowerCase().indexOf(q) >= 0) { g.classList.add("match", "reach"); found.push(g); }
      });
      svg.classList.add("focus");
      if (found.length) center(found[0]);
    }
    document.getElementById("count").textContent = q ? found.length + " found" : "";
    return found.map(function (g) { return g.getAttribute("data-id"); });
  }
  svg.addEventListener("click", function (e) {
    var g = e.target.closest ? e.target.closest(".n") : null;
    if (g) { select(g.id); } else if (!moved) { clear(); }
  });
  var dragging = null, moved = false;
  svg.addEventListener("pointerdown", function (e) {
    dragging = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y }; moved = false;
  });
  window.addEventListener("pointermove", function (e) {
    if (!dragging) return;
    var scale = view.w / Math.max(1, svg.clientWidth);
    var dx = e.clientX - dragging.x, dy = e.clientY - dragging.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { moved = true; svg.classList.add("panning"); }
    view.x = dragging.vx - dx * scale; view.y = dragging.vy - dy * scale;
    apply();
  });
  window.addEventListener("pointerup", function () { dragging = null; svg.classList.remove("panning"); });
  svg.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = svg.getBoundingClientRect();
    var px = view.x + (e.clientX - r.left) / r.width * view.w, py = view.y + (e.clientY - r.top) / r.height * view.h;
    var k = e.deltaY > 0 ? 1.15 : 1 / 1.15;
    view.w *= k; view.h *= k;
    view.x = px - (px - view.x) * k; view.y = py - (py - view.y) * k;
    apply();
  }, { passive: false });
  var input = document.getElementById("search");
  input.addEventListener("input", function () { search(input.value); });
  document.getElementById("reset").addEventListener("click", function () {
    input.value = ""; clear(); home();
    document.getElementById("count").textContent = "";
  });
  Array.prototype.forEach.call(document.querySelectorAll("#findings li"), function (li) {
    li.addEventListener("click", function () { mark(li.getAttribute("data-nodes").split(" ")); });
  });
  home();
  // For scripts and tests: the same functions the page's controls call.
  window.meshGraph = {
    select: function (id) { return select(byId[id]); },
    search: search,
    highlighted: function () {
      return Array.prototype.map.call(document.querySelectorAll(".n.reach"), function (g) { return g.getAttribute("data-id"); });
    },
    nodeId: function (id) { return byId[id]; }
  };
})();
