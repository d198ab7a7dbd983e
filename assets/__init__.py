"""docthemes Dagster layer: assets, resources, IO manager and Definitions over `pipeline`."""

import os

# Nothing is downloaded at run time: the model is loaded from its local folder, and the Hugging
# Face libraries read these when first imported, so they are set before anything imports them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
