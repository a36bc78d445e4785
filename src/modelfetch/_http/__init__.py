"""`HttpHubSource`, the native source: Hub client (`client`), byte mover (`transfer`) and a
thin orchestrating source."""
