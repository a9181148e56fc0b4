"""Readers for echo sources (video files, DICOM cine, CAMUS, EchoNet-Dynamic) and dataset conversion.

Everything here returns the in-memory `edge_tan.dataset.Sequence`; pydicom and nibabel are imported
inside the functions that need them, so the core stays numpy + OpenCV.
"""
