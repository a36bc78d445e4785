"""`HubSource`: huggingface_hub in worker threads, its HTTP client guarded."""
