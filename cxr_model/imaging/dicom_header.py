"""DICOM viewing helpers: the header panel with PHI masked, and window/level for display.

PHI follows DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile (Table E.1-1):
every attribute that profile removes, empties or replaces is masked unless the caller asks to show
it. That is the keywords in :data:`PHI_KEYWORDS` (names, IDs, age, sex, size, weight, addresses,
institution, devices, descriptions and comments), plus, whatever the keyword:

* value representations PN (person name), DA, DT, TM (dates and times), LT, ST, UT (free text);
* UIDs (VR UI), except the class and syntax UIDs in :data:`NON_PHI_UIDS`, which name a kind of
  object and no instance;
* private elements (odd group) and overlay/curve groups (60xx, 50xx), which may carry anything.

Masking happens here, not in the page, so no other view can forget it. Text burned into the
pixels is not in the header: :func:`burned_in_annotation` reads the flag that declares it.

Window/level is for display only: the model always sees the reader's output (the file's own VOI
LUT, see ``io.read_image``), whatever window the reviewer picks.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from pydicom.multival import MultiValue

from cxr_model.imaging.formats import ImageReadError

MASK = "•••••• (hidden)"
#: Attributes that PS3.15 Table E.1-1 (Basic Profile) removes, empties or replaces (D, Z, X, U and
#: their combinations), by keyword. Sequences are never shown at all (see :func:`header_fields`).
PHI_KEYWORDS = frozenset("""
AccessionNumber AcquisitionComments AcquisitionContextSequence AcquisitionDate AcquisitionDateTime
AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription AcquisitionTime ActualHumanPerformersSequence
AdditionalPatientHistory AdmissionID AdmittingDate AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription
AdmittingTime Allergies AuthorObserverSequence BranchOfService CassetteID CommentsOnThePerformedProcedureStep
ConcatenationUID ConfidentialityConstraintOnPatientDataDescription ContentCreatorName
ContentCreatorIdentificationCodeSequence ContentDate ContentSequence ContentTime ContextGroupExtensionCreatorUID
ContrastBolusAgent ContributionDescription CountryOfResidence CreatorVersionUID CurrentPatientLocation CurveDate
CurveTime CustodialOrganizationSequence DataSetTrailingPadding DerivationDescription DetectorID DeviceSerialNumber
DeviceUID DigitalSignatureUID DigitalSignaturesSequence DimensionOrganizationUID DischargeDiagnosisDescription
DistributionAddress DistributionName DoseReferenceUID EndAcquisitionDateTime EthnicGroup FailedSOPInstanceUIDList
FiducialUID FillerOrderNumberImagingServiceRequest FrameComments FrameOfReferenceUID GantryID GeneratorID
GraphicAnnotationSequence HumanPerformerName HumanPerformerOrganization IconImageSequence IdentifyingComments
ImageComments ImagePresentationComments ImagingServiceRequestComments Impressions InstanceCreationDate
InstanceCreationTime InstanceCreatorUID InstanceCoercionDateTime InstitutionAddress InstitutionCodeSequence
InstitutionName InstitutionalDepartmentName InsurancePlanIdentification
IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence InterpretationAuthor
InterpretationDiagnosisDescription InterpretationIDIssuer InterpretationRecorder InterpretationText
InterpretationTranscriber IrradiationEventUID IssuerOfAdmissionID IssuerOfPatientID IssuerOfServiceEpisodeID
LargePaletteColorLookupTableUID LastMenstrualDate MAC MediaStorageSOPInstanceUID MedicalAlerts MedicalRecordLocator
MilitaryRank ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID NameOfPhysiciansReadingStudy
NamesOfIntendedRecipientsOfResults Occupation OperatorIdentificationSequence OperatorsName OriginalAttributesSequence
OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation OtherPatientIDs OtherPatientIDsSequence OtherPatientNames
OverlayDate OverlayTime PaletteColorLookupTableUID ParticipantSequence PatientAddress PatientAge PatientBirthDate
PatientBirthName PatientBirthTime PatientComments PatientID PatientInstitutionResidence PatientInsurancePlanCodeSequence
PatientMotherBirthName PatientName PatientPrimaryLanguageCodeSequence PatientPrimaryLanguageModifierCodeSequence
PatientReligiousPreference PatientSex PatientSexNeutered PatientSize PatientState PatientTelephoneNumbers
PatientTransportArrangements PatientWeight PerformedLocation PerformedProcedureStepDescription
PerformedProcedureStepEndDate PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
PerformedProcedureStepStartTime PerformedStationAETitle PerformedStationGeographicLocationCodeSequence
PerformedStationName PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence PerformingPhysicianName
PersonAddress PersonIdentificationCodeSequence PersonName PersonTelephoneNumbers PhysicianApprovingInterpretation
PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
PlacerOrderNumberImagingServiceRequest PlateID PreMedication PregnancyStatus ProtocolName
ReasonForTheImagingServiceRequest ReasonForStudy ReferencedDigitalSignatureSequence ReferencedFrameOfReferenceUID
ReferencedImageSequence ReferencedPatientAliasSequence ReferencedPatientSequence
ReferencedPerformedProcedureStepSequence ReferencedSOPInstanceMACSequence ReferencedSOPInstanceUID
ReferencedSOPInstanceUIDInFile ReferencedStudySequence ReferringPhysicianAddress
ReferringPhysicianIdentificationSequence ReferringPhysicianName ReferringPhysicianTelephoneNumbers RegionOfResidence
RelatedFrameOfReferenceUID RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments
RequestedProcedureDescription RequestedProcedureID RequestedProcedureLocation RequestedSOPInstanceUID
RequestingPhysician RequestingService ResponsibleOrganization ResponsiblePerson ResultsComments
ResultsDistributionListSequence ResultsIDIssuer ReviewerName ScheduledHumanPerformersSequence
ScheduledPatientInstitutionResidence ScheduledPerformingPhysicianIdentificationSequence
ScheduledPerformingPhysicianName ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime
ScheduledProcedureStepDescription ScheduledProcedureStepLocation ScheduledProcedureStepStartDate
ScheduledProcedureStepStartTime ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence
ScheduledStationName ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle SeriesDate
SeriesDescription SeriesInstanceUID SeriesTime ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SOPInstanceUID
SourceImageSequence SpecialNeeds StationName StorageMediaFileSetUID StudyComments StudyDate StudyDescription StudyID
StudyIDIssuer StudyInstanceUID StudyTime SynchronizationFrameOfReferenceUID TemplateExtensionCreatorUID
TemplateExtensionOrganizationUID TextComments TextString TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject
TopicTitle TransactionUID UID VerifyingObserverIdentificationCodeSequence VerifyingObserverName
VerifyingObserverSequence VerifyingOrganization VisitComments
""".split())
#: UIDs that name a kind of object (SOP class, transfer syntax, implementation), not an instance.
NON_PHI_UIDS = frozenset({"SOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID", "ImplementationClassUID",
                          "ReferencedSOPClassUID", "AffectedSOPClassUID", "RequestedSOPClassUID",
                          "ReferencedSOPClassUIDInFile", "CodingSchemeUID", "ContextUID", "MappingResourceUID"})
_PHI_VR = frozenset({"PN", "DA", "DT", "TM", "LT", "ST", "UT"})
_SKIP_VR = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"})


@dataclass(frozen=True)
class HeaderField:
    """One row of the header panel. ``value`` is :data:`MASK` for a hidden PHI field."""

    tag: str
    keyword: str
    name: str
    value: str
    phi: bool


def is_phi(keyword: str, vr: str, group: int | None = None) -> bool:
    """Whether an element identifies the patient (or may), per the module's rules; ``group`` is the tag's."""
    if group is not None and (group % 2 == 1 or 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF):
        return True  # private, curve and overlay groups
    if vr == "UI":
        return keyword not in NON_PHI_UIDS
    return keyword in PHI_KEYWORDS or vr in _PHI_VR or not keyword


def burned_in_annotation(ds) -> bool:
    """True when the dataset declares text burned into its pixels (BurnedInAnnotation ``YES``).

    Such text (name, ID, date) cannot be masked in the header: whoever exports the image must
    know it identifies the patient.
    """
    return str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES"


def header_fields(ds, show_phi: bool = False, max_len: int = 80) -> list[HeaderField]:
    """The dataset's top-level elements (file meta included) as rows, PHI masked unless asked.

    Args:
        ds: a pydicom Dataset (e.g. from ``io.read_dicom_dataset``).
        show_phi: show identifying values instead of :data:`MASK`.

    Returns:
        One :class:`HeaderField` per element; pixel data, binary and sequence elements are left
        out (sequences may nest PHI; they are not shown at all).
    """
    rows: list[HeaderField] = []
    elements = list(getattr(ds, "file_meta", None) or []) + list(ds)
    for el in elements:
        if el.keyword == "PixelData" or el.VR in _SKIP_VR:
            continue
        phi = is_phi(el.keyword, el.VR, el.tag.group)
        value = MASK if phi and not show_phi and not _empty(el.value) else _text(el.value, max_len)
        rows.append(HeaderField(f"({el.tag.group:04X},{el.tag.element:04X})", el.keyword, el.name, value, phi))
    return rows


def _empty(value) -> bool:
    return value is None or str(value).strip() == ""


def _text(value, max_len: int) -> str:
    s = str(value)
    return s if len(s) <= max_len else s[: max_len - 1] + "…"


# --------------------------------------------------------------------------------- window/level
@dataclass(frozen=True)
class Window:
    """A display window in the image's modality units: ``center`` and ``width``."""

    center: float
    width: float


def window_presets(raw: np.ndarray, ds=None) -> dict[str, Window]:
    """Windows to offer for a raw (modality-LUT) image.

    Projection radiographs have no fixed units (unlike CT Hounsfield units), so the presets are
    the file's own window, the full range, and percentile windows of this image's values.

    Args:
        raw: ``(H, W)`` values after the modality LUT (``io.dicom_to_array(..., apply_voi=False)``).
        ds: the dataset, for its WindowCenter/WindowWidth (first value when several; left out when
            unusable (see ``dicom_pixels.file_window``) or centred far outside the image's values).
    """

    lo, hi = float(np.min(raw)), float(np.max(raw))
    p = np.percentile(raw, [1, 99, 10, 90, 50, 99.5])
    presets: dict[str, Window] = {}
    window = file_window(ds) if ds is not None else None
    span = max(hi - lo, 1.0)
    if window is not None and lo - span / 2 <= window[0] <= hi + span / 2:  # a centre far off the values shows one grey
        presets["File window (header)"] = Window(*window)
    presets["Full range"] = Window((lo + hi) / 2, max(hi - lo, 1.0))
    presets["Auto (1st-99th percentile)"] = Window((p[0] + p[1]) / 2, max(p[1] - p[0], 1.0))
    presets["High contrast (10th-90th)"] = Window((p[2] + p[3]) / 2, max(p[3] - p[2], 1.0))
    presets["Dense structures (median-99.5th)"] = Window((p[4] + p[5]) / 2, max(p[5] - p[4], 1.0))
    return presets


def apply_window(raw: np.ndarray, window: Window, monochrome1: bool = False) -> np.ndarray:
    """Linear window (DICOM PS3.3 C.11.2.1.2, simplified) to ``float32 (H, W)`` in [0, 1], bone bright."""
    lo = window.center - window.width / 2
    out = np.clip((raw.astype(np.float32) - lo) / max(window.width, 1e-6), 0, 1)
    return (1.0 - out) if monochrome1 else out


def _value(ds, keyword: str, name: str):
    """The element's value, or ``None`` when absent or empty."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ds.get(keyword)
    except Exception as exc:
        raise ImageReadError(name, f"DICOM {keyword} cannot be read ({type(exc).__name__}: {exc})") from None
    if value is None or (isinstance(value, (str, bytes)) and not value.strip()):
        return None
    return value


def _multi(value) -> bool:
    return isinstance(value, (list, tuple, MultiValue))


def _single(value, keyword: str, name: str):
    if _multi(value):
        if len(value) != 1:
            raise ImageReadError(name, f"DICOM {keyword} has {len(value)} values ({_show(value)}); one is expected")
        value = value[0]
    return value


def _show(value) -> str:
    s = "\\".join(map(str, value)) if _multi(value) else str(value)
    return repr(s if len(s) <= 40 else s[:39] + "…")


def header_number(ds, keyword: str, name: str, default: float) -> float:
    """A single finite number from the header (``default`` when absent); else ImageReadError."""
    value = _value(ds, keyword, name)
    if value is None:
        return float(default)
    value = _single(value, keyword, name)
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ImageReadError(name, f"DICOM {keyword} {_show(value)} is not a number") from None
    if not math.isfinite(number):
        raise ImageReadError(name, f"DICOM {keyword} is {_show(value)}, not a finite number")
    return number


def header_int(ds, keyword: str, name: str, default: int, low: int, high: int) -> int:
    """A single whole number in ``[low, high]`` from the header (``default`` when absent)."""
    number = header_number(ds, keyword, name, default)
    if not number.is_integer():
        raise ImageReadError(name, f"DICOM {keyword} {_show(number)} is not a whole number")
    if not low <= number <= high:
        raise ImageReadError(name, f"DICOM {keyword} is {int(number)}; expected {low} to {high}")
    return int(number)


def file_window(ds) -> tuple[float, float] | None:
    """The file's first window ``(centre, width)``, or ``None`` when absent or unusable.

    Unusable: a centre or width that is not a finite number, or a width below 1 (PS3.3
    C.11.2.1.2.1). Several windows (``400\\1500``) are alternatives; the first is the default.
    """
    pair = []
    for keyword in ("WindowCenter", "WindowWidth"):
        try:
            value = _value(ds, keyword, "")
        except ImageReadError:
            return None
        if value is None:
            return None
        if _multi(value):
            value = value[0] if len(value) else None
        try:
            pair.append(float(str(value).strip()))
        except ValueError:
            return None
    c, w = pair
    return (c, w) if math.isfinite(c) and math.isfinite(w) and w >= 1 else None
