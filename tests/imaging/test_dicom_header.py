"""DICOM header panel masks PHI by default; window/level maps raw values for display."""
from __future__ import annotations

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cxr_model.imaging.dicom_header import MASK, Window, apply_window, header_fields, window_presets

PHI = {"PatientName": "Doe^Jane", "PatientID": "MRN-884201", "PatientBirthDate": "19800214",
       "AccessionNumber": "ACC778", "InstitutionName": "St Example Hospital", "ReferringPhysicianName": "Who^Doctor",
       "OtherPatientIDs": "ALT-1", "PatientAddress": "1 High Street", "StudyDate": "20240101"}


def _dataset() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for k, v in PHI.items():
        setattr(ds, k, v)
    ds.Modality, ds.ViewPosition, ds.PatientSex = "DX", "PA", "F"
    ds.PhotometricInterpretation, ds.Rows, ds.Columns = "MONOCHROME1", 4, 4
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = np.arange(16, dtype=np.uint16).tobytes()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 16, 12, 11, 0, 1
    return ds


def test_phi_masked_by_default_and_shown_on_request():
    ds = _dataset()
    masked = {f.keyword: f for f in header_fields(ds)}
    for k, v in PHI.items():
        assert masked[k].value == MASK and masked[k].phi, k
        assert v not in " ".join(f.value for f in masked.values())
    assert masked["Modality"].value == "DX" and not masked["Modality"].phi
    assert "PixelData" not in masked
    shown = {f.keyword: f.value for f in header_fields(ds, show_phi=True)}
    assert shown["PatientName"] == "Doe^Jane" and shown["PatientID"] == "MRN-884201"


def test_any_person_name_or_date_element_is_masked_even_if_not_listed():
    ds = _dataset()
    ds.add_new(0x00321032, "PN", "Requesting^Person")  # RequestingPhysician
    ds.add_new(0x00101000, "LO", "OLD-ID")  # RETIRED OtherPatientIDs (listed by keyword)
    ds.add_new(0x00080023, "DA", "20240102")  # ContentDate
    values = " ".join(f.value for f in header_fields(ds))
    assert "Requesting^Person" not in values and "20240102" not in values


def test_window_presets_and_monochrome1_inversion():
    raw = np.array([[0, 1000], [2000, 4000]], dtype=np.float32)
    presets = window_presets(raw, _dataset())
    assert presets["File window (header)"] == Window(2048.0, 4096.0)
    full = apply_window(raw, presets["Full range"])
    assert full.min() == 0.0 and full.max() == 1.0 and full[0, 1] == np.float32(0.25)
    inv = apply_window(raw, presets["Full range"], monochrome1=True)
    assert np.allclose(inv, 1 - full)


def test_real_dicom_header_masks_patient_fields(dicom_dir):
    ds = pydicom.dcmread(sorted((dicom_dir / "rsna").glob("*.dcm"))[0], stop_before_pixels=True)
    fields = {f.keyword: f for f in header_fields(ds)}
    assert fields["PatientID"].value == MASK and fields["PatientName"].value == MASK
    assert str(ds.PatientID) not in " ".join(f.value for f in fields.values())
