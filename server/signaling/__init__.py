"""socket.io signaling: authenticated connections of officials' browsers and kiosks."""
