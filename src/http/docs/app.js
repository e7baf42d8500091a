// Renders /openapi.json: every operation grouped by tag, with parameters, request body,
// responses (schemas with $refs resolved) and authentication. No dependencies, no network
// beyond this server; text goes in through textContent only.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete", "head", "options", "trace"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

// "#/components/schemas/Project" → the schema object, or null.
function resolve(doc, ref) {
  if (!ref.startsWith("#/")) return null;
  let node = doc;
  for (const part of ref.slice(2).split("/")) {
    node = node && node[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return node || null;
}

function refName(ref) {
  return ref.split("/").pop();
}

function typeLabel(doc, schema) {
  if (!schema) return "any";
  if (schema.$ref) return refName(schema.$ref);
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  const parts = types.map((t) => {
    if (t === "array") return "array of " + typeLabel(doc, schema.items);
    if (t === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
      return "map of " + typeLabel(doc, schema.additionalProperties);
    }
    return t;
  });
  if (schema.enum) parts.push("one of " + schema.enum.map((v) => JSON.stringify(v)).join(", "));
  if (schema.oneOf) parts.push("one of");
  if (schema.allOf) parts.push("all of");
  let label = parts.join(" | ") || "any";
  if (schema.format) label += " (" + schema.format + ")";
  const bounds = [];
  if (schema.minimum !== undefined) bounds.push("≥ " + schema.minimum);
  if (schema.maximum !== undefined) bounds.push("≤ " + schema.maximum);
  if (schema.default !== undefined) bounds.push("default " + JSON.stringify(schema.default));
  if (bounds.length) label += ", " + bounds.join(", ");
  return label;
}

// A schema as a nested list; `seen` stops at a $ref already being expanded (recursion).
function renderSchema(doc, schema, seen = new Set()) {
  const list = el("ul", { class: "schema" });
  if (!schema) return list;
  if (schema.$ref) {
    if (seen.has(schema.$ref)) {
      list.append(el("li", {}, el("span", { class: "type" }, refName(schema.$ref)), " (see above)"));
      return list;
    }
    const target = resolve(doc, schema.$ref);
    if (!target) throw new Error("unresolved $ref " + schema.$ref);
    const inner = new Set(seen).add(schema.$ref);
    const item = el("li", {}, el("span", { class: "type" }, refName(schema.$ref)));
    if (target.description) item.append(" ", el("span", { class: "desc" }, target.description));
    item.append(renderSchema(doc, target, inner));
    list.append(item);
    return list;
  }
  for (const key of ["allOf", "oneOf", "anyOf"]) {
    if (!schema[key]) continue;
    const item = el("li", {}, el("span", { class: "type" }, key === "allOf" ? "all of:" : "one of:"));
    for (const sub of schema[key]) item.append(renderSchema(doc, sub, seen));
    list.append(item);
  }
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  for (const [name, prop] of Object.entries(props)) {
    const item = el(
      "li",
      {},
      el("span", { class: "prop" }, name),
      " ",
      el("span", { class: "type" }, typeLabel(doc, prop)),
      required.has(name) ? el("span", { class: "req" }, "required") : null
    );
    if (prop.description) item.append(" — ", el("span", { class: "desc" }, prop.description));
    const nested = prop.$ref ? prop : prop.items && prop.items.$ref ? prop.items : null;
    if (nested || prop.properties || prop.allOf || prop.oneOf) {
      item.append(renderSchema(doc, nested || prop, seen));
    }
    list.append(item);
  }
  if (!Object.keys(props).length && !schema.allOf && !schema.oneOf && !schema.anyOf) {
    list.append(el("li", {}, el("span", { class: "type" }, typeLabel(doc, schema))));
  }
  return list;
}

function renderContent(doc, content) {
  const box = el("div");
  for (const [mediaType, media] of Object.entries(content || {})) {
    box.append(el("div", { class: "mono" }, mediaType));
    if (media.schema) box.append(renderSchema(doc, media.schema));
  }
  return box;
}

function renderParameters(doc, params) {
  const table = el(
    "table",
    {},
    el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description")))
  );
  const body = el("tbody");
  for (const raw of params) {
    const p = raw.$ref ? resolve(doc, raw.$ref) : raw;
    if (!p) throw new Error("unresolved parameter $ref " + raw.$ref);
    body.append(
      el(
        "tr",
        {},
        el("td", {}, el("span", { class: "prop" }, p.name), p.required ? el("span", { class: "req" }, "required") : null),
        el("td", {}, p.in),
        el("td", {}, el("span", { class: "type" }, typeLabel(doc, p.schema))),
        el("td", { class: "desc" }, p.description || "")
      )
    );
  }
  table.append(body);
  return table;
}

function renderSecurity(doc, op) {
  const requirements = op.security || doc.security || [];
  const schemes = (doc.components && doc.components.securitySchemes) || {};
  const list = el("ul", { class: "schema" });
  if (!requirements.length) list.append(el("li", {}, "none"));
  for (const req of requirements) {
    const names = Object.keys(req);
    if (!names.length) {
      list.append(el("li", {}, "none (credentials in the body instead)"));
      continue;
    }
    for (const name of names) {
      const s = schemes[name] || {};
      const kind = s.type === "http" ? "HTTP " + s.scheme : s.type || "unknown";
      list.append(el("li", {}, el("span", { class: "prop" }, name), " ", el("span", { class: "type" }, kind), s.description ? " — " : "", s.description ? el("span", { class: "desc" }, s.description) : null));
    }
  }
  return list;
}

function renderOperation(doc, method, path, op) {
  const id = "op-" + slug(method + " " + path);
  const summary = el(
    "summary",
    {},
    el("span", { class: "method " + method }, method.toUpperCase()),
    el("span", { class: "path" }, path),
    op.summary ? el("span", { class: "summary" }, op.summary) : null,
    el("a", { class: "anchor", href: "#" + id, title: "Link to this operation" }, "#")
  );
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", { class: "desc-block" }, op.description));
  body.append(el("h4", {}, "Authentication"), renderSecurity(doc, op));
  if (op.parameters && op.parameters.length) body.append(el("h4", {}, "Parameters"), renderParameters(doc, op.parameters));
  if (op.requestBody) {
    const rb = op.requestBody.$ref ? resolve(doc, op.requestBody.$ref) : op.requestBody;
    body.append(el("h4", {}, "Request body" + (rb.required ? " (required)" : "")), renderContent(doc, rb.content));
  }
  body.append(el("h4", {}, "Responses"));
  const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "description"))));
  const rows = el("tbody");
  for (const [status, raw] of Object.entries(op.responses || {})) {
    const r = raw.$ref ? resolve(doc, raw.$ref) : raw;
    if (!r) throw new Error("unresolved response $ref " + raw.$ref);
    const cell = el("td", {}, el("span", { class: "desc" }, r.description || ""));
    if (r.headers) {
      cell.append(renderParameters(doc, Object.entries(r.headers).map(([name, h]) => ({ name, in: "header", ...h }))));
    }
    if (r.content) cell.append(renderContent(doc, r.content));
    rows.append(el("tr", {}, el("td", {}, el("span", { class: "status s" + status[0] }, status)), cell));
  }
  table.append(rows);
  body.append(table);
  return el("details", { class: "op", id, "data-op": method.toUpperCase() + " " + path }, summary, body);
}

function render(doc) {
  document.getElementById("title").textContent = doc.info.title + " API " + doc.info.version;
  document.title = doc.info.title + " API " + doc.info.version;
  document.getElementById("subtitle").textContent = doc.info.description || "";

  const groups = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const name = (op.tags && op.tags[0]) || "Other";
      if (!groups.has(name)) groups.set(name, { tag: { name }, ops: [] });
      groups.get(name).ops.push([method, path, op]);
    }
  }

  const main = document.getElementById("content");
  const navList = el("ul");
  let count = 0;
  for (const { tag, ops } of groups.values()) {
    if (!ops.length) continue;
    const id = "tag-" + slug(tag.name);
    navList.append(el("li", {}, el("a", { href: "#" + id }, tag.name + " (" + ops.length + ")")));
    const section = el("section", { class: "tag", id }, el("h2", {}, tag.name));
    if (tag.description) section.append(el("p", {}, tag.description));
    for (const [method, path, op] of ops) {
      section.append(renderOperation(doc, method, path, op));
      count += 1;
    }
    main.append(section);
  }
  document.getElementById("nav").append(navList);
  const status = document.getElementById("status");
  status.textContent = count + " operations, OpenAPI " + doc.openapi + ".";
  status.dataset.state = "ready";
  // Links to one operation (#op-get-v1-…) open it.
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target && target.tagName === "DETAILS") {
    target.open = true;
    target.scrollIntoView();
  }
}

async function main() {
  const status = document.getElementById("status");
  try {
    const res = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error("GET /openapi.json answered " + res.status);
    render(await res.json());
  } catch (e) {
    status.textContent = "Could not render the API documentation: " + e.message;
    status.dataset.state = "error";
  }
}

main();
