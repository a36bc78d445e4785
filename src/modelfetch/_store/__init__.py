"""The cache store: the one writer of the Hugging Face cache (`blobstore`), its paths and
file primitives (`layout`), and resumable partial blobs (`partial`)."""
