// transferlab studio: the page's behaviour (no framework, nothing loaded from elsewhere).
const T = {
  ko: {title: "transferlab 스튜디오", classes: "클래스와 이미지", classesHint: "클래스마다 이미지를 끌어다 놓거나 선택하세요.",
    classPlaceholder: "새 클래스 이름 (예: cats)", addClass: "클래스 추가", checks: "학습 전 점검", runChecks: "점검하기",
    train: "학습", trainQuick: "첫 모델 학습 (빠르게)", advanced: "고급 설정", model: "모델", strategy: "전략",
    epochs: "에포크", lr: "학습률", augment: "데이터 증강", trainAdvanced: "이 설정으로 학습", accuracy: "정확도",
    loss: "손실", trainLine: "학습", valLine: "검증", stop: "중지", resume: "이어서 학습", results: "결과",
    matrix: "혼동 행렬", matrixHint: "칸을 누르면 그 이미지들이 보입니다.", wrongFirst: "가장 확신하며 틀린 이미지부터",
    try: "써 보기", tryChoose: "이미지 선택", images: "장", choose: "이미지 선택", drop: "여기에 끌어다 놓기",
    uploading: "올리는 중", added: "추가", duplicates: "중복 건너뜀", refused: "거부", running: "학습 중",
    done: "완료", failed: "실패", stopped: "중지됨", interrupted: "중단됨 (이어서 학습 가능)", preparing: "준비 중…",
    scoring: "검증 이미지 채점 중…", epoch: "에포크", left: "남은 시간 약", ready: "학습할 수 있습니다",
    notReady: "아직 학습할 수 없습니다", warnings: "경고", skipped: "읽을 수 없는 파일", identical: "동일한 이미지",
    class: "클래스", trainSplit: "학습", validation: "검증", valAccuracy: "검증 정확도", bestEpoch: "최고 에포크",
    time: "시간", imagesChecked: "검증 이미지", truth: "정답", predicted: "예측", cell: "정답 {a} → 예측 {b}",
    run: "실행", none: "없음", stopping: "중지 요청…", importTitle: "이 컴퓨터의 폴더에서 가져오기",
    allowedHint: "허용된 폴더", folderPlaceholder: "폴더 경로", bySubfolder: "하위 폴더 = 클래스", import: "가져오기",
    importing: "가져오는 중…", undo: "되돌리기", export: "내보내기",
    exportHint: "파일 하나로 내려받습니다. 먼저 스튜디오의 답과 같은지 확인합니다.", moveTo: "다른 클래스로…",
    remove: "제거", moved: "옮김", removed: "제거함 (휴지통: .studio/trash)", undone: "되돌림",
    changes: "{prev} 대비: 고친 것 {fixed}, 망가진 것 {broke} (둘 다 본 이미지 {common}장)", exporting: "내보내는 중…",
    download: "내려받기", checked: "확인: 검증 이미지 {n}장에서 같은 답", camera: "카메라",
    recordingInto: "녹화할 클래스", hold: "누르고 있는 동안 촬영", close: "닫기", frames: "장 촬영",
    noCamera: "카메라는 이 컴퓨터(localhost)나 https 주소에서만 쓸 수 있습니다. 휴대폰에서는 '이미지 선택'이 카메라를 엽니다."},
  en: {title: "transferlab studio", classes: "Classes and images", classesHint: "Drop or choose images for each class.",
    classPlaceholder: "New class name (e.g. cats)", addClass: "Add class", checks: "Check before training",
    runChecks: "Check", train: "Train", trainQuick: "Train a first model (fast)", advanced: "Advanced settings",
    model: "Model", strategy: "Strategy", epochs: "Epochs", lr: "Learning rate", augment: "Augmentation",
    trainAdvanced: "Train with these settings", accuracy: "Accuracy", loss: "Loss", trainLine: "train",
    valLine: "validation", stop: "Stop", resume: "Resume", results: "Results", matrix: "Confusion matrix",
    matrixHint: "Click a cell to see its images.", wrongFirst: "Most confidently wrong first", try: "Try it",
    tryChoose: "Choose images", images: "images", choose: "Choose images", drop: "drop here",
    uploading: "Uploading", added: "added", duplicates: "duplicates skipped", refused: "refused",
    running: "Training", done: "Done", failed: "Failed", stopped: "Stopped", interrupted: "Interrupted (resumable)",
    preparing: "Preparing…", scoring: "Scoring the validation images…", epoch: "epoch", left: "about",
    ready: "Ready to train", notReady: "Not ready to train yet", warnings: "Warnings", skipped: "Unreadable files",
    identical: "Identical images", class: "class", trainSplit: "train", validation: "validation",
    valAccuracy: "Validation accuracy", bestEpoch: "Best epoch", time: "Time", imagesChecked: "Validation images",
    truth: "true", predicted: "predicted", cell: "true {a} → predicted {b}", run: "Run", none: "none",
    stopping: "Stop requested…", importTitle: "Import a folder of this computer", allowedHint: "Allowed folders",
    folderPlaceholder: "folder path", bySubfolder: "sub-folders are classes", import: "Import",
    importing: "Importing…", undo: "Undo", export: "Export",
    exportHint: "Download as one file, checked first to answer like the studio.", moveTo: "Move to…",
    remove: "Remove", moved: "moved", removed: "removed (trash: .studio/trash)", undone: "undone",
    changes: "Compared with {prev}: fixed {fixed}, broke {broke} (of {common} images both checked)",
    exporting: "Exporting…", download: "Download", checked: "checked: the same answers on {n} validation images",
    previewAugment: "Preview the augmentation", recent: "Recent projects", recentHint: "Open another project with its command:", camera: "Camera", rename: "Rename", removeClass: "Delete class", newName: "New name",
    confirmRemove: "Move class '{c}' and its {n} images to the trash (.studio/trash)? You can undo it.",
    recordingInto: "Recording into", hold: "Hold to record", close: "Close", frames: "frames",
    noCamera: "The camera works on this computer (localhost) or over https only. On a phone, 'Choose images' " +
      "opens the camera."},
};
let lang = localStorage.getItem("studio-lang") || ((navigator.language || "ko").startsWith("ko") ? "ko" : "en");
const t = key => (T[lang] && T[lang][key]) || T.en[key] || key;
const $ = id => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
};
const HEADERS = {"X-Studio": "1"};
const BATCH_FILES = 50, BATCH_BYTES = 48 * 2 ** 20;  // under the server's per-request limits
let state = null, source = null, history = [], phaseInfo = null, shownRun = null;

function translate() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of document.querySelectorAll("[data-tp]")) node.placeholder = t(node.dataset.tp);
  $("lang").textContent = lang === "ko" ? "English" : "한국어";
}

async function api(path, options = {}) {
  const response = await fetch(path, {...options, headers: {...HEADERS, ...(options.headers || {})}});
  const data = await response.json().catch(() => ({detail: response.statusText}));
  if (!response.ok) throw new Error(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
  return data;
}
const post = (path, body) => api(path, {method: "POST", body: JSON.stringify(body || {}),
  headers: {"Content-Type": "application/json"}});
const imageUrl = path => "api/image?path=" + encodeURIComponent(path);

async function refresh() {
  const first = state === null;
  state = await api("api/project");
  if (first) useDefaults(state.defaults);
  renderClasses();
  $("import").hidden = !state.allowed.length;
  $("recent-section").hidden = !state.recent.length;
  $("recent").replaceChildren(...state.recent.map(p => el("li", {}, el("code", {textContent:
    `transferlab studio ${/^[\w./~-]+$/.test(p) ? p : JSON.stringify(p)}`}))));
  $("allowed").textContent = state.allowed.join(", ");
  if (state.export && first) followExport(state.export);
  if (state.job && state.job.id !== followed) follow(state.job);
  const finished = state.runs.find(r => r.finished);
  if (finished && (!state.job || state.job.status !== "running") && (!shownRun || shownRun.name !== finished.name))
    showRun(finished.name);
}

function useDefaults(d) {  // the advanced panel starts from the settings the one-button training uses
  const model = $("opt-model");
  if (![...model.options].some(o => o.value === d.model)) model.prepend(el("option", {textContent: d.model}));
  model.value = d.model;
  $("opt-strategy").value = d.strategy;
  $("opt-epochs").value = d.epochs;
}

function renderClasses() {
  const box = $("classes");
  box.replaceChildren();
  const chosen = $("import-label").value;
  $("import-label").replaceChildren(el("option", {value: "", textContent: t("bySubfolder")}),
    ...state.classes.map(c => el("option", {value: c.name, textContent: c.name})));
  $("import-label").value = chosen && state.classes.some(c => c.name === chosen) ? chosen : "";
  for (const c of state.classes) {
    const input = el("input", {type: "file", accept: "image/*", multiple: true, hidden: true});
    input.addEventListener("change", () => upload(c.name, [...input.files]));
    const thumbs = el("div", {className: "thumbs"});
    for (const s of c.samples) thumbs.append(el("img", {src: imageUrl(s), alt: s, loading: "lazy"}));
    const card = el("div", {className: "class-card"},
      el("h3", {}, el("span", {className: "class-name", textContent: c.name}),
        el("small", {className: "count", textContent: ` ${c.count} ${t("images")}`})),
      thumbs,
      el("div", {className: "drop", tabIndex: 0, textContent: `${t("choose")} / ${t("drop")}`}), input);
    const camera = el("button", {type: "button", className: "camera", textContent: t("camera")});
    camera.addEventListener("click", () => openCamera(c.name));
    const rename = el("button", {type: "button", className: "rename", textContent: t("rename")});
    rename.addEventListener("click", () => {
      const name = prompt(t("newName"), c.name);
      if (name && name !== c.name) classEdit(`api/classes/${encodeURIComponent(c.name)}/rename`, {name});
    });
    const remove = el("button", {type: "button", className: "remove-class", textContent: t("removeClass")});
    remove.addEventListener("click", () => {
      if (confirm(t("confirmRemove").replace("{c}", c.name).replace("{n}", c.count)))
        classEdit(`api/classes/${encodeURIComponent(c.name)}/remove`, {});
    });
    card.append(el("div", {className: "class-actions"}, camera, rename, remove));
    card.dataset.class = c.name;
    const drop = card.querySelector(".drop");
    drop.addEventListener("click", () => input.click());
    drop.addEventListener("keydown", e => { if (e.key === "Enter") input.click(); });
    card.addEventListener("dragover", e => { e.preventDefault(); card.classList.add("over"); });
    card.addEventListener("dragleave", () => card.classList.remove("over"));
    card.addEventListener("drop", async e => {
      e.preventDefault(); card.classList.remove("over");
      upload(c.name, await droppedFiles(e.dataTransfer));
    });
    box.append(card);
  }
}

async function droppedFiles(transfer) {  // files and whole folders
  const entries = [...transfer.items].map(i => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...transfer.files];
  const out = [];
  async function walk(entry) {
    if (entry.isFile) out.push(await new Promise((ok, no) => entry.file(ok, no)));
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  }
  for (const e of entries) await walk(e);
  return out;
}

async function upload(label, files) {
  files = files.filter(f => f.type.startsWith("image/") || /\.(jpe?g|png|bmp|gif|tiff?|webp)$/i.test(f.name));
  const status = $("upload-status");
  let added = 0, duplicates = 0, refused = [], sent = 0;
  for (let i = 0; i < files.length;) {
    const form = new FormData();
    let bytes = 0, n = 0;
    while (i < files.length && n < BATCH_FILES && (n === 0 || bytes + files[i].size <= BATCH_BYTES)) {
      form.append("files", files[i], files[i].name); bytes += files[i].size; n++; i++;
    }
    sent += n;
    status.textContent = `${t("uploading")} ${label}: ${sent}/${files.length}`;
    try {
      const r = await api(`api/classes/${encodeURIComponent(label)}/images`, {method: "POST", body: form});
      added += r.added.length; duplicates += r.duplicates.length; refused.push(...r.refused);
    } catch (err) { refused.push({name: `${n} files`, reason: err.message}); }
  }
  status.textContent = `${label}: ${added} ${t("added")}, ${duplicates} ${t("duplicates")}` +
    (refused.length ? `, ${refused.length} ${t("refused")} (${refused.slice(0, 3).map(r => r.name + ": " +
      r.reason).join("; ")})` : "");
  await refresh();
}

async function classEdit(path, body) {
  try {
    const r = await post(path, body);
    $("upload-status").textContent = r.new ? `${r.label} → ${r.new}` : `${r.label}: ${t("removed")}`;
    $("class-undo").hidden = false;
  } catch (err) { $("upload-status").textContent = err.message; }
  await refresh();
}

let stream = null, recording = null, frames = [], cameraClass = null;

async function openCamera(label) {
  cameraClass = label;
  $("camera-class").textContent = label;
  $("camera-count").textContent = "";
  $("camera").hidden = false;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("camera-count").textContent = t("noCamera"); return;
  }
  try {
    stream = stream || await navigator.mediaDevices.getUserMedia({video: true, audio: false});
    $("camera-video").srcObject = stream;
  } catch (err) { $("camera-count").textContent = `${t("noCamera")} (${err.message})`; }
}

function closeCamera() {
  if (stream) for (const track of stream.getTracks()) track.stop();
  stream = null; $("camera").hidden = true;
}

function startRecording(e) {  // "hold to record": a frame every 150 ms while the button is held
  e.preventDefault();
  if (!stream || recording) return;
  frames = [];
  const video = $("camera-video"), canvas = document.createElement("canvas");
  const grab = () => {
    if (!video.videoWidth) return;
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const n = frames.length;
    frames.push(new Promise(ok => canvas.toBlob(b => ok(new File([b], `camera-${Date.now()}-${n}.jpg`,
      {type: "image/jpeg"})), "image/jpeg", 0.9)));
    $("camera-count").textContent = `${frames.length} ${t("frames")}`;
  };
  grab();
  recording = setInterval(grab, 150);
}

async function stopRecording() {
  if (!recording) return;
  clearInterval(recording); recording = null;
  const files = await Promise.all(frames);
  frames = [];
  if (files.length) await upload(cameraClass, files);
}

async function runChecks() {
  const box = $("checks");
  box.textContent = "…";
  const c = await api("api/checks");
  box.replaceChildren(el("p", {className: c.ready ? "ok" : "bad", textContent: c.ready ? t("ready") :
    `${t("notReady")}: ${c.problem}`}));
  if (!c.ready) return;
  const table = el("table", {}, el("tr", {}, el("th", {textContent: t("class")}),
    el("th", {textContent: t("trainSplit")}), el("th", {textContent: t("validation")})));
  for (const name of c.classes) table.append(el("tr", {}, el("td", {textContent: name}),
    el("td", {textContent: c.counts.train[name]}), el("td", {textContent: c.counts.validation[name]})));
  box.append(table);
  if (c.warnings.length) box.append(el("h3", {textContent: t("warnings")}),
    el("ul", {}, ...c.warnings.map(w => el("li", {className: "warn", textContent: w}))));
  if (c.skipped.length) box.append(el("h3", {textContent: `${t("skipped")} (${c.skipped.length})`}),
    el("ul", {}, ...c.skipped.slice(0, 20).map(s => el("li", {textContent: `${s.path}: ${s.reason}`}))));
  if (c.duplicates.length) {
    box.append(el("h3", {textContent: `${t("identical")} (${c.duplicates.length})`}));
    for (const group of c.duplicates.slice(0, 10)) box.append(el("div", {className: "gallery"},
      ...group.map(d => figure(d.path, `${d.label} · ${d.split}`))));
  }
}

function figure(path, caption, extra = "") {
  return el("figure", {className: "shot " + extra}, el("img", {src: imageUrl(path), alt: path, loading: "lazy"}),
    el("figcaption", {textContent: caption}));
}

function settings(advanced) {
  if (!advanced) return {};
  const s = {model: $("opt-model").value, strategy: $("opt-strategy").value, epochs: $("opt-epochs").value};
  if ($("opt-lr").value.trim()) s.lr = $("opt-lr").value.trim();
  if ($("opt-augment").value) s.augment = $("opt-augment").value;
  return s;
}

async function startTraining(advanced) {
  $("job-message").textContent = "";
  try { follow(await post("api/train", settings(advanced))); }
  catch (err) { $("job").hidden = false; $("job-message").textContent = err.message; }
}

let followed = null;  // the job whose events the page follows

function follow(job) {
  followed = job.id;
  $("job").hidden = false;
  if (source) source.close();
  if (state) state.job = job;
  showStatus(job.status === "running" ? "preparing" : job.status, job);
  // the whole event log is replayed from the start on a reload: the chart is rebuilt, then continues live
  source = new EventSource(`api/jobs/${job.id}/events`);
  history = []; phaseInfo = null;
  source.onmessage = e => handle(JSON.parse(e.data), job);
  for (const kind of ["started", "phase", "epoch", "scoring", "done", "failed", "stopped", "interrupted"])
    source.addEventListener(kind, e => handle(JSON.parse(e.data), job));
}

function handle(event, job) {
  if (event.type === "phase") phaseInfo = event;
  else if (event.type === "epoch") {  // a resumed run retrains from its last checkpoint: the newer point wins
    history = history.filter(h => h.epoch < event.epoch);
    history.push(event); draw();
    if (!event.replayed) showStatus("running", job, event);  // replayed: the epochs before a resume
  }
  else if (event.type === "scoring") showStatus("scoring", job);
  else if (["done", "failed", "stopped", "interrupted"].includes(event.type)) {
    source.close();
    job.status = event.type;
    showStatus(event.type, job, null, event.message);
    if (event.type === "done") api("api/project").then(s => { state = s; renderClasses(); showRun(event.run); });
    else api(`api/jobs/${job.id}`).then(j => { $("job-resume").hidden = !j.resumable; });
  }
}

function showStatus(kind, job, epoch = null, message = "") {
  $("job-status").textContent = t(kind);
  $("job-status").dataset.status = kind;
  $("job-stop").hidden = !["running", "preparing", "scoring"].includes(kind);
  $("job-resume").hidden = !(job.resumable && ["stopped", "interrupted"].includes(kind));
  $("job-message").textContent = message || "";
  if (epoch) {
    const total = epoch.max_epochs, done = epoch.phase_epoch;
    $("job-progress").textContent = `${t("epoch")} ${done}/${total}`;
    $("job-bar").value = done / total;
    const mean = history.reduce((a, h) => a + (h.seconds || 0), 0) / history.length;
    const left = Math.round(mean * (total - done));
    $("job-eta").textContent = left > 0 ? `· ${t("left")} ${left} s` : "";
  } else if (kind !== "running") { $("job-eta").textContent = ""; }
  if (kind === "done") $("job-bar").value = 1;
}

function draw() {
  plot($("chart-accuracy"), "accuracy", "val_accuracy", 0, 1);
  plot($("chart-loss"), "loss", "val_loss", 0, null);
}

function plot(svg, a, b, lo, hi) {
  const W = 320, H = 180, P = 28;
  const values = history.flatMap(h => [h[a], h[b]]).filter(v => v !== null && v !== undefined);
  const top = hi !== null ? hi : Math.max(1e-6, ...values) * 1.05, n = Math.max(2, history.length);
  const x = i => P + (W - P - 8) * i / (n - 1), y = v => H - P - (H - 2 * P) * (v - lo) / (top - lo);
  const line = (key, cls) => {
    const pts = history.map((h, i) => h[key] === null ? null : `${x(i).toFixed(1)},${y(h[key]).toFixed(1)}`)
      .filter(Boolean).join(" ");
    return `<polyline class="${cls}" points="${pts}"/>` + history.map((h, i) => h[key] === null ? "" :
      `<circle class="${cls}" cx="${x(i).toFixed(1)}" cy="${y(h[key]).toFixed(1)}" r="2.5"/>`).join("");
  };
  svg.innerHTML = `<line class="axis" x1="${P}" y1="${H - P}" x2="${W - 8}" y2="${H - P}"/>` +
    `<line class="axis" x1="${P}" y1="${P}" x2="${P}" y2="${H - P}"/>` +
    `<text x="2" y="${P + 4}">${top.toFixed(2)}</text><text x="2" y="${H - P}">${lo}</text>` +
    `<text x="${W - 30}" y="${H - 8}">${history.length}</text>` + line(a, "train") + line(b, "val");
  svg.dataset.points = String(history.length);
}

async function showRun(name) {
  const r = await api(`api/runs/${encodeURIComponent(name)}`);
  shownRun = r;
  $("results-section").hidden = false;
  const m = r.metrics || {};
  const card = (label, value) => el("div", {className: "card"}, el("small", {textContent: label}),
    el("strong", {textContent: value}));
  $("cards").replaceChildren(
    card(t("valAccuracy"), r.accuracy !== undefined ? (100 * r.accuracy).toFixed(1) + "%" : "–"),
    card(t("imagesChecked"), String(r.images.length)),
    card(t("bestEpoch"), m.best_epoch !== undefined ? String(m.best_epoch) : "–"),
    card(t("time"), m.wall_seconds !== undefined ? m.wall_seconds.toFixed(1) + " s" : "–"),
    card(t("run"), r.name));
  const table = el("table", {className: "matrix"});
  table.append(el("tr", {}, el("th", {textContent: `${t("truth")} \\ ${t("predicted")}`}),
    ...r.labels.map(l => el("th", {textContent: l}))));
  r.labels.forEach((truth, i) => {
    const row = el("tr", {}, el("th", {textContent: truth}));
    r.labels.forEach((guess, j) => {
      const button = el("button", {type: "button", textContent: String(r.matrix[i][j]),
        className: i === j ? "diag" : r.matrix[i][j] ? "off" : ""});
      button.dataset.truth = truth; button.dataset.predicted = guess;
      button.addEventListener("click", () => gallery(truth, guess));
      row.append(el("td", {}, button));
    });
    table.append(row);
  });
  $("matrix").replaceChildren(table);
  const c = r.changes;
  $("changes").textContent = c ? t("changes").replace("{prev}", c.previous).replace("{fixed}", c.fixed.length)
    .replace("{broke}", c.broke.length).replace("{common}", c.common) : "";
  $("export-section").hidden = false;
  gallery(null, null);
}

let cell = [null, null];  // the gallery's cell of the confusion matrix ([null, null]: the mistakes)

function gallery(truth, guess) {
  cell = [truth, guess];
  const images = shownRun.images.filter(i => truth === null ? i.label !== i.predicted :
    i.label === truth && i.predicted === guess);
  $("cell-title").textContent = truth === null ? t("wrongFirst") : t("cell").replace("{a}", truth).replace("{b}", guess);
  $("gallery").replaceChildren(...images.filter(i => !i.gone).slice(0, 60).map(i => {
    const shot = figure(i.path, `${i.label} → ${i.predicted} (${(100 * i.confidence).toFixed(0)}%)`,
      i.label === i.predicted ? "right" : "wrong");
    const move = el("select", {className: "move", title: t("moveTo")},
      el("option", {value: "", textContent: t("moveTo")}),
      ...state.classes.filter(c => c.name !== i.label).map(c => el("option", {value: c.name, textContent: c.name})));
    move.addEventListener("change", () => edit("api/images/move", {path: i.path, label: move.value}, i,
      `${i.path} ${t("moved")} → ${move.value}`));
    const remove = el("button", {type: "button", className: "remove", textContent: t("remove")});
    remove.addEventListener("click", () => edit("api/images/remove", {path: i.path}, i, `${i.path} ${t("removed")}`));
    shot.append(el("div", {className: "actions"}, move, remove));
    shot.dataset.path = i.path;
    return shot;
  }));
}

async function edit(path, body, image, message) {
  try {
    await post(path, body);
    image.gone = true;
    $("gallery").querySelector(`figure[data-path="${CSS.escape(image.path)}"]`)?.remove();
    $("edit-text").textContent = message;
    $("edit-status").hidden = false;
    state = await api("api/project"); renderClasses();
  } catch (err) { $("edit-text").textContent = err.message; $("edit-status").hidden = false; }
}

async function undoLast() {
  try {
    const r = await post("api/undo");
    $("edit-text").textContent = `${r.path} ${t("undone")}`;
    for (const i of shownRun.images) if (i.path === r.path) i.gone = false;
    state = await api("api/project"); renderClasses(); gallery(...cell);
  } catch (err) { $("edit-text").textContent = err.message; }
}

function followExport(job) {
  const status = $("export-status"), link = $("export-link");
  status.textContent = t("exporting"); link.hidden = true;
  const events = new EventSource(`api/jobs/${job.id}/events`);
  const end = e => {
    const event = JSON.parse(e.data);
    events.close();
    if (event.type === "done" && event.export) {
      const x = event.export;
      link.href = "api/exports/" + encodeURIComponent(x.file);
      link.download = x.file;
      link.textContent = `${t("download")} ${x.file} (${x.size_mb} MB)`;
      link.hidden = false;
      status.textContent = x.check.images !== undefined ? t("checked").replace("{n}", x.check.same_answers) :
        (x.check.library_parity && x.check.library_parity.passed ? "parity ✓" : "");
      status.dataset.status = "done";
    } else { status.textContent = event.message || t(event.type); status.dataset.status = event.type; }
  };
  for (const kind of ["done", "failed", "interrupted", "stopped"]) events.addEventListener(kind, end);
}

async function tryImages(files) {
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const box = $("try-results");
  try {
    const r = await api("api/try", {method: "POST", body: form});
    box.replaceChildren(...r.results.map((item, k) => {
      const bars = el("div", {className: "bars"}, el("strong", {textContent: item.name}));
      if (item.error) bars.append(el("p", {className: "bad", textContent: item.error}));
      for (const top of item.top || []) bars.append(el("div", {className: "bar-row"},
        el("span", {className: "label", textContent: `${top.label} — ${(100 * top.probability).toFixed(1)}%`}),
        el("div", {className: "bar"}, el("div", {className: "fill", style: `width:${100 * top.probability}%`}))));
      return el("div", {className: "result"}, el("img", {src: URL.createObjectURL(files[k]), alt: item.name}), bars);
    }));
  } catch (err) { box.replaceChildren(el("p", {className: "bad", textContent: err.message})); }
}

$("lang").addEventListener("click", () => {
  lang = lang === "ko" ? "en" : "ko"; localStorage.setItem("studio-lang", lang); translate();
  if (state) renderClasses();
  if (shownRun) showRun(shownRun.name);
});
$("new-class").addEventListener("submit", async e => {
  e.preventDefault();
  try { await post("api/classes", {name: $("class-name").value}); $("class-name").value = ""; await refresh(); }
  catch (err) { $("upload-status").textContent = err.message; }
});
$("run-checks").addEventListener("click", () => runChecks().catch(err => { $("checks").textContent = err.message; }));
$("train-quick").addEventListener("click", () => startTraining(false));
$("train-advanced").addEventListener("click", () => startTraining(true));
$("job-stop").addEventListener("click", async () => {
  $("job-message").textContent = t("stopping");
  await post(`api/jobs/${state.job.id}/stop`);
});
$("job-resume").addEventListener("click", async () => {
  try { follow(await post(`api/jobs/${state.job.id}/resume`)); }
  catch (err) { $("job-message").textContent = err.message; }
});
$("try-files").addEventListener("change", () => tryImages([...$("try-files").files]));
$("undo").addEventListener("click", undoLast);
let previews = 0;
async function previewAugment() {  // six training images as this augmentation changes them, drawn again each time
  const image = $("augment-image"), augment = $("opt-augment").value || "none";
  try {
    const response = await fetch(`api/augment-preview?augment=${augment}&seed=${previews++}`);
    if (!response.ok) throw new Error((await response.json()).detail);
    image.src = URL.createObjectURL(await response.blob());
    image.hidden = false;
    image.alt = `augmentation: ${augment}`;
  } catch (err) { $("job-message").textContent = err.message; $("job").hidden = false; }
}
$("preview-augment").addEventListener("click", previewAugment);
$("opt-augment").addEventListener("change", () => { if (!$("augment-image").hidden) previewAugment(); });
$("class-undo").addEventListener("click", async () => {
  try { const r = await post("api/undo"); $("upload-status").textContent = `${r.path} ${t("undone")}`; }
  catch (err) { $("upload-status").textContent = err.message; }
  $("class-undo").hidden = true;
  await refresh();
});
$("camera-hold").addEventListener("pointerdown", startRecording);
for (const kind of ["pointerup", "pointerleave", "pointercancel"]) $("camera-hold").addEventListener(kind, stopRecording);
$("camera-close").addEventListener("click", closeCamera);
for (const button of document.querySelectorAll("button.export"))
  button.addEventListener("click", async () => {
    try { followExport(await post(`api/runs/${encodeURIComponent(shownRun.name)}/export`,
      {format: button.dataset.format})); }
    catch (err) { $("export-status").textContent = err.message; }
  });
$("import").addEventListener("submit", async e => {
  e.preventDefault();
  const status = $("upload-status");
  status.textContent = t("importing");
  try {
    const r = await post("api/import", {folder: $("import-folder").value, label: $("import-label").value || null});
    status.textContent = Object.entries(r).map(([name, n]) => `${name}: ${n.added} ${t("added")}, ` +
      `${n.duplicates} ${t("duplicates")}` + (n.refused.length ? `, ${n.refused.length} ${t("refused")}` : ""))
      .join(" · ");
    await refresh();
  } catch (err) { status.textContent = err.message; }
});
translate();
refresh().catch(err => { $("upload-status").textContent = err.message; });
