"""The service's page (Korean and English): drop or choose images, see each with its top labels as bars."""

PAGE = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>__TITLE__</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,'Noto Sans KR',sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
#drop{border:2px dashed #89a;border-radius:10px;padding:2em;text-align:center;background:#f7f9fb;cursor:pointer}
#drop.over{background:#e8f0fe}.result{display:flex;gap:1em;margin:1em 0;align-items:flex-start}
.result img{width:160px;height:160px;object-fit:cover;border-radius:6px;border:1px solid #ddd}
.bars{flex:1}.row{margin:.3em 0}.name{font-size:.95em}.bar{background:#e5e9f0;border-radius:4px;height:14px}
.fill{background:#3b82f6;height:14px;border-radius:4px}.err{color:#b91c1c}small{color:#667}
</style></head><body>
<h1>이미지 분류 <small>Image classification</small></h1>
<p>이미지를 끌어다 놓거나 선택하세요. <small>Drop images here or choose them.</small></p>
<p id="classes"><small>클래스 / Classes: __CLASSES__</small></p>
<div id="drop" tabindex="0">📷 이미지 선택 / Choose images
<input id="files" type="file" accept="image/*" multiple hidden></div>
<p><small id="status"></small></p>
<div id="results"></div>
<script>
const params = new URLSearchParams(location.search);
const key = params.get("api_key");
const drop = document.getElementById("drop"), input = document.getElementById("files");
const status = document.getElementById("status"), results = document.getElementById("results");
drop.addEventListener("click", () => input.click());
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); send(e.dataTransfer.files); });
input.addEventListener("change", () => send(input.files));
async function send(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  status.textContent = "분류 중… / Classifying…";
  const headers = key ? {"X-API-Key": key} : {};
  const response = await fetch("predict?top_k=3", {method: "POST", body: form, headers});
  const data = await response.json();
  status.textContent = "";
  if (!response.ok) { results.prepend(message(data.detail || response.statusText)); return; }
  const batch = document.createDocumentFragment();  // newest request on top, its images in upload order
  data.forEach((item, i) => batch.appendChild(card(files[i], item)));
  results.prepend(batch);
}
function message(text) { const p = document.createElement("p"); p.className = "err";
  p.textContent = "오류 / Error: " + text; return p; }
function card(file, item) {
  const div = document.createElement("div"); div.className = "result";
  const img = document.createElement("img"); img.src = URL.createObjectURL(file); img.alt = item.path;
  const bars = document.createElement("div"); bars.className = "bars";
  const title = document.createElement("div"); title.textContent = item.path; title.style.fontWeight = "600";
  bars.appendChild(title);
  if (item.error) { bars.appendChild(message(item.error)); div.appendChild(bars); return div; }
  for (const t of item.top) {
    const row = document.createElement("div"); row.className = "row";
    const name = document.createElement("div"); name.className = "name label";
    name.textContent = t.label + " — " + (100 * t.probability).toFixed(1) + "%";
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("div"); fill.className = "fill";
    fill.style.width = (100 * t.probability).toFixed(1) + "%";
    bar.appendChild(fill); row.appendChild(name); row.appendChild(bar); bars.appendChild(row);
  }
  div.appendChild(img); div.appendChild(bars); return div;
}
</script></body></html>
"""
