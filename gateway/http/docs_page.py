"""A self-contained API reference page at /docs: renders /openapi.json with no CDN, no framework."""

from __future__ import annotations

from aiohttp import web

from gateway.http.openapi import Operation, operation

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Streaming asset gateway API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ddd}
.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.4rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:600;text-transform:uppercase}
.get{color:#06c}.post{color:#080}.put{color:#a60}.delete{color:#c00}
code{background:#f4f4f4;padding:0 .25rem;border-radius:3px} summary{cursor:pointer}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:13px}
</style></head><body>
<h1 id="title">API</h1><p id="desc"></p><div id="ops">Loading /openapi.json…</div>
<script>
fetch("openapi.json").then(r => r.json()).then(spec => {
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  document.getElementById("desc").textContent = spec.info.description || "";
  const byTag = {};
  for (const [path, ops] of Object.entries(spec.paths))
    for (const [method, op] of Object.entries(ops))
      (byTag[(op.tags || ["other"])[0]] ||= []).push([method, path, op]);
  const root = document.getElementById("ops"); root.textContent = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    const h = document.createElement("h2"); h.textContent = tag; root.appendChild(h);
    for (const [method, path, op] of ops) {
      const d = document.createElement("details"); d.className = "op";
      const s = document.createElement("summary");
      const m = document.createElement("span"); m.className = "m " + method; m.textContent = method;
      const c = document.createElement("code"); c.textContent = path;
      s.append(m, c, " ", op.summary || ""); d.appendChild(s);
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody,
                                        responses: op.responses}, null, 2);
      d.appendChild(pre); root.appendChild(d);
    }
  }
  const h = document.createElement("h2"); h.textContent = "schemas"; root.appendChild(h);
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(spec.components.schemas, null, 2); root.appendChild(pre);
});
</script></body></html>
"""


@operation(
    Operation(
        summary="Human-readable API reference (works offline)",
        tag="operations",
        public=True,
        responses={200: "HTML page"},
        errors=(),
    )
)
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=PAGE,
        content_type="text/html",
        headers={
            "Content-Security-Policy": (
                "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
            )
        },
    )
