"""Readers and convert: tiny files written in the exact real layouts, read back; bad input; DICOM fixture."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from edge_tan.dataset import load_sequence, save_sequence
from edge_tan.runtime.errors import EdgeTanError
from edge_tan.runtime.geometry import contour_to_mask
from edge_tan.io import camus, echonet
from edge_tan.io.convert import convert_dataset
from edge_tan.runtime.geometry import landmarks_from_mask
from edge_tan.io.read import iter_frames, read_video
from tests.conftest import toy_sequence, write_avi, write_dicom

_NAME = "fixtures/US-PAL-8-10x-echo.dcm"   # shared/ lies beside the checkout (CI: beside the clone)
FIXTURE = next((p for p in (Path(__file__).resolve().parents[2] / "shared" / _NAME, Path("/work/shared") / _NAME)
                if p.is_file()), Path(__file__).resolve().parents[2] / "shared" / _NAME)


# ------------------------------------------------------------------ helpers
def lv_labels(T=5, H=64, W=48, flip=False):
    """(T,H,W) CAMUS-style labels: LV cavity (1) top-centre, myocardium ring (2), LA (3) below."""
    lab = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        s = 1.0 - 0.2 * t / max(T - 1, 1)
        th = np.linspace(np.pi, 2 * np.pi, 60)
        cav = np.stack([24 + 10 * s * np.cos(th), 40 + 28 * s * np.sin(th)], 1)   # bullet, base at y=40
        outer = np.stack([24 + 14 * s * np.cos(th), 41 + 32 * s * np.sin(th)], 1)
        lab[t][contour_to_mask(outer, (H, W)) > 0] = 2
        lab[t][contour_to_mask(cav, (H, W)) > 0] = 1
        lab[t, 42:56, 14:35] = 3
    return lab[:, ::-1].copy() if flip else lab


def write_nifti(path, arr_thw, zooms=(0.3, 0.3, 1.0)):
    import nibabel as nib
    data = np.transpose(arr_thw, (2, 1, 0))      # CAMUS/nibabel order (W, H, T)
    img = nib.Nifti1Image(data, np.diag([*zooms, 1.0]))
    img.header.set_zooms(zooms[: data.ndim])
    nib.save(img, str(path))


def write_mhd(path: Path, arr, spacing=(0.3, 0.3), etype="MET_UCHAR", local=False):
    arr = np.asarray(arr)
    dims = " ".join(str(d) for d in arr.shape[::-1])
    sp = " ".join(str(s) for s in list(spacing) + [1.0] * (arr.ndim - len(spacing)))
    hdr = (f"ObjectType = Image\nNDims = {arr.ndim}\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
           f"CompressedData = False\nElementSpacing = {sp}\nDimSize = {dims}\nElementType = {etype}\n")
    if local:
        path.write_bytes((hdr + "ElementDataFile = LOCAL\n").encode() + arr.tobytes())
    else:
        path.write_text(hdr + f"ElementDataFile = {path.stem}.raw\n")
        arr.tofile(path.with_suffix(".raw"))


def make_camus_nifti(root: Path, pid="patient0001", T=5, flip=False, with_gt=True):
    d = root / pid
    d.mkdir(parents=True)
    lab = lv_labels(T, flip=flip)
    img = np.where(lab == 1, 20, 120).astype(np.uint8)
    for view in ("2CH", "4CH"):
        write_nifti(d / f"{pid}_{view}_half_sequence.nii.gz", img)
        if with_gt:
            write_nifti(d / f"{pid}_{view}_half_sequence_gt.nii.gz", lab)
        (d / f"Info_{view}.cfg").write_text(f"ED: 1\nES: {T}\nNbFrame: {T}\nSex: F\nAge: 60\n"
                                            f"ImageQuality: Good\nLVedv: 100.0\nLVesv: 45.0\nLVef: 55.3\n")
    return d, lab


# ------------------------------------------------------------------ DICOM
def test_dicom_fixture_palette_rle():
    seq = read_video(FIXTURE)
    assert seq.frames.shape == (10, 430, 600) and seq.frames.dtype == np.uint8
    assert abs(seq.fps - 1000 / 76) < 1e-6
    assert seq.extra["photometric"] == "PALETTE COLOR"
    assert 5 < seq.frames.mean() < 100 and seq.frames.max() > 200      # real image content, not blank
    assert not seq.labeled.any()
    frames = list(iter_frames(FIXTURE))
    assert len(frames) == 10 and np.array_equal(frames[3], seq.frames[3])


def _dicom(tmp_path, arr, photometric="MONOCHROME2", name="x.dcm", **extra):
    return write_dicom(tmp_path / name, arr, photometric, **extra)


def test_dicom_monochrome_uint16_fps_spacing(tmp_path):
    from pydicom.dataset import Dataset
    arr = np.zeros((3, 8, 10), np.uint16)
    arr[:, :, 5:] = 65535
    arr[1] = 32768
    region = Dataset()
    region.PhysicalDeltaX, region.PhysicalUnitsXDirection = 0.03, 3
    seq = read_video(_dicom(tmp_path, arr, FrameTime=40.0, SequenceOfUltrasoundRegions=[region]))
    assert seq.frames.shape == (3, 8, 10) and seq.frames.dtype == np.uint8
    assert seq.frames[0, 0, 0] == 0 and seq.frames[0, 0, 9] == 255 and abs(int(seq.frames[1, 0, 0]) - 128) <= 1
    assert seq.fps == pytest.approx(25.0) and seq.spacing_mm == pytest.approx(0.3)
    inv = read_video(_dicom(tmp_path, arr.astype(np.uint16), "MONOCHROME1", name="m1.dcm", CineRate=50,
                            PixelSpacing=[0.2, 0.25]))
    assert inv.frames[0, 0, 0] == 255 and inv.frames[0, 0, 9] == 0
    assert inv.fps == 50 and inv.spacing_mm == pytest.approx(0.25)


def test_dicom_ybr_and_rgb_to_luminance(tmp_path):
    ybr = np.zeros((2, 4, 6, 3), np.uint8)
    ybr[..., 0] = 77
    ybr[..., 1:] = 128           # neutral chroma
    seq = read_video(_dicom(tmp_path, ybr, "YBR_FULL"))
    assert seq.frames.shape == (2, 4, 6) and np.all(seq.frames == 77)
    packed = np.tile(np.array([77, 77, 128, 128], np.uint8), 2 * 4 * 3)   # YBR_FULL_422: Y Y Cb Cr per pixel pair
    p = _dicom(tmp_path, ybr, "YBR_FULL_422", name="422.dcm")
    from pydicom import dcmread
    ds = dcmread(str(p))
    ds.PixelData = packed.tobytes()
    ds.save_as(str(p))
    seq = read_video(p)
    assert seq.frames.shape == (2, 4, 6) and np.all(np.abs(seq.frames.astype(int) - 77) <= 1)
    rgb = np.zeros((2, 4, 6, 3), np.uint8)
    rgb[..., 0] = 255            # pure red -> 0.299*255
    seq = read_video(_dicom(tmp_path, rgb, "RGB", name="rgb.dcm"))
    assert np.all(np.abs(seq.frames.astype(int) - 76) <= 1)


def test_dicom_unsupported_transfer_syntax(tmp_path):
    from pydicom import dcmread
    from pydicom.uid import JPEGLSLossless
    from pydicom.pixels.decoders.base import get_decoder
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    p = _dicom(tmp_path, np.zeros((2, 4, 4), np.uint8))
    ds = dcmread(str(p))
    from pydicom.encaps import encapsulate
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8" + b"\0" * 14] * 2)
    ds["PixelData"].is_undefined_length = True
    ds.save_as(str(p))
    with pytest.raises(EdgeTanError, match="transfer syntax JPEG-LS"):
        read_video(p)


# ------------------------------------------------------------------ video / npz / bad input
def test_avi_and_npz_roundtrip(tmp_path):
    frames = np.tile(np.linspace(0, 255, 112, dtype=np.uint8)[None, None], (6, 112, 1))
    write_avi(tmp_path / "a.avi", frames, fps=25.0)
    seq = read_video(tmp_path / "a.avi")
    assert seq.frames.shape == (6, 112, 112) and seq.fps == pytest.approx(25.0)
    assert np.abs(seq.frames.astype(int) - frames).mean() < 4           # MJPG is lossy
    assert len(list(iter_frames(str(tmp_path / "a.avi")))) == 6
    toy = toy_sequence(T=4)
    save_sequence(toy, tmp_path / "toy.npz")
    back = read_video(tmp_path / "toy.npz")
    assert np.array_equal(back.masks, toy.masks) and back.view == "A4C"


@pytest.mark.parametrize("content,name,msg", [
    (None, "missing.avi", "not found"),
    (b"", "empty.avi", "empty"),
    (b"this is not a video at all" * 10, "text.avi", "cannot decode|zero"),
    (b"\0" * 128 + b"DICMgarbage", "bad.dcm", "unreadable DICOM|no pixel data"),
    (b"not a zip", "bad.npz", "unreadable"),
    (b"not gzip", "bad.nii.gz", "unreadable NIfTI"),
])
def test_bad_inputs_one_line_errors(tmp_path, content, name, msg):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(EdgeTanError, match=msg) as ei:
        read_video(p)
    assert "\n" not in str(ei.value)
    if content is not None and name.endswith(".avi"):
        with pytest.raises(EdgeTanError):
            list(iter_frames(p))


def test_directory_and_device_index_rejected_by_read_video(tmp_path):
    with pytest.raises(EdgeTanError, match="directory"):
        read_video(tmp_path)
    with pytest.raises(EdgeTanError, match="capture device"):
        read_video(0)
    with pytest.raises(EdgeTanError, match="cannot open capture device 7"):
        next(iter_frames("7"))


# ------------------------------------------------------------------ CAMUS
def test_landmarks_from_mask_with_and_without_la():
    lab = lv_labels(1)[0]
    for la in (None, (lab == 3)):
        lm = landmarks_from_mask(lab == 1, la)
        apex, left, right = lm
        assert apex[1] < 16 and abs(apex[0] - 24) <= 2               # top of the bullet
        assert 36 <= left[1] <= 41 and 36 <= right[1] <= 41          # basal border
        assert left[0] < 18 and right[0] > 30
    assert np.isnan(landmarks_from_mask(np.zeros((8, 8), np.uint8))).all()


def test_camus_nifti_half_sequence(tmp_path):
    d, lab = make_camus_nifti(tmp_path)
    seqs = camus.read_camus_patient(d)
    assert [s.name for s in seqs] == ["patient0001_2CH", "patient0001_4CH"]
    assert [s.view for s in seqs] == ["A2C", "A4C"]
    s = seqs[0]
    assert s.frames.shape == (5, 64, 48) and s.masks.shape == (5, 64, 48)
    assert np.array_equal(s.masks, (lab == 1).astype(np.uint8))
    assert s.labeled.all() and list(s.ed) == [0] and list(s.es) == [4]
    assert s.ef == pytest.approx(55.3) and s.spacing_mm == pytest.approx(0.3)
    assert np.all(s.landmarks[:, 0, 1] < s.landmarks[:, 1:, 1].min(1))  # apex above the annulus
    one = read_video(d / "patient0001_4CH_half_sequence.nii.gz")       # single-file entry point finds _gt
    assert one.masks.sum() == s.masks.sum()


def test_camus_upside_down_is_flipped(tmp_path):
    d, lab = make_camus_nifti(tmp_path, flip=True)
    s = camus.read_camus_patient(d)[0]
    assert np.array_equal(s.masks, (lab[:, ::-1] == 1).astype(np.uint8))
    assert s.landmarks[0, 0, 1] < s.landmarks[0, 1, 1]


def test_camus_label_shape_mismatch_and_nbframe(tmp_path):
    d, lab = make_camus_nifti(tmp_path)
    write_nifti(d / "patient0001_2CH_half_sequence_gt.nii.gz", lab[:3])
    with pytest.raises(EdgeTanError, match="does not match"):
        camus.read_camus_patient(d)
    d2, _ = make_camus_nifti(tmp_path / "b")
    (d2 / "Info_2CH.cfg").write_text("ED: 1\nES: 9\nNbFrame: 9\n")
    s = camus.read_camus_patient(d2)[0]                    # inconsistent cfg: warn, ED/ES = first/last
    assert "NbFrame" in s.extra["warning"] and list(s.ed) == [0] and list(s.es) == [4]


def test_camus_mhd_layout(tmp_path):
    d = tmp_path / "training" / "patient0007"
    d.mkdir(parents=True)
    lab = lv_labels(3)
    img = np.where(lab == 1, 10, 150).astype(np.uint8)
    for view in ("2CH", "4CH"):
        write_mhd(d / f"patient0007_{view}_ED.mhd", img[0], local=(view == "4CH"))
        write_mhd(d / f"patient0007_{view}_ES.mhd", img[2])
        write_mhd(d / f"patient0007_{view}_ED_gt.mhd", lab[0])
        write_mhd(d / f"patient0007_{view}_ES_gt.mhd", lab[2])
        (d / f"Info_{view}.cfg").write_text("ED: 1\nES: 3\nNbFrame: 3\nLVef: 40.0\n")
    write_mhd(d / "patient0007_2CH_sequence.mhd", img)
    assert camus.find_patient_dirs(tmp_path) == [d]
    s2, s4 = camus.read_camus_patient(d)
    assert s2.frames.shape == (3, 64, 48) and list(s2.labeled) == [True, False, True]
    assert np.array_equal(s2.masks[2], (lab[2] == 1).astype(np.uint8)) and s2.masks[1].sum() == 0
    assert s4.frames.shape == (2, 64, 48) and list(s4.ed) == [0] and list(s4.es) == [1]
    assert np.array_equal(s4.frames[0], img[0]) and s4.ef == 40.0
    one = read_video(d / "patient0007_4CH_ES.mhd")                     # single image + its _gt
    assert one.frames.shape == (1, 64, 48) and one.view == "A4C" and one.labeled.all()
    assert np.array_equal(one.masks[0], (lab[2] == 1).astype(np.uint8))
    arr, sp = camus.read_mhd(d / "patient0007_2CH_sequence.mhd")
    assert arr.shape == (3, 64, 48) and sp[:2] == (0.3, 0.3)
    write_mhd(d / "u16.mhd", np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000, etype="MET_USHORT")
    assert camus.read_mhd(d / "u16.mhd")[0][2, 3] == 11000
    (d / "u16.raw").write_bytes(b"\0" * 4)
    with pytest.raises(EdgeTanError, match="bytes"):
        camus.read_mhd(d / "u16.mhd")


# ------------------------------------------------------------------ EchoNet
def _tracing_rows(cx, cy, a, b, n=21):
    """EchoNet-style rows: long axis (apex top -> mitral midpoint), then horizontal chords of a bullet."""
    rows = [(cx, cy - b, cx, cy)]
    for y in np.linspace(cy - b + 2, cy, n - 1):
        half = a * np.sqrt(max(0.0, 1 - ((y - cy) / b) ** 2))
        rows.append((cx - half, y, cx + half, y))
    return rows


def make_echonet(root: Path, n=3, T=12):
    (root / "Videos").mkdir(parents=True)
    splits = ["TRAIN", "VAL", "TEST"]
    with open(root / "FileList.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["FileName", "EF", "ESV", "EDV", "FrameHeight", "FrameWidth", "FPS", "NumberOfFrames", "Split"])
        for i in range(n):
            w.writerow([f"0X{i:04d}", 50 + i, 30, 60, 112, 112, 50, T, splits[i % 3]])
    with open(root / "VolumeTracings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["FileName", "X1", "Y1", "X2", "Y2", "Frame"])
        for i in range(n):
            for frame, (a, b) in ((7, (15, 40)), (2, (20, 50))):          # ES listed first on purpose
                for r in _tracing_rows(56, 80, a, b):
                    w.writerow([f"0X{i:04d}.avi", *[f"{v:.2f}" for v in r], frame])
            w.writerow([f"0X{i:04d}.avi", 1, 1, 2, 2, 99])              # out-of-range frame: skipped
    for i in range(n):
        write_avi(root / "Videos" / f"0X{i:04d}.avi", np.full((T, 112, 112), 60 + i, np.uint8))


def test_echonet_reader(tmp_path):
    make_echonet(tmp_path)
    rows = echonet.read_filelist(tmp_path)
    assert rows[0]["FileName"] == "0X0000.avi"
    tr = echonet.read_tracings(tmp_path)
    s = echonet.read_echonet_video(tmp_path, rows[1], tr)
    assert s.frames.shape == (12, 112, 112) and s.view == "A4C" and s.fps == 50 and s.ef == 51
    assert list(np.nonzero(s.labeled)[0]) == [2, 7] and list(s.ed) == [2] and list(s.es) == [7]
    assert s.masks[2].sum() > s.masks[7].sum() > 0 and s.masks[0].sum() == 0
    assert np.isnan(s.landmarks[0]).all() and s.extra["skipped_frames"] == [99]
    apex, left, right = s.landmarks[2]
    assert np.allclose(apex, [56, 30], atol=0.5) and np.allclose(left, [36, 80], atol=0.5)
    assert np.allclose(right, [76, 80], atol=0.5)
    area = np.pi * 20 * 50 / 2
    assert abs(s.masks[2].sum() - area) / area < 0.05
    assert echonet.echonet_split(rows[1]) == "val"


# ------------------------------------------------------------------ convert
def test_convert_echonet_and_camus(tmp_path):
    make_echonet(tmp_path / "echo")
    info = convert_dataset(tmp_path / "echo", tmp_path / "out_e", progress=False)
    man = json.loads((tmp_path / "out_e" / "manifest.json").read_text())
    assert info["sequences"] == 3 and [e["split"] for e in man["sequences"]] == ["train", "val", "test"]
    s = load_sequence(tmp_path / "out_e" / "0X0002.npz")
    assert s.labeled.sum() == 2 and s.ef == 52
    for i in range(3):
        make_camus_nifti(tmp_path / "camus" / "database_nifti", pid=f"patient{i + 1:04d}", T=4)
    info = convert_dataset(tmp_path / "camus", tmp_path / "out_c", limit=5, progress=False)
    man = json.loads((tmp_path / "out_c" / "manifest.json").read_text())
    assert info["sequences"] == 5 and man["layout"] == "camus"
    names = [e["name"] for e in man["sequences"]]
    assert names[:2] == ["patient0001_2CH", "patient0001_4CH"]
    assert len({e["split"] for e in man["sequences"][:2]}) == 1            # views of a patient stay together
    assert load_sequence(tmp_path / "out_c" / "patient0003_2CH.npz").labeled.all()


def test_convert_unknown_layout_leaves_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "readme.txt").write_text("hi")
    with pytest.raises(EdgeTanError, match="CAMUS .*EchoNet"):
        convert_dataset(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("x")
    make_echonet(tmp_path / "echo")
    with pytest.raises(EdgeTanError, match="refusing"):
        convert_dataset(tmp_path / "echo", tmp_path / "precious", progress=False)
    with pytest.raises(EdgeTanError, match="inside"):
        convert_dataset(tmp_path / "echo", tmp_path / "echo" / "ds", progress=False)
    assert (tmp_path / "precious" / "thesis.tex").is_file()
    convert_dataset(tmp_path / "echo", tmp_path / "ds", limit=1, progress=False)
    convert_dataset(tmp_path / "echo", tmp_path / "ds", limit=2, progress=False)    # re-convert replaces
    assert len(json.loads((tmp_path / "ds" / "manifest.json").read_text())["sequences"]) == 2
    with pytest.raises(EdgeTanError, match="not found"):
        convert_dataset(tmp_path / "nope", tmp_path / "out")


def test_polygon_mask_pixel_centre_rule():
    sq = np.array([[2, 2], [6, 2], [6, 5], [2, 5]], float)
    m = echonet.polygon_mask(sq, (8, 8))
    assert m.sum() == 12 and m[2:5, 2:6].all()                 # half-open: rows 2..4, cols 2..5
    th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circ = np.stack([50 + 30.3 * np.cos(th), 50 + 30.3 * np.sin(th)], 1)
    yy, xx = np.mgrid[:100, :100]
    ref = ((xx - 50) ** 2 + (yy - 50) ** 2 <= 30.3 ** 2)
    got = echonet.polygon_mask(circ, (100, 100), round_vertices=False)
    assert np.abs(got.astype(int) - ref).sum() < 12             # only a few rim pixels differ


def _mhd_patient(d: Path, pid: str, gt=True):
    d.mkdir(parents=True)
    lab = lv_labels(2)
    img = np.where(lab == 1, 10, 150).astype(np.uint8)
    for view in ("2CH", "4CH"):
        for k, ph in enumerate(("ED", "ES")):
            write_mhd(d / f"{pid}_{view}_{ph}.mhd", img[k])
            if gt:
                write_mhd(d / f"{pid}_{view}_{ph}_gt.mhd", lab[k])


def test_convert_camus_2019_layout_name_clash_and_official_split(tmp_path):
    root = tmp_path / "camus"
    _mhd_patient(root / "training" / "patient0001", "patient0001")
    _mhd_patient(root / "training" / "patient0002", "patient0002")
    _mhd_patient(root / "testing" / "patient0001", "patient0001", gt=False)
    (root / "database_split").mkdir()
    (root / "database_split" / "subgroup_testing.txt").write_text("patient0002\n")
    convert_dataset(root, tmp_path / "out", progress=False)
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    names = sorted(e["name"] for e in man["sequences"])
    assert len(names) == 6 and "training_patient0001_2CH" in names and "patient0001_2CH" in names
    assert {e["split"] for e in man["sequences"] if e["name"].startswith("patient0002")} == {"test"}
    assert not load_sequence(tmp_path / "out" / "patient0001_4CH.npz").labeled.any()     # testing/: no gt
    assert load_sequence(tmp_path / "out" / "training_patient0001_4CH.npz").labeled.all()
