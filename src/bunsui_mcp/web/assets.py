"""The inbox's stylesheet and its one small script, served from the server itself (no CDN,
no build step; the content security policy allows nothing else)."""

from __future__ import annotations

CSS = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8;
  --accent: #0b57d0; --ok: #146c2e; --bad: #a50e0e; --warn: #7a4b00; --bg: #fff; --card: #f6f7f9; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); overflow-wrap: anywhere; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 8px; z-index: 2; }
header.top { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center;
  justify-content: space-between; padding: 12px 16px; border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 700; color: var(--ink); text-decoration: none; }
header.top form { display: inline; }
main { max-width: 960px; margin: 0 auto; padding: 8px 16px 48px; }
h1 { font-size: 1.5rem; margin: 16px 0 8px; }
h2 { font-size: 1.2rem; margin: 28px 0 8px; }
ul.tickets { list-style: none; padding: 0; margin: 0; display: grid; gap: 10px; }
ul.tickets li { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px; }
.what { font-weight: 600; }
.meta { color: var(--muted); font-size: .92rem; margin: 2px 0 0; }
.badge { display: inline-block; border: 1px solid currentColor; border-radius: 999px;
  padding: 0 8px; font-size: .85rem; font-weight: 600; }
.s-pending, .s-approved, .s-executing { color: var(--warn); }
.s-executed { color: var(--ok); }
.s-failed, .s-rejected, .s-expired, .s-cancelled { color: var(--bad); }
dl.value, dl.facts { margin: 4px 0; }
dl.facts > div, dl.value > div { display: grid;
  grid-template-columns: minmax(7rem, 30%) minmax(0, 1fr);
  gap: 4px 12px; padding: 3px 0; border-bottom: 1px dotted var(--line); }
dl.value dl.value { border-left: 2px solid var(--line); padding-left: 8px; }
dl.value dl.value dl.value > div { grid-template-columns: minmax(0, 1fr); gap: 0; }
dt { font-weight: 600; }
dd { margin: 0; min-width: 0; }
ol.value { margin: 0; padding-left: 1.4rem; }
code, pre { font: .9rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: #eceff3; border-radius: 3px; padding: 0 3px; white-space: pre-wrap; }
.list code { display: inline-block; margin: 1px 2px 1px 0; }
pre { white-space: pre-wrap; background: #eceff3; padding: 8px; border-radius: 6px; }
.none { color: var(--muted); font-style: italic; }
.effect { margin-top: 6px; border-top: 1px solid var(--line); padding-top: 4px; font-size: .92rem; }
.effect summary { cursor: pointer; font-weight: 600; color: var(--accent); min-height: 32px;
  padding: 4px 0; }
.before code { background: #fde7e9; text-decoration: line-through; }
.after code { background: #e3f4e8; }
.summary { font-size: 1.05rem; font-weight: 600; background: #fff8e1;
  border-left: 4px solid var(--warn); padding: 8px 10px; }
.notice { border: 1px solid var(--line); border-left: 4px solid var(--accent); padding: 8px 12px;
  margin: 12px 0; background: var(--card); }
.notice.error { border-left-color: var(--bad); }
.notice.ok { border-left-color: var(--ok); }
.decide { display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
.decide form { border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
label { display: block; font-weight: 600; margin-bottom: 4px; }
textarea, input[type=password], input[type=text] { width: 100%; font: inherit; padding: 8px;
  border: 1px solid #6b6b6b; border-radius: 6px; }
button { font: inherit; font-weight: 600; min-height: 44px; padding: 8px 16px;
  border-radius: 6px; border: 1px solid #444; background: #fff; color: var(--ink);
  cursor: pointer; margin-top: 8px; }
button.approve { background: var(--ok); border-color: var(--ok); color: #fff; }
button.reject { background: var(--bad); border-color: var(--bad); color: #fff; }
button.link { min-height: 0; padding: 4px 10px; margin: 0; }
.live-status { color: var(--muted); font-size: .85rem; min-height: 1.2em; }
@media (max-width: 480px) {
  dl.facts > div, dl.value > div { grid-template-columns: minmax(4.5rem, 36%) minmax(0, 1fr);
    gap: 2px 8px; }
  dl.value dl.value > div { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dl.value dl.value { padding-left: 6px; }
  main { padding: 4px 12px 32px; }
}
"""

SCRIPT = """
(() => {
  const source_url = document.body.dataset.liveSrc;
  if (!source_url || !window.EventSource) return;
  const status = document.getElementById('live-status');
  let timer = null;
  async function refresh() {
    let response;
    try {
      response = await fetch(source_url, {credentials: 'same-origin'});
    } catch (error) { return; }
    if (response.redirected || response.status === 401) { location.reload(); return; }
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
    const open = new Set([...document.querySelectorAll('details[open][data-key]')]
      .map(d => d.dataset.key));
    for (const region of document.querySelectorAll('[data-live]')) {
      const update = fresh.getElementById(region.id);
      const typing = region.contains(document.activeElement) &&
        document.activeElement.matches('textarea, input');
      if (update && !typing && update.innerHTML !== region.innerHTML) {
        region.innerHTML = update.innerHTML;
      }
    }
    for (const details of document.querySelectorAll('details[data-key]')) {
      if (open.has(details.dataset.key)) details.open = true;
    }
    if (status) status.textContent = 'Updated at ' + new Date().toLocaleTimeString();
  }
  const events = new EventSource('/approvals/events');
  events.addEventListener('change', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  });
})();
"""
