"""The studio's one page: server-rendered HTML whose texts the script switches between Korean and English."""

from __future__ import annotations

import html

__all__ = ["page_html"]

PAGE = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>__NAME__ · transferlab studio</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/studio.css"></head><body>
<header><h1><span data-t="title">transferlab 스튜디오</span> <small id="project">__NAME__</small></h1>
<button id="lang" type="button" aria-label="language">English</button></header>
<main>
<section id="classes-section"><h2 data-t="classes">클래스와 이미지</h2>
<p class="hint" data-t="classesHint">클래스마다 이미지를 끌어다 놓거나 선택하세요.</p>
<form id="new-class"><input id="class-name" maxlength="64" autocomplete="off" data-tp="classPlaceholder"
 placeholder="새 클래스 이름 (예: cats)"><button type="submit" data-t="addClass">클래스 추가</button></form>
<div id="classes"></div><p class="status" role="status"><span id="upload-status"></span>
<button id="class-undo" type="button" data-t="undo" hidden>되돌리기</button></p>
<div id="camera" hidden><p><span data-t="recordingInto">녹화할 클래스</span>: <strong id="camera-class"></strong></p>
<video id="camera-video" autoplay playsinline muted></video><p>
<button id="camera-hold" type="button" class="primary" data-t="hold">누르고 있는 동안 촬영</button>
<button id="camera-close" type="button" data-t="close">닫기</button> <span id="camera-count" class="status"></span></p>
</div>
<form id="import" hidden><h3 data-t="importTitle">이 컴퓨터의 폴더에서 가져오기</h3>
<p class="hint"><span data-t="allowedHint">허용된 폴더</span>: <span id="allowed"></span></p>
<input id="import-folder" data-tp="folderPlaceholder" placeholder="폴더 경로" autocomplete="off">
<select id="import-label"><option value="" data-t="bySubfolder">하위 폴더 = 클래스</option></select>
<button type="submit" data-t="import">가져오기</button></form></section>
<section id="checks-section"><h2 data-t="checks">학습 전 점검</h2>
<button id="run-checks" type="button" data-t="runChecks">점검하기</button><div id="checks"></div></section>
<section id="train-section"><h2 data-t="train">학습</h2>
<button id="train-quick" type="button" class="primary" data-t="trainQuick">첫 모델 학습 (빠르게)</button>
<details id="advanced"><summary data-t="advanced">고급 설정</summary><div class="grid">
<label><span data-t="model">모델</span><select id="opt-model"><option>efficientnet_lite0</option>
<option>efficientnet_lite1</option><option>efficientnet_lite2</option></select></label>
<label><span data-t="strategy">전략</span><select id="opt-strategy"><option value="freeze">freeze</option>
<option value="two-phase">two-phase</option><option value="unfreeze-last=2">unfreeze-last=2</option>
<option value="full">full</option></select></label>
<label><span data-t="epochs">에포크</span><input id="opt-epochs" type="number" min="1" max="1000" value="10"></label>
<label><span data-t="lr">학습률</span><input id="opt-lr" placeholder="auto"></label>
<label><span data-t="augment">데이터 증강</span><select id="opt-augment"><option value="">none</option>
<option>flip</option><option>light</option><option>course</option><option>strong</option></select></label>
</div><p><button id="preview-augment" type="button" data-t="previewAugment">증강 미리 보기</button></p>
<img id="augment-image" alt="augmentation preview" hidden>
<button id="train-advanced" type="button" data-t="trainAdvanced">이 설정으로 학습</button></details>
<div id="job" hidden><p><strong id="job-status"></strong> <span id="job-progress"></span>
<span id="job-eta"></span></p><progress id="job-bar" max="1" value="0"></progress>
<div class="charts"><figure><svg id="chart-accuracy" viewBox="0 0 320 180" role="img"></svg>
<figcaption data-t="accuracy">정확도</figcaption></figure><figure><svg id="chart-loss" viewBox="0 0 320 180"
 role="img"></svg><figcaption data-t="loss">손실</figcaption></figure></div>
<p class="legend"><span class="l-train"></span><span data-t="trainLine">학습</span>
<span class="l-val"></span><span data-t="valLine">검증</span></p>
<button id="job-stop" type="button" data-t="stop" hidden>중지</button>
<button id="job-resume" type="button" data-t="resume" hidden>이어서 학습</button>
<p id="job-message" class="status" role="status"></p></div></section>
<section id="results-section" hidden><h2 data-t="results">결과</h2><div id="cards" class="cards"></div>
<h3 data-t="matrix">혼동 행렬</h3><p class="hint" data-t="matrixHint">칸을 누르면 그 이미지들이 보입니다.</p>
<p id="changes" class="changes"></p><div id="matrix"></div>
<h3 id="cell-title" data-t="wrongFirst">가장 확신하며 틀린 이미지부터</h3>
<p id="edit-status" class="status" role="status" hidden><span id="edit-text"></span>
<button id="undo" type="button" data-t="undo">되돌리기</button></p>
<div id="gallery" class="gallery"></div></section>
<section id="export-section" hidden><h2 data-t="export">내보내기</h2>
<p class="hint" data-t="exportHint">파일 하나로 내려받습니다. 먼저 스튜디오의 답과 같은지 확인합니다.</p>
<button type="button" class="export" data-format="bundle">bundle (.safetensors)</button>
<button type="button" class="export" data-format="onnx">ONNX</button>
<button type="button" class="export" data-format="hf">Hugging Face</button>
<p id="export-status" class="status" role="status"></p><p><a id="export-link" hidden></a></p></section>
<section id="try-section"><h2 data-t="try">써 보기</h2>
<label class="button"><span data-t="tryChoose">이미지 선택</span><input id="try-files" type="file" accept="image/*"
 multiple hidden></label><div id="try-results"></div></section>
<section id="recent-section" hidden><h2 data-t="recent">최근 프로젝트</h2>
<p class="hint" data-t="recentHint">다른 프로젝트는 이 명령으로 엽니다:</p><ul id="recent"></ul></section>
</main><script type="module" src="assets/studio.js"></script></body></html>
"""


def page_html(name: str) -> str:
    """The page for a project (its name escaped)."""
    return PAGE.replace("__NAME__", html.escape(name))
