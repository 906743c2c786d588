// roofseg review: the queue of buildings, keys to decide, decisions posted one by one.
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const q = (s) => document.querySelector(s);
const COLOURS = { accept: "#2a9d3a", reject: "#d62828", skip: "#999999" };
let features = [], order = [], position = 0, layers = {}, current = null;

const map = L.map("map", { zoomSnap: 0.5, maxZoom: 24, preferCanvas: true });  // canvas: 10,000 outlines stay fluid

function style(f) {
  const d = f.properties.decision;
  const here = current && f.properties.key === current;
  return { color: here ? "#00b4ff" : COLOURS[d] || "#ffd400", weight: here ? 4 : 2,
           fillOpacity: d === "accept" || d === "reject" ? 0.3 : 0.05 };
}

async function api(path, options = {}) {
  const headers = Object.assign({ "X-Roofseg-Token": token }, options.headers || {});
  const response = await fetch(path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token),
                               Object.assign({}, options, { headers }));
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function sortQueue(kind) {
  order = features.map((f, i) => i);
  if (kind === "area") order.sort((a, b) => features[b].properties.area_m2 - features[a].properties.area_m2);
  else order.sort((a, b) => (features[a].properties.confidence ?? 2) - (features[b].properties.confidence ?? 2));
}

function show(zoom) {
  const f = features[order[position]];
  if (!f) return;
  const before = current;
  current = f.properties.key;
  for (const key of [before, current]) if (key && layers[key]) layers[key].setStyle(style(layers[key].feature));
  const p = f.properties;
  q("#what").textContent = `${position + 1} of ${features.length}: ${p.area_m2} m², confidence ` +
    (p.confidence === null ? "unknown" : p.confidence.toFixed(2)) + (p.decision ? ` (${p.decision})` : "");
  if (zoom) map.fitBounds(layers[current].getBounds(), { maxZoom: 21, padding: [80, 80] });
  progress();
}

function progress() {
  const done = features.filter((f) => f.properties.decision).length;
  q("#count").textContent = `${done} of ${features.length} reviewed`;
  q("#bar").style.width = `${(100 * done) / Math.max(features.length, 1)}%`;
}

async function decide(decision) {
  const f = features[order[position]];
  if (!f) return;
  const answer = await api("/api/decide", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify({ key: f.properties.key, decision }) });
  f.properties.decision = answer.decision;
  layers[f.properties.key].setStyle(style(f));
  if (position < order.length - 1) position += 1;
  show(true);
}

function nextUndecided() {
  const k = order.findIndex((i, n) => n > position && !features[i].properties.decision);
  if (k >= 0) { position = k; show(true); }
}

document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.toLowerCase();
  if (key === "a") decide("accept");
  else if (key === "r") decide("reject");
  else if (key === "s") decide("skip");
  else if (key === "b" && position > 0) { position -= 1; show(true); }
  else if (key === "z") show(true);
  else if (key === "n") nextUndecided();
  else return;
  e.preventDefault();
});
q("#accept").onclick = () => decide("accept");
q("#reject").onclick = () => decide("reject");
q("#skip").onclick = () => decide("skip");
q("#order").onchange = (e) => { sortQueue(e.target.value); position = 0; show(true); };
for (const kind of ["osm", "geojson", "gpkg"]) q(`#export-${kind}`).href = `/export.${kind}?token=${encodeURIComponent(token)}`;
q("#josm").onclick = async () => {
  // JOSM's remote control (Preferences > Remote Control) loads the export as a new layer
  const url = `${location.origin}/export.osm?token=${encodeURIComponent(token)}`;
  try {
    await fetch(`http://127.0.0.1:8111/import?new_layer=true&layer_name=roofseg%20review&url=${encodeURIComponent(url)}`);
    q("#josm-said").textContent = "sent to JOSM";
  } catch (err) {
    q("#josm-said").textContent = "JOSM did not answer: start it and turn on its remote control";
  }
};

(async function start() {
  const state = await api("/api/review");
  features = state.buildings.features;
  state.scenes.forEach((s, k) => {
    L.tileLayer(`/tiles/${k}/{z}/{x}/{y}.png?token=${encodeURIComponent(token)}`,
                { minZoom: 0, maxZoom: 24, maxNativeZoom: s.maxzoom, bounds: [[s.bounds[1], s.bounds[0]], [s.bounds[3], s.bounds[2]]] }).addTo(map);
  });
  const geo = L.geoJSON(state.buildings, { style, onEachFeature: (f, l) => {
    layers[f.properties.key] = l;
    l.on("click", () => { position = order.indexOf(features.indexOf(f)); show(false); });
  } }).addTo(map);
  map.fitBounds(geo.getBounds());
  sortQueue("confidence");
  position = Math.max(0, order.findIndex((i) => !features[i].properties.decision));  // resume where it was
  show(true);
  document.body.dataset.ready = "1";
})().catch((err) => { q("#count").textContent = "failed: " + err.message; });
