"""Shared test doubles and tiny models, in one place so test files never import each other.

- toy data: an ellipse LV on speckle (`toy_sequence`, `toy_dataset`): fast, not the phantom;
- `ThresholdRunner`: a TEST DOUBLE "network" that thresholds the dark toy LV, so tracker control
  flow runs without torch or a trained model (numpy only: usable in torch-free subprocesses);
- tiny torch nets (`tiny_model`: 3 heads at 64x64; `darknet`: a darkness detector the tracker can
  lock onto) and their ONNX export, torch imported only when one is built;
- fixture: `toy_clip` (a short labelled toy clip on disk).
The TensorRT double (fake_tensorrt.py) has one user, test_tensorrt_double.py, and stays its own file.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_tan.runtime import geometry as geo
from edge_tan.runtime.artifact import ModelMetadata
from edge_tan.dataset import Sequence, save_sequence, split_for, write_manifest
from edge_tan.runtime.runner import Runner

W = 64   # window of the tiny nets


# ---- toy data -------------------------------------------------------------------------------
def toy_sequence(name: str = "toy", T: int = 8, H: int = 96, W: int = 112, seed: int = 0, view: str = "A4C") -> Sequence:
    rng = np.random.default_rng(seed)
    frames = np.zeros((T, H, W), np.uint8)
    masks = np.zeros((T, H, W), np.uint8)
    lms = np.zeros((T, 3, 2), np.float32)
    cx, cy = W * 0.55 + rng.uniform(-3, 3), H * 0.45 + rng.uniform(-3, 3)
    base = rng.integers(40, 90, (H, W)).astype(np.float32)
    for t in range(T):
        s = 1.0 - 0.25 * np.sin(np.pi * t / max(T - 1, 1))
        a, b = W * 0.14 * s, H * 0.3 * s
        th = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        poly = np.stack([cx + a * np.cos(th), cy + b * np.sin(th)], 1)
        m = geo.contour_to_mask(poly, (H, W))
        img = base.copy()
        img[m > 0] *= 0.15
        frames[t] = np.clip(img + rng.normal(0, 5, (H, W)), 0, 255).astype(np.uint8)
        masks[t] = m
        lms[t] = [[cx, cy - b], [cx - a, cy + b * 0.8], [cx + a, cy + b * 0.8]]
    return Sequence(name=name, frames=frames, masks=masks, landmarks=lms, view=view, fps=30.0, spacing_mm=0.3,
                    ed=np.array([0]), es=np.array([T // 2]), ef=float("nan"))


def toy_dataset(root, n: int = 4, T: int = 8, H: int = 96, W: int = 112) -> None:
    entries = []
    for i in range(n):
        view = ("A2C", "A4C")[i % 2]
        seq = toy_sequence(f"toy{i:02d}", T=T, H=H, W=W, seed=i, view=view)
        save_sequence(seq, f"{root}/{seq.name}.npz")
        entries.append({"name": seq.name, "view": view, "frames": T, "split": split_for(i, n)})
    write_manifest(root, entries, generator="tests.conftest")


# ---- the threshold TEST DOUBLE --------------------------------------------------------------
class ThresholdRunner(Runner):
    """TEST DOUBLE: segments the toy LV (dark ellipse) by thresholding the window. Not a model."""
    backend = "test-double"

    def __init__(self, metadata: ModelMetadata, dark: float = -1.2):
        super().__init__(metadata)
        self.dark = dark
        self.calls = 0

    def _infer(self, batch):
        self.calls += 1
        n, _, s, _ = batch.shape
        seg = np.zeros((n, 2, s, s), np.float32)
        lms = np.zeros((n, 6), np.float32)
        view = np.zeros((n, 2), np.float32)
        for i in range(n):
            x = batch[i, 0]
            inside = (x < self.dark) & (x > -1.99)   # dark, but not the black outside-frame border
            m = geo.largest_component(inside)
            seg[i, 1] = np.where(m > 0, 4.0, -4.0)
            ys, xs = np.nonzero(m)
            if len(xs) > 10:
                top = np.array([xs[ys.argmin()], ys.min()], np.float32)
                yb = np.percentile(ys, 90)
                left = np.array([xs.min(), yb], np.float32)
                right = np.array([xs.max(), yb], np.float32)
                lms[i] = (np.stack([top, left, right]) - self.metadata.template_array).reshape(-1)
                view[i] = [0.0, 5.0]
            else:
                view[i] = [0.0, 0.0]
        return {"seg": seg, "landmarks": lms, "view": view}


def toy_metadata(window: int = 64) -> ModelMetadata:
    tpl = geo.build_template(toy_sequence().landmarks, size=window)
    return ModelMetadata(model_name="threshold-double", template=tpl.tolist(), window=window)


# ---- tiny torch nets (torch imported on first use) -------------------------------------------
@functools.cache
def _nets():
    import torch

    class TinyNet(torch.nn.Module):
        """A few convs with the production heads: seg (N,2,H,W), landmarks (N,6), view (N,2)."""

        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU())
            self.seg = torch.nn.Conv2d(16, 2, 1)
            self.lm = torch.nn.Linear(16, 6)
            self.view = torch.nn.Linear(16, 2)

        def forward(self, x):
            f = self.body(x)
            seg = torch.nn.functional.interpolate(self.seg(f), scale_factor=2.0, mode="bilinear", align_corners=False)
            g = f.mean(dim=(2, 3))
            return seg, self.lm(g), self.view(g)

    class DarkNet(torch.nn.Module):
        """Segments dark (but not black-border) pixels, plus a random conv branch; 3 heads."""

        def __init__(self, seed=0):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.c2 = torch.nn.Conv2d(8, 2, 3, padding=1)
            self.lm = torch.nn.Linear(8, 6)
            self.view = torch.nn.Linear(8, 2)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
                self.view.bias.copy_(torch.tensor([0.0, 3.0]))

        def forward(self, x):
            f = torch.relu(self.c1(x))
            dark = 4.0 * torch.minimum(-1.2 - x, x + 1.9)
            seg = torch.cat([torch.zeros_like(dark), dark], 1) + 0.2 * self.c2(f)
            g = f.mean(dim=(2, 3))
            return seg, 0.5 * self.lm(g), self.view(g)

    return TinyNet, DarkNet


def tiny_metadata(**kw) -> ModelMetadata:
    return ModelMetadata(model_name="tiny", window=W, template=[[40.0, 8.0], [12.0, 52.0], [52.0, 56.0]],
                         trained=False, **kw)


def tiny_model(seed: int = 0):
    """(TinyNet in eval mode, its metadata); forward returns (seg, landmarks, view)."""
    import torch
    torch.manual_seed(seed)
    return _nets()[0]().eval(), tiny_metadata()


def darknet(seed: int = 0):
    """A DarkNet in eval mode: the tracker locks onto the toy LV with it, so closed loops mean something."""
    return _nets()[1](seed).eval()


def darknet_metadata() -> ModelMetadata:
    tpl = geo.build_template(toy_sequence().landmarks, size=W)
    return ModelMetadata(model_name="darknet", window=W, template=tpl.tolist(), trained=False)


def export_onnx(model, metadata: ModelMetadata, path) -> Path:
    """torch.onnx.export + metadata_props, the way edge_tan.export.onnx_export does it."""
    import onnx
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 1, W, W), str(path), input_names=["image"],
                          output_names=["seg", "landmarks", "view"], opset_version=17, dynamo=False,
                          dynamic_axes={k: {0: "N"} for k in ("image", "seg", "landmarks", "view")})
    m = onnx.load(str(path))
    onnx.helper.set_model_props(m, metadata.to_props())
    onnx.save(m, str(path))
    from edge_tan.runtime.seal import seal_onnx
    seal_onnx(path)   # as build_artifact does: artifacts carry a seal of their own bytes
    return path


def torch_outputs(model, x: np.ndarray) -> dict:
    """The reference outputs of a tiny net as the runners name them."""
    import torch
    with torch.inference_mode():
        seg, lm, view = model(torch.from_numpy(x))
    return {"seg": seg.numpy(), "landmarks": lm.numpy(), "view": view.numpy()}


def rand_batch(n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, 1, W, W)).astype(np.float32)


# ---- fixtures -------------------------------------------------------------------------------
@pytest.fixture()
def toy_clip(tmp_path) -> Path:
    """A short labelled toy clip saved as .npz."""
    p = tmp_path / "clip.npz"
    save_sequence(toy_sequence("clip", T=6), p)
    return p


# ---- clip writers shared by reader and batch tests
def write_avi(path: Path, frames: np.ndarray, fps=25.0) -> Path:
    T, H, W = frames.shape
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H), True)
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()
    return path


def write_dicom(path: Path, arr: np.ndarray, photometric="MONOCHROME2", **extra) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.NumberOfFrames, ds.Rows, ds.Columns = arr.shape[:3]
    ds.SamplesPerPixel = 3 if arr.ndim == 4 else 1
    if arr.ndim == 4:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = arr.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path
