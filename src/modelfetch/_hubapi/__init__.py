"""The Hugging Face Hub protocol as pure rules (`spec`) and the one boundary where foreign
exceptions become `FetchError`s (`errmap`)."""
