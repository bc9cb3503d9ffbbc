"""Writes the course notebooks in examples/notebooks/ (outputs stripped): `python tools/notebooks.py`.

The notebooks are plain JSON in the repository; this script is where their cells are written and reviewed, so a
change to a notebook is a readable diff here. Each starts with a markdown cell in Korean and English (Korean first,
as the course) and a parameter cell whose `QUICK = True` shrinks it to a CI-sized, offline run; `make test` runs
every notebook in that mode (tests/test_notebooks.py) and each asserts the result it teaches.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "notebooks"


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text.strip())


SETUP = code("""
from pathlib import Path

import transferlab

print("transferlab", transferlab.__version__)
""")

NOTEBOOKS: dict[str, list[nbformat.NotebookNode]] = {}

NOTEBOOKS["01_cats_vs_dogs.ipynb"] = [
    md("""
# 실습 1: 고양이와 개 분류 — 강좌의 CNN, 그리고 전이 학습
# Exercise 1: cats vs dogs — the course CNN, then transfer learning

**한국어.** 먼저 강좌의 CNN(파라미터 3,453,121개)을 처음부터 학습하고, 이어서 ImageNet으로 사전 학습된
EfficientNet-Lite0의 특성 추출기를 동결(freeze)한 전이 학습, 마지막으로 2단계(two-phase) 미세 조정을 합니다.
`QUICK = True`이면 인터넷 없이 몇 초 만에 끝나는 작은 합성 이미지로 흐름만 확인하고, `QUICK = False`이면
`cats_and_dogs_filtered`(2,000장 학습 / 1,000장 검증)를 내려받아 실제 실습을 합니다.

**English.** First the course's CNN (3,453,121 parameters) trained from scratch, then transfer learning with
EfficientNet-Lite0's ImageNet feature extractor frozen, then two-phase fine-tuning. With `QUICK = True` the
notebook runs offline in seconds on small synthetic images (the workflow, not the accuracy); with `QUICK = False`
it downloads `cats_and_dogs_filtered` (2,000 training / 1,000 validation photos) and is the real exercise.
"""),
    code("""
QUICK = True   # False: the real exercise (about an hour on a 2-core CPU, minutes on a GPU)
DATA = None    # QUICK = False: your cats-vs-dogs folder (train/ and validation/); None downloads cats_and_dogs_filtered
"""),
    SETUP,
    md("""
## 데이터 / The data

`transferlab.data.get_dataset`는 공식 주소에서 내려받아 체크섬을 확인하고 압축을 풉니다(중단되면 이어 받기).
`get_dataset` downloads from the official address, verifies the checksum and unpacks (resuming a broken download).
"""),
    code("""
from transferlab.data import get_dataset, make_toy_images

if QUICK:
    DATA = make_toy_images("data/toy_cats_dogs", ["cat", "dog"], n_train=24, n_val=8, size=96)
elif DATA is None:
    DATA = get_dataset("cats_and_dogs_filtered", "data")
transferlab.augment_preview(DATA, "course", count=6)   # training images as the course's generator changes them
"""),
    md("""
## 1) 강좌의 CNN / The course CNN

Conv(32)–Conv(64)–Conv(128)–Conv(128), 각각 MaxPooling, Flatten, Dropout(0.5), Dense(512), Dense(1, sigmoid):
Keras의 `model.summary()`와 같은 파라미터 수입니다. / The same parameter count as Keras' `model.summary()`.
"""),
    code("""
from transferlab.models import build_classifier

cnn = build_classifier("course_cnn", num_classes=2, weights="none")
parameters = sum(p.numel() for p in cnn.parameters())
print(f"{parameters:,} parameters")
assert parameters == 3_453_121
"""),
    code("""
cnn_run = transferlab.train(DATA, model="course_cnn", weights="none", strategy="full", augment="course",
                            lr=1e-4, batch_size=32, patience=5, epochs=3 if QUICK else 30,
                            image_size=64 if QUICK else 150, subset=None if QUICK else 1000,
                            out="runs/ex1_cnn", overwrite=True)
cnn_run
"""),
    md("""
## 2) 전이 학습: 특성 추출기 동결 / Transfer learning: the feature extractor frozen

`strategy="freeze"`는 Keras의 `base_model.trainable = False`입니다. 동결된 특성은 한 번만 계산해 캐시합니다.
`strategy="freeze"` is Keras' `base_model.trainable = False`; the frozen base's features are computed once and cached.
"""),
    code("""
freeze_run = transferlab.train(DATA, model="efficientnet_lite0", strategy="freeze", lr=1e-3, batch_size=64,
                               patience=3, epochs=3 if QUICK else 10, out="runs/ex1_freeze", overwrite=True)
freeze_run
"""),
    md("""
## 3) 2단계 미세 조정 / Two-phase fine-tuning

1단계: 헤드만 학습(동결). 2단계: `blocks.5`부터 해제하고 학습률을 1/10로 낮춰 미세 조정합니다(ResNet50의 경우 Keras의
143층, `unfreeze_from="keras:143"`). 두 단계 중 더 좋은 체크포인트가 최종 모델이 됩니다.

Phase 1 trains the head on the frozen base; phase 2 unfreezes from `blocks.5` (on ResNet50: Keras' layer 143,
`unfreeze_from="keras:143"`) at a tenth of the learning rate. The better checkpoint of the two phases is kept.
"""),
    code("""
two_phase = transferlab.train(DATA, model="efficientnet_lite0", strategy="two-phase", unfreeze_from="blocks.5",
                              lr=1e-3, finetune_lr_factor=10, batch_size=64, patience=3,
                              epochs=2 if QUICK else 5, finetune_epochs=2 if QUICK else 3,
                              out="runs/ex1_two_phase", overwrite=True)
two_phase
"""),
    code("""
# the kept model is the better phase's best epoch
best_by_phase = {}
for row in two_phase.history:
    best_by_phase[row["phase"]] = max(best_by_phase.get(row["phase"], 0.0), row["val_accuracy"])
print(best_by_phase)
assert two_phase.metrics["best_val_accuracy"] == max(best_by_phase.values())
"""),
    md("""
## 학습 곡선 비교와 예측 / Curves side by side, and predictions
"""),
    code("""
import matplotlib.pyplot as plt

fig, axes = plt.subplots(2, 2, figsize=(12, 7))
freeze_run.plot_history(ax=axes[0])
two_phase.plot_history(ax=axes[1])
axes[0][0].set_title("freeze: loss")
axes[1][0].set_title("two-phase: loss")
fig.tight_layout()
"""),
    code("""
two_phase.predict(sorted(Path(DATA, "validation").rglob("*.jpg"))[:6])
"""),
    code("""
two_phase.evaluate()   # the validation split: confusion matrix and the misclassified images
"""),
    md("""
결과 폴더(`runs/...`)에는 체크포인트, `history.csv`, `report.html`과 추론용 번들이 있습니다. 명령줄에서도 같은 일을
`transferlab train DATA --strategy two-phase`로 할 수 있습니다.

Each run folder holds the checkpoints, history.csv, report.html and the inference bundle; the command line does
the same with `transferlab train DATA --strategy two-phase`.
"""),
]

NOTEBOOKS["02_imagenet_classification.ipynb"] = [
    md("""
# 실습 2: 사전 학습 모델로 ImageNet 분류 (top-3)
# Exercise 2: ImageNet classification with a pretrained model (top-3)

**한국어.** Keras 문서의 예제(ResNet50으로 `elephant.jpg` 분류, `decode_predictions(preds, top=3)`)를 그대로
따라 합니다. 이 노트북은 인터넷 없이 동작하도록 함께 배포되는 EfficientNet-Lite0 가중치와 사진 두 장을 씁니다.
ResNet50은 인터넷이 되는 컴퓨터에서 `MODEL = "resnet50"`으로 바꾸면 됩니다.

**English.** The Keras applications tutorial (ResNet50 on `elephant.jpg`, `decode_predictions(preds, top=3)`),
offline: with the bundled EfficientNet-Lite0 weights and two bundled photos. On a connected machine set
`MODEL = "resnet50"` for the course's model.
"""),
    code("""
QUICK = True                 # this notebook is short either way
MODEL = "efficientnet_lite0"  # "resnet50" (the course's) downloads its ImageNet weights on a connected machine
"""),
    code("""
import transferlab

print("transferlab", transferlab.__version__)
"""),
    code("""
from transferlab.data import sample_image

photos = [sample_image("chelsea"), sample_image("coffee")]   # or your own: ["elephant.jpg"]
predictions = transferlab.classify(photos, model=MODEL, top=3)
predictions   # each photo with its top-3 ImageNet labels
"""),
    code("""
top3 = [t["label"] for t in predictions[0]["top"]]
print(top3)
assert any(cat in top3[0] for cat in ("tabby", "tiger cat", "Egyptian cat")), top3   # Chelsea is a tabby cat
assert any(cup in " ".join(t["label"] for t in predictions[1]["top"]) for cup in ("espresso", "cup", "coffee"))
"""),
    md("""
## Keras와 같은 코드 / The same in Keras' words

`load_img(target_size=(224, 224))`, `preprocess_input`, `model.predict`, `decode_predictions(preds, top=3)`.
"""),
    code("""
import numpy as np
from PIL import Image

from transferlab.applications import EfficientNetLite0
from transferlab.applications.efficientnet_lite import decode_predictions, preprocess_input

model = EfficientNetLite0(weights="imagenet")
img = Image.open(photos[0]).convert("RGB").resize((224, 224))
x = preprocess_input(np.array(img)[None])         # [1, 224, 224, 3] in 0..255, as Keras takes it
preds = model.predict(x)
print("Predicted:", decode_predictions(preds, top=3)[0])
assert decode_predictions(preds, top=1)[0][0][1].replace("_", " ") == top3[0]   # the same answer as classify()
"""),
    md("""
## 모델 비교: 크기, 정확도, 속도 / The model zoo: size, accuracy, speed

Keras 문서의 표처럼, 등록된 모델의 파라미터 수, 크기, ImageNet top-1/top-5 정확도입니다(속도는
`transferlab benchmark`로 이 컴퓨터에서 측정). / Like Keras' table: parameters, size, ImageNet top-1/top-5
(measure speed on this machine with `transferlab benchmark`).
"""),
    code("""
from IPython.display import Markdown

from transferlab.models.table import catalog_rows

rows = catalog_rows()
lines = ["| model | Keras name | parameters | size (MB) | top-1 | top-5 | weights |",
         "|---|---|---:|---:|---:|---:|---|"]
for r in rows:
    top1 = f"{r['top1']:.3f}" if r["top1"] else ""
    top5 = f"{r['top5']:.3f}" if r["top5"] else ""
    lines.append(f"| {r['name']} | {r['keras']} | {r['parameters']:,} | {r['size_mb']} | {top1} | {top5} "
                 f"| {r['weights']} |")
Markdown("\\n".join(lines))
"""),
]

NOTEBOOKS["03_cifar10.ipynb"] = [
    md("""
# 실습 3: CIFAR-10 전이 학습 (a–d)
# Exercise 3: transfer learning on CIFAR-10 (a–d)

**한국어.** (a) 사전 학습 모델의 특성 추출기와 분류기를 그대로 써서 예측, (b) 특성 추출기 동결 후 학습,
(c) 특성 추출기 일부(ResNet50의 143층부터) 해제 후 학습(학습률 0.001), (d) 데이터 증강 + 동결 후 학습.
`QUICK = True`는 인터넷 없이 작은 합성 이미지로, `QUICK = False`는 CIFAR-10(170 MB)을 내려받아 실행합니다.

**English.** (a) predict with the pretrained feature extractor and classifier as they are, (b) train with the
feature extractor frozen, (c) unfreeze part of it (ResNet50: from Keras' layer 143; lr 0.001), (d) augmentation
with the base frozen. `QUICK = True` runs offline on small synthetic images; `QUICK = False` downloads CIFAR-10.
"""),
    code("""
QUICK = True    # False: the real exercise (CIFAR-10; tens of minutes per step on a CPU)
DATA = None     # QUICK = False: a CIFAR-10 folder (train/ and test/ class folders); None downloads CIFAR-10
SUBSET = 1000   # QUICK = False: training images per class (None: all 5,000)
"""),
    SETUP,
    code("""
from transferlab.data import get_dataset, make_toy_images

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
if QUICK:
    DATA = make_toy_images("data/toy_cifar", CLASSES, n_train=8, n_val=3, size=32)   # 32x32, like CIFAR
    SUBSET = None
elif DATA is None:
    DATA = get_dataset("cifar10", "data")
QUICK_SIZE = {"image_size": 96} if QUICK else {}   # QUICK: a smaller input; the real runs resize 32 -> 224
"""),
    md("""
## (a) ImageNet 분류기를 그대로 / The ImageNet classifier as it is

새 헤드 없이는 ImageNet의 1,000개 클래스로만 답할 수 있습니다 — 전이 학습이 필요한 이유입니다.
Without a new head the model can only answer in ImageNet's 1,000 classes: the reason for transfer learning.
"""),
    code("""
examples = [sorted(Path(DATA, "train" if QUICK else "test", c).glob("*.jpg"))[0] for c in CLASSES]
as_is = transferlab.classify(examples, top=1)
as_is
"""),
    code("""
answers = [p["top"][0]["label"] for p in as_is]
assert not set(answers) & set(CLASSES)   # ImageNet's labels, never CIFAR's class names
"""),
    md("""
## (b) 특성 추출기 동결 / The feature extractor frozen
"""),
    code("""
runs = {}
runs["b_freeze"] = transferlab.train(DATA, strategy="freeze", lr=1e-3, batch_size=256, monitor="val_loss",
                                     patience=5, epochs=2 if QUICK else 15, subset=SUBSET,
                                     out="runs/ex3b_freeze", overwrite=True, **QUICK_SIZE)
runs["b_freeze"]
"""),
    md("""
## (c) 일부 층 해제 / Unfreezing from a layer

강좌는 ResNet50의 **143층**부터 해제합니다. transferlab에서 `keras:143`은 Keras가 말하는 바로 그 층입니다:
The course unfreezes ResNet50 from **layer 143**; in transferlab `keras:143` is the layer Keras means:
"""),
    code("""
from transferlab.applications import ResNet50

layer = ResNet50(include_top=False, weights=None).layers[143]   # architecture only: no download
print(layer)
assert layer.name == "conv5_block1_1_conv"
"""),
    md("""
ResNet50의 가중치는 인터넷이 필요하므로 여기서는 EfficientNet-Lite0의 마지막 두 단계(`blocks.5`부터)를 해제합니다.
연결된 컴퓨터에서는 `model="resnet50", strategy="unfreeze-from=keras:143"`으로 강좌 그대로 할 수 있습니다.

ResNet50's weights need a download, so here EfficientNet-Lite0 unfreezes its last two stages (from `blocks.5`);
on a connected machine `model="resnet50", strategy="unfreeze-from=keras:143"` is the course's exact setting.
"""),
    code("""
runs["c_unfreeze"] = transferlab.train(DATA, strategy="unfreeze-from=blocks.5", lr=1e-3, batch_size=128,
                                       monitor="val_loss", patience=3, epochs=2 if QUICK else 6, subset=SUBSET,
                                       out="runs/ex3c_unfreeze", overwrite=True, **QUICK_SIZE)
runs["c_unfreeze"]
"""),
    code("""
import yaml


def trainable(run):
    return yaml.safe_load((run.run_dir / "config.yaml").read_text())["parameters"]["trainable"]

print(f"trainable: freeze {trainable(runs['b_freeze']):,}, unfreeze {trainable(runs['c_unfreeze']):,}")
assert trainable(runs["c_unfreeze"]) > trainable(runs["b_freeze"])
"""),
    md("""
## (d) 데이터 증강 + 동결 / Augmentation with the base frozen

강좌의 ImageDataGenerator(`width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True`):
The course's ImageDataGenerator:
"""),
    code("""
augment = {"width_shift_range": 0.1, "height_shift_range": 0.1, "horizontal_flip": True}
transferlab.augment_preview(examples[0], augment, count=6)
"""),
    code("""
runs["d_augment"] = transferlab.train(DATA, strategy="freeze", augment=augment, feature_cache_copies=3, lr=1e-3,
                                      batch_size=256, monitor="val_loss", patience=5, epochs=2 if QUICK else 15,
                                      subset=SUBSET, out="runs/ex3d_augment", overwrite=True, **QUICK_SIZE)
runs["d_augment"]
"""),
    code("""
from IPython.display import Markdown

table = ["| run | best val_accuracy | best val_loss | best epoch |", "|---|---:|---:|---:|"]
for name, run in runs.items():
    m = run.metrics
    table.append(f"| {name} | {m['best_val_accuracy']:.4f} | {m['best_val_loss']:.4f} | {m['best_epoch']} |")
Markdown("\\n".join(table))
"""),
]

NOTEBOOKS["04_regularization.ipynb"] = [
    md("""
# CNN 성능 향상 기법: 드롭아웃, 가중치 정규화, 데이터 증강, 배치 정규화
# CNN performance techniques: dropout, weight regularisation, augmentation, batch normalisation

**한국어.** 강좌의 CNN을 같은 조건(에포크, 데이터, 학습률, 시드)으로 기준 모델과 각 기법별로 학습해 비교합니다:
드롭아웃 20/30/50%, L2 가중치 정규화(Keras `l2(0.001)`), 데이터 증강, 드롭아웃+증강, 드롭아웃+증강+배치 정규화.

**English.** The course CNN trained with one budget (epochs, data, learning rate, seed) as a baseline and with
each technique: dropout 20/30/50 %, L2 weight regularisation (Keras' `l2(0.001)`), augmentation, dropout +
augmentation, dropout + augmentation + batch normalisation.
"""),
    code("""
QUICK = True   # False: the real study (all 8 variants on cats vs dogs; about 10 minutes per variant on a CPU)
DATA = None    # QUICK = False: a cats-vs-dogs folder; None downloads cats_and_dogs_filtered
"""),
    SETUP,
    code("""
from transferlab.data import get_dataset, make_toy_images
from transferlab.models import build_classifier

if QUICK:
    DATA = make_toy_images("data/toy_cats_dogs", ["cat", "dog"], n_train=24, n_val=8, size=64)
elif DATA is None:
    DATA = get_dataset("cats_and_dogs_filtered", "data")

def parameters(**kwargs):
    return sum(p.numel() for p in build_classifier("course_cnn", 2, weights="none", **kwargs).parameters())

# dropout and L2 add no weights; batch normalisation adds a scale and a shift per channel
print(f"baseline {parameters(drop_rate=0.0):,}, dropout {parameters(drop_rate=0.5):,}, "
      f"batch norm {parameters(batch_norm=True):,}")
assert parameters(drop_rate=0.0) == parameters(drop_rate=0.5) == 3_453_121
assert parameters(batch_norm=True) - 3_453_121 == 2 * (32 + 64 + 128 + 128)   # gamma and beta per channel
"""),
    code("""
from transferlab.workflows.study import VARIANTS, regularization_study

for name, (_, what) in VARIANTS.items():
    print(f"{name:20s} {what}")
"""),
    code("""
variants = ["baseline", "dropout50", "weight_l2", "augment"] if QUICK else None
rows = regularization_study(DATA, "runs/study", epochs=2 if QUICK else 12, subset=None if QUICK else 1500,
                            image_size=48 if QUICK else 64, variants=variants)
assert {r["variant"] for r in rows} == set(variants or VARIANTS)
"""),
    code("""
from IPython.display import Image, Markdown

display(Markdown(Path("runs/study/study.md").read_text()))
Image("runs/study/compare.png")   # the validation curves of every variant, overlaid
"""),
    md("""
훈련-검증 정확도 차이(train-val gap)가 작을수록 과적합이 적습니다. 짧은 실행에서는 차이가 우연일 수 있으니
`QUICK = False`로 충분히 학습해서 비교하세요. / The smaller the train-validation gap, the less overfitting; in a
short run the differences can be chance, so compare with `QUICK = False`.
"""),
]

NOTEBOOKS["05_huggingface.ipynb"] = [
    md("""
# 허깅페이스 모델 활용 이미지 분류
# Image classification with Hugging Face models

**한국어.** `transformers`의 이미지 분류 모델(`AutoModelForImageClassification`)을 `model="hf:..."`로 그대로
씁니다: 전처리(평균, 표준편차, 크기, 자르기)는 모델의 이미지 프로세서에서 가져오고, 분류기는 새 헤드로 바뀝니다.
인터넷이 없으므로 `QUICK = True`에서는 작은 ViT를 직접 만들어 저장한 폴더(`hf:/폴더`)를 씁니다.

**English.** transformers' image classifiers work as `model="hf:..."`: the preprocessing (mean, std, size, crop)
comes from the model's image processor and its classifier is replaced by the new head. Offline, `QUICK = True`
makes a tiny ViT and saves it to a folder (`hf:/folder`), exactly as a downloaded model would be saved.
"""),
    code("""
QUICK = True       # False: a real model from the Hugging Face hub (needs internet once; then it is cached)
HF_MODEL = "google/vit-base-patch16-224"   # QUICK = False: a hub name, or a folder saved with save_pretrained
DATA = None        # QUICK = False: a folder of class folders (train/ and validation/); None downloads cats vs dogs
"""),
    SETUP,
    md("""
## 모델을 폴더로 저장하기 / A model as a folder

인터넷이 되는 컴퓨터에서 한 번 저장해 두면 어디서나 `hf:/폴더`로 쓸 수 있습니다:
On a connected machine, save once, then use `hf:/folder` anywhere:

```python
from transformers import AutoImageProcessor, AutoModelForImageClassification
AutoModelForImageClassification.from_pretrained("google/vit-base-patch16-224").save_pretrained("vit-base")
AutoImageProcessor.from_pretrained("google/vit-base-patch16-224").save_pretrained("vit-base")
```
"""),
    code("""
import transformers

from transferlab.data import get_dataset, make_toy_images

if QUICK:
    folder = Path("hf_models/tiny-vit").resolve()
    labels = {0: "tench", 1: "goldfish", 2: "great white shark"}
    vit = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=64, patch_size=16, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()}))
    vit.save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 64, "width": 64}, image_mean=[0.5, 0.5, 0.5],
                                   image_std=[0.5, 0.5, 0.5]).save_pretrained(folder)
    MODEL = f"hf:{folder}"
    DATA = make_toy_images("data/toy_cats_dogs", ["cat", "dog"], n_train=24, n_val=8, size=96)
else:
    MODEL = f"hf:{HF_MODEL}"
    DATA = DATA or get_dataset("cats_and_dogs_filtered", "data")
MODEL
"""),
    code("""
# the preprocessing is the model's own (its image processor), not ImageNet's numbers typed in
model = transferlab.create_model(MODEL)
cfg = model.pretrained_cfg
print({k: cfg[k] for k in ("input_size", "mean", "std", "interpolation", "crop_mode")})
processor = transformers.AutoImageProcessor.from_pretrained(MODEL[len("hf:"):])
assert tuple(cfg["mean"]) == tuple(processor.image_mean) and tuple(cfg["std"]) == tuple(processor.image_std)
"""),
    md("""
## 그대로 분류하기 / Classify with the model's own labels
"""),
    code("""
from transferlab.data import sample_image

transferlab.classify([sample_image("chelsea")], model=MODEL, top=3)   # QUICK: random weights, random answers
"""),
    md("""
## 전이 학습 / Transfer learning

동결(freeze), 일부 해제(`unfreeze-last=1`: 마지막 인코더 층), 2단계 미세 조정 모두 timm 모델과 같이 동작합니다.
`freeze`, `unfreeze-last=1` (the last encoder layer) and `two-phase` work as with timm models.
"""),
    code("""
hf_run = transferlab.train(DATA, model=MODEL, strategy="two-phase", unfreeze_from=None, lr=1e-3,
                           epochs=2 if QUICK else 3, finetune_epochs=1 if QUICK else 2, batch_size=16,
                           out="runs/hf_two_phase", overwrite=True)
hf_run
"""),
    code("""
hf_run.predict(sorted(Path(DATA, "validation").rglob("*.jpg"))[:4])
"""),
    md("""
학습된 모델은 `transferlab export RUN --format onnx`로 내보낼 수 있습니다(ONNX Runtime만 있으면 실행).
timm 모델은 `--format hf`로 Hugging Face 형식 폴더로 내보내 `hf upload`로 공유할 수 있습니다. 자세한 내용:
`docs/huggingface.md`.

Export the trained model with `transferlab export RUN --format onnx` (runs with ONNX Runtime alone); timm models
also export with `--format hf` as a Hugging Face folder to share with `hf upload`. More in docs/huggingface.md.
"""),
]


def write(folder: Path = FOLDER) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, cells in NOTEBOOKS.items():
        notebook = nbformat.v4.new_notebook()
        notebook.cells = copy.deepcopy(cells)
        notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                             "language_info": {"name": "python"}}
        for i, cell in enumerate(notebook.cells):
            cell["id"] = f"{Path(name).stem[:2]}-{i:02d}"
        nbformat.validate(notebook)
        path = folder / name
        path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER):
        print(path)
