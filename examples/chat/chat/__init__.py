"""The chat demo: a Django Channels room page with a live "who is here"
list, kept by the presence extension through channels_presence."""
