namespace OpenPool.Engine.OpenApi;

/// <summary>
/// A self-contained API explorer: it reads /openapi.json and lets a visitor call any endpoint with
/// their key. No CDN or bundled front-end, so it works on an operator's air-gapped network.
/// </summary>
internal static class DocsPage
{
    public const string Html = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>OpenPool — TensorPool API</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1d1d1f; }
  h1 { font-size: 1.5rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
  details { border: 1px solid #e3e3e3; border-radius: 6px; margin: .4rem 0; padding: .3rem .6rem; }
  summary { cursor: pointer; font-family: ui-monospace, monospace; }
  .m { display: inline-block; width: 4.5rem; font-weight: bold; }
  .GET { color: #0a7d36; } .POST { color: #0055b3; } .DELETE { color: #b3261e; } .PATCH { color: #8a5a00; } .PUT { color: #6a1b9a; }
  textarea, input { font-family: ui-monospace, monospace; width: 100%; box-sizing: border-box; }
  pre { background: #f6f6f6; padding: .6rem; overflow: auto; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>OpenPool — TensorPool API</h1>
<p>The machine-readable description is at <a href="/openapi.json">/openapi.json</a>.
Paste an API key to try calls from this page.</p>
<label>API key <input id="key" placeholder="tpk_..." autocomplete="off"></label>
<div id="ops">Loading…</div>
<script>
(async () => {
  const doc = await (await fetch('/openapi.json')).json();
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths || {}))
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ['other'])[0];
      (byTag[tag] = byTag[tag] || []).push({ path, method: method.toUpperCase(), op });
    }
  const root = document.getElementById('ops');
  root.textContent = '';
  for (const tag of Object.keys(byTag).sort()) {
    const h = document.createElement('h2'); h.textContent = tag; root.appendChild(h);
    for (const { path, method, op } of byTag[tag]) {
      const d = document.createElement('details');
      const s = document.createElement('summary');
      s.innerHTML = `<span class="m ${method}">${method}</span>`;
      s.append(path + (op.summary ? ' — ' + op.summary : ''));
      d.appendChild(s);
      if (op.description) { const p = document.createElement('p'); p.textContent = op.description; d.appendChild(p); }
      const url = document.createElement('input'); url.value = path; d.appendChild(url);
      let body = null;
      if (op.requestBody) { body = document.createElement('textarea'); body.rows = 4; body.value = '{}'; d.appendChild(body); }
      const go = document.createElement('button'); go.textContent = 'Send'; d.appendChild(go);
      const out = document.createElement('pre'); d.appendChild(out);
      go.onclick = async () => {
        const headers = { 'Authorization': 'Bearer ' + document.getElementById('key').value };
        if (body) headers['Content-Type'] = 'application/json';
        const r = await fetch(url.value, { method, headers, body: body ? body.value : undefined });
        const text = await r.text();
        const retry = r.headers.get('Retry-After');
        out.textContent = `${r.status} ${r.statusText}${retry ? '  (Retry-After: ' + retry + ')' : ''}\n` + text;
      };
      root.appendChild(d);
    }
  }
})();
</script>
</body>
</html>
""";
}
