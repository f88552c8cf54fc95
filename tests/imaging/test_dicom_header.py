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


# PS3.15 Annex E basic profile: attributes that are not in the first list above, some not PN/DA/TM.
ANNEX_E = {"PatientAge": "034Y", "PatientSex": "F", "PatientSize": "1.62", "PatientWeight": "58",
           "StudyDescription": "CHEST PA Doe", "SeriesDescription": "PA erect ward 7", "ProtocolName": "Chest Jane",
           "StationName": "XR-WARD7", "DeviceSerialNumber": "SN-99812", "InstitutionalDepartmentName": "Paediatrics",
           "StudyID": "S-1234", "ImageComments": "portable, Jane Doe bed 4", "PatientComments": "allergic to latex",
           "EthnicGroup": "GroupX", "Occupation": "Teacher", "AdditionalPatientHistory": "asthma since 2001",
           "MedicalRecordLocator": "BOX-7", "OperatorsName": "Tech^Tom", "SeriesInstanceUID": "1.2.3.4.5.6",
           "SOPInstanceUID": "1.2.3.4.5.7", "StudyInstanceUID": "1.2.3.4.5.8", "FrameOfReferenceUID": "1.2.3.4.5.9"}


def test_annex_e_basic_profile_fields_are_masked_including_patient_age():
    ds = _dataset()
    for k, v in ANNEX_E.items():
        setattr(ds, k, v)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray: a kind of object, not an instance
    fields = {f.keyword: f for f in header_fields(ds)}
    shown = " ".join(f.value for f in fields.values())
    for k, v in ANNEX_E.items():
        assert fields[k].value == MASK and fields[k].phi, k
        assert v not in shown, k
    assert fields["SOPClassUID"].value == "1.2.840.10008.5.1.4.1.1.1.1" and not fields["SOPClassUID"].phi
    assert fields["TransferSyntaxUID"].value == str(ExplicitVRLittleEndian)
    assert fields["MediaStorageSOPInstanceUID"].value == MASK
    for kept in ("Modality", "ViewPosition", "Rows", "PhotometricInterpretation"):
        assert not fields[kept].phi, kept
    full = {f.keyword: f.value for f in header_fields(ds, show_phi=True)}
    assert full["PatientAge"] == "034Y"


def test_private_overlay_and_free_text_elements_are_masked():
    ds = _dataset()
    ds.add_new(0x00091010, "LO", "Jane Doe MRN-0042")  # a private element (odd group)
    ds.add_new(0x60000022, "LO", "overlay by Dr Who")  # OverlayDescription (60xx group)
    ds.add_new(0x00204000, "LT", "free text naming the patient")  # ImageComments as LT
    ds.add_new(0x00081030, "LO", "Doe chest study")  # StudyDescription
    values = " ".join(f.value for f in header_fields(ds))
    for secret in ("Jane Doe", "Dr Who", "naming the patient", "Doe chest"):
        assert secret not in values, secret


def test_every_listed_keyword_is_a_dicom_keyword():
    from pydicom.datadict import tag_for_keyword

    from cxr_model.imaging.dicom_header import NON_PHI_UIDS, PHI_KEYWORDS

    assert len(PHI_KEYWORDS) > 200
    assert [k for k in PHI_KEYWORDS | NON_PHI_UIDS if tag_for_keyword(k) is None] == []


def test_burned_in_annotation_flag():
    from cxr_model.imaging.dicom_header import burned_in_annotation

    ds = _dataset()
    assert not burned_in_annotation(ds)  # absent: not declared
    ds.BurnedInAnnotation = "NO"
    assert not burned_in_annotation(ds)
    ds.BurnedInAnnotation = "YES"
    assert burned_in_annotation(ds)
