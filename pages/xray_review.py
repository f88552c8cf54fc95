"""X-ray review: upload radiographs, see P(pneumonia) at the validated operating point."""
import streamlit as st

from cxr_model.imaging.predict import predict_source
from cxr_model.registry import load_cxr_bundle
from cxr_model.settings import get_settings


@st.cache_resource(show_spinner="Loading the model ...")
def bundle():
    return load_cxr_bundle(get_settings().cxr_model_dir)


st.title("Chest X-ray review")
st.info("Decision support, not a diagnosis: the probability is for a radiologist to weigh with the image.")
model = bundle()
files = st.file_uploader("Chest radiographs (PNG, JPEG or DICOM)", type=["png", "jpg", "jpeg", "dcm", "dicom"],
                         accept_multiple_files=True, key="xray_upload")
for f in files or []:
    r = predict_source(model, f.getvalue(), f.name)
    if r.error:
        st.error(r.error)
    else:
        st.metric(f.name, f"{r.probability:.1%}", help=f"P(pneumonia); threshold {r.threshold:.3f}")
        st.write(f"**{r.label}** at the model's threshold {r.threshold:.3f} ({r.model})")
